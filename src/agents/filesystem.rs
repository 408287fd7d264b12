//! Built-in `Filesystem DEV DIR FSTYPE [OPTIONS]`: mount(2) with optional
//! fsck, and an unmount that first ends the processes holding the mount.
//!
//! STUB: filled in by the filesystem work item.

use super::{AgentError, Options, Running};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsArgs {
    pub device: PathBuf,
    pub dir: PathBuf,
    pub fstype: Option<String>,
    /// `-o` options as written (`rw,noatime`).
    pub options: Option<String>,
}

pub fn parse_args(args: &[&str]) -> Result<FsArgs, String> {
    if args.len() < 2 || args.len() > 4 {
        return Err("Filesystem takes DEVICE::DIRECTORY[::FSTYPE[::OPTIONS]]".into());
    }
    Ok(FsArgs {
        device: PathBuf::from(args[0]),
        dir: PathBuf::from(args[1]),
        fstype: args.get(2).map(|s| s.to_string()),
        options: args.get(3).map(|s| s.to_string()),
    })
}

pub async fn start(_a: &FsArgs, _o: &Options) -> Result<(), AgentError> {
    Err(AgentError::Failed("Filesystem: not implemented yet".into()))
}

pub async fn stop(_a: &FsArgs, _o: &Options) -> Result<(), AgentError> {
    Err(AgentError::Failed("Filesystem: not implemented yet".into()))
}

pub async fn status(_a: &FsArgs) -> Result<Running, AgentError> {
    Ok(Running::Stopped)
}
