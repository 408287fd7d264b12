//! Resource agents: what runs one `haresources` resource.
//!
//! A resource is written `NAME::arg1::arg2` (or a bare IPv4 address, which
//! means `IPaddr`). [`resolve`] finds its agent the way heartbeat does, first
//! match wins:
//!
//! 1. built-in agents in Rust: `IPaddr`, `IPaddr2` ([`ipaddr`]),
//!    `Filesystem` ([`filesystem`]) and `drbddisk` ([`drbddisk`]);
//! 2. `CONFIG_DIR/resource.d/NAME`, then the project's `resources/` folder:
//!    heartbeat-style scripts called `NAME args... start|stop|status`;
//! 3. `/etc/init.d/NAME`: LSB init scripts (no arguments, LSB exit codes);
//! 4. OCF agents: `ocf:PROVIDER:TYPE::key=value...`, or a bare `NAME` found as
//!    `OCF_ROOT/resource.d/*/NAME` (`OCF_RESKEY_key=value`, OCF exit codes,
//!    `monitor` for status).
//!
//! Every call has a timeout ([`Options`]); script output is logged line by
//! line under the caller's span.

pub mod arp;
pub mod drbddisk;
mod error;
pub mod exec;
pub mod filesystem;
pub mod ipaddr;

pub use error::{AgentError, ArgsError, PlanError, Refusal, ResolveError};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What an agent is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Start,
    Stop,
    Status,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Status => "status",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a status call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Running {
    Running,
    Stopped,
}

/// How `Filesystem` decides whether to fsck before mounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsck {
    /// heartbeat's rule: only filesystems without a journal (ext2, vfat...).
    Auto,
    Force,
    Never,
}

/// Per-resource settings (`cluster.toml` `[resource_defaults]`,
/// `[resource.NAME]`, `[resource."FULL::SPEC"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    pub status_timeout: Duration,
    /// IPaddr: gratuitous ARPs sent after adding the address.
    pub arp_count: u32,
    pub arp_interval: Duration,
    /// IPaddr: how long to listen for another host answering for the address
    /// before adding it (0: no check): three probes over it (see
    /// [`arp::ProbeTiming::lan`]).
    pub arp_probe: Duration,
    /// IPaddr: probe with RFC 5227's timing instead (`arp_probe =
    /// "rfc5227"`: 0–1 s, three probes 1–2 s apart, 2 s after the last).
    pub arp_probe_rfc5227: bool,
    /// Filesystem: fsck before mount.
    pub fsck: Fsck,
    /// Filesystem: time between TERM and KILL for processes holding the mount.
    pub kill_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            start_timeout: Duration::from_secs(120),
            stop_timeout: Duration::from_secs(120),
            status_timeout: Duration::from_secs(30),
            arp_count: 5,
            arp_interval: Duration::from_millis(200),
            arp_probe: Duration::from_millis(30),
            arp_probe_rfc5227: false,
            fsck: Fsck::Auto,
            kill_grace: Duration::from_secs(5),
        }
    }
}

impl Options {
    /// The defaults for agent `name`: database servers get the time their
    /// crash recovery and clean shutdown may need (resources/mysqld waits up
    /// to 600 s for a start and 120 s before it kills).
    pub fn for_agent(name: &str) -> Options {
        let mut o = Options::default();
        if matches!(name, "mysqld" | "mysql" | "mariadb") {
            o.start_timeout = Duration::from_secs(630);
            o.stop_timeout = Duration::from_secs(150);
        }
        o
    }

    /// IPaddr: the duplicate-address probe's timing; `None`: no probe.
    pub fn probe_timing(&self) -> Option<arp::ProbeTiming> {
        if self.arp_probe.is_zero() {
            None
        } else if self.arp_probe_rfc5227 {
            Some(arp::ProbeTiming::RFC5227)
        } else {
            Some(arp::ProbeTiming::lan(self.arp_probe))
        }
    }

    pub fn timeout(&self, action: Action) -> Duration {
        match action {
            Action::Start => self.start_timeout,
            Action::Stop => self.stop_timeout,
            Action::Status => self.status_timeout,
        }
    }
}

/// How a resource is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentKind {
    /// `IPaddr`, `IPaddr2` or a bare address.
    IpAddr(ipaddr::IpAddrArgs),
    Filesystem(filesystem::FsArgs),
    /// `drbddisk::RES`: promotes/demotes a replicated disk.
    Drbddisk(drbddisk::DrbdArgs),
    /// heartbeat convention: `PATH args... start|stop|status`.
    Heartbeat {
        path: PathBuf,
        args: Vec<String>,
    },
    /// LSB init script: `PATH start|stop|status`.
    Lsb {
        path: PathBuf,
    },
    /// `mon`: turns the group's checks (cluster.toml `[[check]]`) on where
    /// the group runs. Nothing to start or stop by itself; always "running".
    Mon,
    /// OCF agent: `PATH start|stop|monitor` with `OCF_RESKEY_*`.
    Ocf {
        path: PathBuf,
        ocf_root: PathBuf,
        provider: String,
        kind: String,
        params: Vec<(String, String)>,
    },
}

impl AgentKind {
    /// Short name of the kind, for status and logs.
    pub fn class(&self) -> &'static str {
        match self {
            AgentKind::IpAddr(_) => "builtin",
            AgentKind::Filesystem(_) => "builtin",
            AgentKind::Drbddisk(_) => "builtin",
            AgentKind::Mon => "builtin",
            AgentKind::Heartbeat { .. } => "heartbeat",
            AgentKind::Lsb { .. } => "lsb",
            AgentKind::Ocf { .. } => "ocf",
        }
    }
}

/// One resource of a group, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// As written in haresources.
    pub spec: String,
    pub kind: AgentKind,
    pub options: Options,
}

impl Resource {
    /// Tells the agent this node's name and hbd's run dir where it needs
    /// them (`drbddisk` finds its device processes with them).
    pub fn set_context(&mut self, node: &str, run_dir: &Path) {
        if let AgentKind::Drbddisk(a) = &mut self.kind {
            a.context = Some(drbddisk::Context {
                node: node.to_string(),
                run_dir: run_dir.to_path_buf(),
            });
        }
    }

    /// Runs `action` (start or stop) within its timeout.
    pub async fn run(&self, action: Action) -> Result<(), AgentError> {
        debug_assert!(action != Action::Status);
        let timeout = self.options.timeout(action);
        match &self.kind {
            AgentKind::IpAddr(a) => {
                with_timeout(action, timeout, async {
                    match action {
                        Action::Start => ipaddr::start(a, &self.options).await,
                        _ => ipaddr::stop(a, &self.options).await,
                    }
                })
                .await
            }
            AgentKind::Filesystem(a) => {
                with_timeout(action, timeout, async {
                    match action {
                        Action::Start => filesystem::start(a, &self.options).await,
                        _ => filesystem::stop(a, &self.options).await,
                    }
                })
                .await
            }
            AgentKind::Drbddisk(a) => {
                with_timeout(action, timeout, async {
                    match action {
                        Action::Start => drbddisk::start(a, &self.options).await,
                        _ => drbddisk::stop(a, &self.options).await,
                    }
                })
                .await
            }
            AgentKind::Mon => Ok(()),
            kind => exec::run(kind, action, timeout).await.map(|_| ()),
        }
    }

    /// Starts the resource within its timeout. `released`: the node that
    /// ran the group before said it stopped it, so an address of it needs
    /// no duplicate-address probe ([`ipaddr::start_released`]).
    pub async fn start(&self, released: bool) -> Result<(), AgentError> {
        match &self.kind {
            AgentKind::IpAddr(a) => {
                with_timeout(
                    Action::Start,
                    self.options.start_timeout,
                    ipaddr::start_released(a, &self.options, released),
                )
                .await
            }
            _ => self.run(Action::Start).await,
        }
    }

    /// Before a group starts: whether this resource can already tell that
    /// its start would fail (a replicated disk whose peer is Primary), so
    /// that the resources before it are not started for nothing. `Ok` when
    /// it cannot tell.
    pub async fn preflight(&self) -> Result<(), AgentError> {
        match &self.kind {
            AgentKind::Drbddisk(a) => {
                with_timeout(
                    Action::Start,
                    self.options.start_timeout,
                    drbddisk::preflight(a),
                )
                .await
            }
            _ => Ok(()),
        }
    }

    /// Runs `action` once, outside the daemon (`hbctl resource`): a start
    /// or stop that succeeds says what the resource is now; a start waits
    /// for the rest of IPaddr's gratuitous ARPs, which go out in the
    /// background.
    pub async fn run_once(&self, action: Action) -> Result<Running, AgentError> {
        match action {
            Action::Start => {
                let r = self.run(Action::Start).await.map(|_| Running::Running);
                ipaddr::announcements_done().await;
                r
            }
            Action::Stop => self.run(Action::Stop).await.map(|_| Running::Stopped),
            Action::Status => self.status().await,
        }
    }

    /// Asks whether the resource runs here.
    pub async fn status(&self) -> Result<Running, AgentError> {
        let timeout = self.options.status_timeout;
        match &self.kind {
            AgentKind::IpAddr(a) => with_timeout(Action::Status, timeout, ipaddr::status(a)).await,
            AgentKind::Filesystem(a) => {
                with_timeout(Action::Status, timeout, filesystem::status(a)).await
            }
            AgentKind::Drbddisk(a) => {
                with_timeout(Action::Status, timeout, drbddisk::status(a)).await
            }
            AgentKind::Mon => Ok(Running::Running),
            kind => exec::run(kind, Action::Status, timeout).await,
        }
    }
}

async fn with_timeout<T>(
    action: Action,
    timeout: Duration,
    f: impl std::future::Future<Output = Result<T, AgentError>>,
) -> Result<T, AgentError> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r,
        Err(_) => Err(AgentError::Timeout { action, timeout }),
    }
}

/// Every process's pid but our own, from /proc (for scans such as
/// `fuser -m` and `pidof`).
pub fn other_pids() -> std::io::Result<Vec<i32>> {
    let me = std::process::id() as i32;
    Ok(std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&pid| pid != me)
        .collect())
}

/// Where agents are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// `CONFIG_DIR/resource.d`.
    pub resource_d: PathBuf,
    /// The project's `resources/` folders, first match wins.
    pub resources_dirs: Vec<PathBuf>,
    /// `/etc/init.d`.
    pub init_dir: PathBuf,
    /// `/usr/lib/ocf`.
    pub ocf_root: PathBuf,
}

/// Where the project's `resources/` folder is when `cluster.toml` does not
/// say: `/usr/lib/hbd/resources` for an installed hbd, `resources/` of the
/// source tree for a cargo build (found from the binary's path, or the path
/// it was built at).
pub fn default_resources_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/hbd -> resources/
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            let d = root.join("resources");
            if d.join("daemon").exists() {
                dirs.push(d);
            }
        }
    }
    dirs.push(PathBuf::from("/usr/lib/hbd/resources"));
    let built = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/resources"));
    if !dirs.contains(&built) {
        dirs.push(built);
    }
    dirs
}

/// Names of the built-in agents.
pub const BUILTIN: &[&str] = &["IPaddr", "IPaddr2", "Filesystem", "drbddisk", "mon"];

/// Splits `NAME::arg1::arg2` into the name and its arguments.
pub fn split_spec(spec: &str) -> (&str, Vec<&str>) {
    let mut parts = spec.split("::");
    let name = parts.next().unwrap_or("");
    (name, parts.collect())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds the agent of `spec`. The error says what was looked for and where.
pub fn resolve(spec: &str, lookup: &Lookup) -> Result<AgentKind, ResolveError> {
    let (name, args) = split_spec(spec);
    if name.is_empty() {
        return Err(ResolveError::EmptyName);
    }
    // A bare IPv4 address (with optional /bits/iface/broadcast) means IPaddr.
    if name
        .split('/')
        .next()
        .is_some_and(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
    {
        if !args.is_empty() {
            return Err(ArgsError::BareAddressArgs.into());
        }
        return Ok(AgentKind::IpAddr(ipaddr::parse_args(&[name])?));
    }
    match name {
        "IPaddr" | "IPaddr2" => return Ok(AgentKind::IpAddr(ipaddr::parse_args(&args)?)),
        "Filesystem" => return Ok(AgentKind::Filesystem(filesystem::parse_args(&args)?)),
        "drbddisk" => {
            // The configuration directory is the one resource.d is in.
            let dir = lookup.resource_d.parent().unwrap_or(Path::new("/etc/ha.d"));
            return Ok(AgentKind::Drbddisk(drbddisk::parse_args(&args, dir)?));
        }
        "mon" if args.is_empty() => return Ok(AgentKind::Mon),
        "mon" => return Err(ArgsError::MonArgs.into()),
        _ => {}
    }
    if let Some(rest) = name.strip_prefix("ocf:") {
        let mut it = rest.split(':');
        let (Some(provider), Some(kind), None) = (it.next(), it.next(), it.next()) else {
            return Err(ResolveError::OcfSyntax { name: name.into() });
        };
        let path = lookup.ocf_root.join("resource.d").join(provider).join(kind);
        if !is_executable(&path) {
            return Err(ResolveError::NotExecutable {
                name: name.into(),
                path,
            });
        }
        return Ok(ocf(path, lookup, provider, kind, &args)?);
    }
    if name.contains('/') || name == "." || name == ".." {
        return Err(ResolveError::BadName { name: name.into() });
    }
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut searched = vec![lookup.resource_d.clone()];
    searched.extend(lookup.resources_dirs.iter().cloned());
    for dir in &searched {
        let path = dir.join(name);
        if is_executable(&path) {
            return Ok(AgentKind::Heartbeat { path, args });
        }
    }
    let path = lookup.init_dir.join(name);
    if is_executable(&path) {
        if !args.is_empty() {
            return Err(ArgsError::LsbArgs {
                name: name.into(),
                path,
            }
            .into());
        }
        return Ok(AgentKind::Lsb { path });
    }
    searched.push(lookup.init_dir.clone());
    let ocf_dir = lookup.ocf_root.join("resource.d");
    if let Ok(providers) = std::fs::read_dir(&ocf_dir) {
        let mut providers: Vec<_> = providers.flatten().map(|e| e.path()).collect();
        providers.sort();
        for p in providers {
            let path = p.join(name);
            if is_executable(&path) {
                let provider = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                return Ok(ocf(path, lookup, &provider, name, &args)?);
            }
        }
    }
    searched.push(ocf_dir.join("*"));
    Err(ResolveError::NotFound {
        name: name.into(),
        searched,
    })
}

/// heartbeat's `resource.d` wrappers of OCF agents, and the parameters
/// their `::` arguments become, in order (the wrappers' `OCF_RESKEY_x=$n`).
const HEARTBEAT_POSITIONAL: &[(&str, &[&str])] = &[
    ("MailTo", &["email", "subject"]),
    ("Delay", &["startdelay", "stopdelay"]),
    ("IPsrcaddr", &["ipaddress"]),
    ("Xinetd", &["service"]),
    ("apache", &["configfile"]),
    ("LVM", &["volgrpname"]),
    ("portblock", &["protocol", "portno", "action"]),
];

/// The parameters positional arguments of OCF agent `kind` at `path`
/// become: heartbeat's wrapper's order, else the order of the agent's
/// meta-data (`<parameter name=..>`); none when it has no meta-data.
fn positional_names(path: &Path, lookup: &Lookup, kind: &str) -> Vec<String> {
    if let Some((_, names)) = HEARTBEAT_POSITIONAL.iter().find(|(k, _)| *k == kind) {
        return names.iter().map(|n| n.to_string()).collect();
    }
    let Some(xml) = meta_data(path, &lookup.ocf_root) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut rest = xml.as_str();
    while let Some(i) = rest.find("<parameter") {
        rest = &rest[i + "<parameter".len()..];
        if !rest.starts_with(|c: char| c.is_whitespace()) {
            continue; // <parameters>
        }
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        let name = tag
            .split_once("name=")
            .and_then(|(_, v)| {
                let q = v.chars().next()?;
                v[1..].split(q).next()
            })
            .filter(|n| !n.is_empty());
        if let Some(n) = name {
            names.push(n.to_string());
        }
    }
    names
}

/// `AGENT meta-data`'s output (OCF_ROOT set, 10 s at most).
fn meta_data(path: &Path, ocf_root: &Path) -> Option<String> {
    use std::io::Read;
    let mut child = std::process::Command::new(path)
        .arg("meta-data")
        .env_clear()
        .env("OCF_ROOT", ocf_root)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    reader.join().ok()
}

fn ocf(
    path: PathBuf,
    lookup: &Lookup,
    provider: &str,
    kind: &str,
    args: &[&str],
) -> Result<AgentKind, ArgsError> {
    let mut params = Vec::new();
    // heartbeat-style positional arguments (`MailTo::root::Failover`):
    // the parameter names in heartbeat's order, read once.
    let mut positional: Option<Vec<String>> = None;
    let mut next = 0;
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            let names = positional.get_or_insert_with(|| positional_names(&path, lookup, kind));
            if let Some(name) = names.get(next) {
                next += 1;
                params.push((name.clone(), a.to_string()));
                continue;
            }
            return Err(ArgsError::OcfNotKeyValue {
                provider: provider.into(),
                kind: kind.into(),
                arg: a.to_string(),
            });
        };
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ArgsError::OcfParamName {
                provider: provider.into(),
                kind: kind.into(),
                key: k.into(),
            });
        }
        params.push((k.to_string(), v.to_string()));
    }
    Ok(AgentKind::Ocf {
        path,
        ocf_root: lookup.ocf_root.clone(),
        provider: provider.to_string(),
        kind: kind.to_string(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn lookup(root: &Path) -> Lookup {
        Lookup {
            resource_d: root.join("ha.d/resource.d"),
            resources_dirs: vec![root.join("resources")],
            init_dir: root.join("init.d"),
            ocf_root: root.join("ocf"),
        }
    }

    #[test]
    fn lookup_order_is_heartbeats() {
        let t = tempfile::tempdir().unwrap();
        let l = lookup(t.path());
        script(&l.resource_d, "both");
        script(&t.path().join("resources"), "both");
        script(&t.path().join("resources"), "daemon");
        script(&l.init_dir, "svc");
        script(&l.init_dir, "daemon");
        script(&l.ocf_root.join("resource.d/heartbeat"), "Dummy");
        match resolve("both::a::b", &l).unwrap() {
            AgentKind::Heartbeat { path, args } => {
                assert_eq!(path, l.resource_d.join("both"));
                assert_eq!(args, vec!["a", "b"]);
            }
            k => panic!("{k:?}"),
        }
        assert!(matches!(
            resolve("daemon", &l).unwrap(),
            AgentKind::Heartbeat { path, .. } if path == t.path().join("resources/daemon")
        ));
        assert!(matches!(resolve("svc", &l).unwrap(), AgentKind::Lsb { .. }));
        assert!(resolve("svc::x", &l)
            .unwrap_err()
            .to_string()
            .contains("LSB"));
        match resolve("ocf:heartbeat:Dummy::state=/tmp/x::fake=1", &l).unwrap() {
            AgentKind::Ocf {
                provider,
                kind,
                params,
                ..
            } => {
                assert_eq!((provider.as_str(), kind.as_str()), ("heartbeat", "Dummy"));
                assert_eq!(params[0], ("state".to_string(), "/tmp/x".to_string()));
            }
            k => panic!("{k:?}"),
        }
        assert!(matches!(
            resolve("Dummy", &l).unwrap(),
            AgentKind::Ocf { .. }
        ));
        assert!(resolve("ocf:heartbeat:Dummy::positional", &l)
            .unwrap_err()
            .to_string()
            .contains("key=value"));
        assert!(resolve("../x", &l).is_err());
        assert!(resolve("ocf:x", &l).is_err());
    }

    #[test]
    fn heartbeat_positional_arguments_of_ocf_agents() {
        let t = tempfile::tempdir().unwrap();
        let l = lookup(t.path());
        let params = |spec: &str, l: &Lookup| match resolve(spec, l).unwrap() {
            AgentKind::Ocf { params, .. } => params,
            k => panic!("{k:?}"),
        };
        let kv = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        // An agent heartbeat had no wrapper for: its meta-data's order.
        let dir = l.ocf_root.join("resource.d/site");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("Notify");
        std::fs::write(
            &p,
            "#!/bin/sh
[ \"$1\" = meta-data ] || exit 3
cat <<EOF
<resource-agent name=\"Notify\">
             <parameters>
<parameter name=\"target\" required=\"1\">
</parameter>
             <parameter unique=\"0\" name='level'>
</parameter>
</parameters>
</resource-agent>
EOF
",
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            params("Notify::ops::high", &l),
            kv(&[("target", "ops"), ("level", "high")])
        );
        assert_eq!(
            params("Notify::ops::level=low", &l),
            kv(&[("target", "ops"), ("level", "low")])
        );
        let e = resolve("Notify::a::b::c", &l).unwrap_err().to_string();
        assert!(e.contains("argument `c` is not key=value"), "{e}");
        // MailTo from resource-agents (scripts/setup installs it), as
        // heartbeat's resource.d/MailTo wrapper maps it.
        let real = Lookup {
            ocf_root: PathBuf::from("/usr/lib/ocf"),
            ..lookup(t.path())
        };
        if real.ocf_root.join("resource.d/heartbeat/MailTo").exists() {
            assert_eq!(
                params("MailTo::root@example.com::Failover of www", &real),
                kv(&[
                    ("email", "root@example.com"),
                    ("subject", "Failover of www")
                ])
            );
        }
    }

    #[test]
    fn builtins_and_bare_addresses() {
        let t = tempfile::tempdir().unwrap();
        let l = lookup(t.path());
        assert!(matches!(
            resolve("192.0.2.100", &l).unwrap(),
            AgentKind::IpAddr(_)
        ));
        assert!(matches!(
            resolve("IPaddr2::192.168.1.100/24/eth1:0", &l).unwrap(),
            AgentKind::IpAddr(_)
        ));
        assert!(matches!(
            resolve("Filesystem::/dev/drbd0::/mnt/drbd::ext3", &l).unwrap(),
            AgentKind::Filesystem(_)
        ));
        // drbddisk is built in, even where resource.d has the script
        // (drbd-utils' drbddisk): the built-in one drives drbdadm when the
        // kernel module is loaded.
        script(&l.resource_d, "drbddisk");
        match resolve("drbddisk::r0", &l).unwrap() {
            AgentKind::Drbddisk(a) => {
                assert_eq!(a.res, "r0");
                assert_eq!(a.config_dir, t.path().join("ha.d"));
            }
            k => panic!("{k:?}"),
        }
        assert!(resolve("drbddisk", &l)
            .unwrap_err()
            .to_string()
            .contains("drbddisk::r0"));
    }

    /// The daemon tells drbddisk its node and run dir through the resource,
    /// not through process-wide state: two daemons' resources in one
    /// process (the tests) keep their own.
    #[test]
    fn the_context_travels_with_the_resource() {
        let t = tempfile::tempdir().unwrap();
        let l = lookup(t.path());
        let mk = || Resource {
            spec: "drbddisk::r0".into(),
            kind: resolve("drbddisk::r0", &l).unwrap(),
            options: Options::default(),
        };
        let (mut a, mut b) = (mk(), mk());
        a.set_context("n1", Path::new("/run/a"));
        b.set_context("n2", Path::new("/run/b"));
        let cx = |r: &Resource| match &r.kind {
            AgentKind::Drbddisk(d) => d.context(),
            k => panic!("{k:?}"),
        };
        assert_eq!(
            (cx(&a).node, cx(&a).run_dir),
            ("n1".into(), "/run/a".into())
        );
        assert_eq!(
            (cx(&b).node, cx(&b).run_dir),
            ("n2".into(), "/run/b".into())
        );
        // Other agents have nothing to take.
        let mut ip = Resource {
            spec: "192.0.2.100".into(),
            kind: resolve("192.0.2.100", &l).unwrap(),
            options: Options::default(),
        };
        ip.set_context("n1", Path::new("/run/a"));
        assert!(matches!(ip.kind, AgentKind::IpAddr(_)));
    }
}
