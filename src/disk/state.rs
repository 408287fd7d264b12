//! STUB: filled in by its work item.
