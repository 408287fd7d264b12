//! STUB (replaced by the checks work item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    Tcp {
        host: String,
        port: u16,
    },
    Http {
        url: String,
        expect: u16,
    },
    Process {
        pidfile: Option<std::path::PathBuf>,
        name: Option<String>,
    },
    Exec {
        command: String,
        user: Option<String>,
    },
    Mysql {
        host: Option<String>,
        port: u16,
        socket: Option<std::path::PathBuf>,
        user: Option<String>,
        password: Option<String>,
        option_file: Option<std::path::PathBuf>,
        query: String,
    },
}
pub async fn run(_kind: &CheckKind, _timeout: std::time::Duration) -> Result<(), String> {
    Err("stub".into())
}
pub fn validate(_kind: &CheckKind) -> Result<(), String> {
    Ok(())
}
