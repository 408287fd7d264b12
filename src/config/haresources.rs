//! `haresources`: one resource group per logical line. Issue 3 builds the
//! resource stack on it; here each line is split into its node and resources.

use super::Location;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGroupLine {
    /// The preferred node.
    pub node: String,
    /// Resources as written (`IPaddr2::192.0.2.100/24/eth0:0`, `mysqld`...).
    pub resources: Vec<String>,
    pub at: Location,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Haresources {
    pub groups: Vec<ResourceGroupLine>,
}
