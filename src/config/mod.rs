//! The configuration directory: heartbeat's `ha.cf`, `authkeys` and
//! `haresources`, plus hbd's optional `cluster.toml` for what heartbeat's files
//! cannot say.
//!
//! Everything is read exactly: an unknown directive, a bad value, a missing
//! file or this node missing from the node list is a [`ConfigError`] naming
//! `file:line` and the key. [`load`] collects every error it finds, so one run
//! of `hbctl check` shows them all.

mod authkeys;
mod cluster_toml;
mod hacf;
mod haresources;
mod time;

pub use cluster_toml::{ClusterSection, ClusterToml, ControlSection};
pub use hacf::{AutoFailback, HaCf, Medium, MediumKind, PingGroup, Respawn};
pub use haresources::{Haresources, ResourceGroupLine};
pub use time::parse_duration;

use std::path::{Path, PathBuf};

/// Where a value came from, for errors raised after parsing (an interface that
/// does not exist, a port in use...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A line-level problem: unknown directive, bad value, failed cross-check.
    #[error("{}:{line}: {key}: {message}", file.display())]
    Line {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    /// A file-level problem: missing, unreadable, bad permissions.
    #[error("{}: {message}", file.display())]
    File { file: PathBuf, message: String },
}

/// All problems found in one load. Displays one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A warning: the configuration works, but probably not as the operator meant
/// (crc authentication, an inert directive...). Printed by `hbctl check` and logged at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub file: PathBuf,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.key,
            self.message
        )
    }
}

/// The whole configuration of one node.
#[derive(Debug, Clone)]
pub struct Config {
    /// The configuration directory (`--config`).
    pub dir: PathBuf,
    /// This node's name (`--node` or `uname -n`); always one of `ha.nodes`.
    pub node: String,
    pub ha: HaCf,
    pub authkeys: crate::wire::AuthKeys,
    /// Empty when the file is absent.
    pub haresources: Haresources,
    /// Defaults when the file is absent.
    pub cluster: ClusterToml,
    pub warnings: Vec<ConfigWarning>,
}

/// Reads and cross-checks `dir/ha.cf`, `dir/authkeys`, `dir/haresources`
/// (optional) and `dir/cluster.toml` (optional) for node `node`.
pub fn load(dir: &Path, node: &str) -> Result<Config, ConfigErrors> {
    todo!("config helper")
}
