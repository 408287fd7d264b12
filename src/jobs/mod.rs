//! STUB (replaced by the jobs work item).
pub mod cron;
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    CatchUp,
    Skip,
}
