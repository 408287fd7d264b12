//! The operator's workflows on this node's replicated disks (`hbctl disk`
//! and `hbctl split-brain`, drbdadm's way): one verb on a device, the
//! split-brain listing and its resolution, the resync watch. They talk to
//! the device processes through [`super::client`]; what they print comes
//! back as text or goes to the caller's writer (the resync watch's
//! progress), what goes wrong as an [`AdminError`].

use super::client;
use super::conf::{DrbdConf, ResourceConf};
use super::ctl::{Counters, DiskRequest, DiskResponse, DiskStatus, SplitBrainStatus, SyncStatus};
use super::meta;
use super::report;
use super::state::{ConnState, DiskState, Role};
use crate::config::{self, ConfigErrors};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Queries (status, role...) answer within this, or the device is reported
/// unresponsive.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a disk workflow failed; each displays as drbdsetup would say it.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The configuration does not load (one error a line).
    #[error("{0}")]
    Config(ConfigErrors),
    #[error("no drbd.conf in {} (nor [disk] drbd_conf in cluster.toml)", dir.display())]
    NoDrbdConf { dir: PathBuf },
    #[error("no resource {res} (resources: {})", names.join(", "))]
    NoResource { res: String, names: Vec<String> },
    /// cluster.toml's `[disk] driver` means the DRBD kernel module: hbd's
    /// device is never started on its disks.
    #[error(
        "cluster.toml [disk] driver is kernel{}: the DRBD module drives these \
         resources; use drbdadm (or set driver = \"embedded\")",
        if *proc_drbd { " (or auto, and /proc/drbd exists)" } else { "" }
    )]
    KernelDriver { proc_drbd: bool },
    #[error("{res}: no `on {node}` section")]
    NoHost { res: String, node: String },
    /// The device refused a state change.
    #[error("{res}: State change failed: {message}")]
    Refused { res: String, message: String },
    #[error("{res}: {message}")]
    Failed { res: String, message: String },
    #[error("{res}: not up (hbctl disk up {res})")]
    NotUp { res: String },
    /// Starting or stopping the device process failed.
    #[error(transparent)]
    Device(client::ClientError),
    #[error(
        "{res}: {} already has valid metadata; --force overwrites it \
         (its generation UUIDs and bitmap are lost)",
        disk.display()
    )]
    MetaExists { res: String, disk: PathBuf },
    #[error("{res}: {}: {source}", disk.display())]
    Meta {
        res: String,
        disk: PathBuf,
        source: meta::MetaError,
    },
    #[error("{res}: no peer of {node} in drbd.conf")]
    NoPeer { res: String, node: String },
    #[error("{res}: --survivor {survivor}: the nodes of {res} are {node} and {peer}")]
    NotANode {
        res: String,
        survivor: String,
        node: String,
        peer: String,
    },
    /// One step of a resolution refused by the device on `node`.
    #[error("{res}: {node}: {what}: State change failed: {message}")]
    StepRefused {
        res: String,
        node: String,
        what: &'static str,
        message: String,
    },
    #[error("{res}: {node}: {what}: {message}")]
    StepFailed {
        res: String,
        node: String,
        what: &'static str,
        message: String,
    },
    #[error("{res}: not up here (hbctl disk up {res})")]
    NotUpHere { res: String },
    /// The victim is Primary and would not demote; see [`AdminError::advice`].
    #[error("{source}")]
    NotDemoted {
        res: String,
        victim: String,
        source: Box<AdminError>,
    },
    #[error(
        "{res}: StandAlone again{}: see hbctl disk status {res}",
        last_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    StandAloneAgain {
        res: String,
        last_error: Option<String>,
    },
    #[error(
        "{res}: not in sync after {}s ({connection} {disk}/{peer_disk}); the resync goes on",
        timeout.as_secs()
    )]
    NotInSync {
        res: String,
        timeout: Duration,
        connection: ConnState,
        disk: DiskState,
        peer_disk: DiskState,
    },
    /// The progress could not be written.
    #[error("{0}")]
    Output(#[from] std::io::Error),
}

impl AdminError {
    /// What the operator should do about it, when there is more to say
    /// than the error (a line of its own).
    pub fn advice(&self) -> Option<String> {
        match self {
            AdminError::NotDemoted { res, victim, .. } => Some(format!(
                "{res}: {victim} is Primary and cannot be demoted: stop what uses the \
                 device there first (unmount it, or move its resource group: hbctl standby)"
            )),
            _ => None,
        }
    }
}

/// One verb of `hbctl disk` on one resource (`proc` and `status --json`
/// are [`DiskAdmin::proc_text`] and [`DiskAdmin::status_json`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Write fresh metadata; `force` overwrites valid metadata.
    CreateMd {
        force: bool,
    },
    DumpMd,
    /// Start the device process (drbdadm up).
    Up,
    /// Demote, disconnect, detach, end the device process.
    Down,
    /// Print the roles, local/peer.
    Role,
    /// Print the connection state.
    Cstate,
    /// Print the disk states, local/peer.
    Dstate,
    /// Show the resource's state.
    Status,
    /// Apply drbd.conf's changes (starts the device when down).
    Adjust,
    /// A plain state change: the device's answer is all.
    Request(DiskRequest),
}

impl Op {
    /// Whether it may start hbd's device process.
    fn starts_device(&self) -> bool {
        matches!(self, Op::Up | Op::Adjust)
    }
}

/// What `hbctl disk` and `hbctl split-brain` work with.
pub struct DiskAdmin {
    config_dir: PathBuf,
    node: String,
    run_dir: PathBuf,
    timeout: Duration,
    drbd: DrbdConf,
    /// cluster.toml's `[disk] driver` means the DRBD kernel module here.
    kernel: bool,
}

impl DiskAdmin {
    /// Loads the configuration in `config_dir` for `node`; the devices run
    /// in `run_dir`, and a request may take `timeout`.
    pub fn load(
        config_dir: &Path,
        node: String,
        run_dir: PathBuf,
        timeout: Duration,
    ) -> Result<DiskAdmin, AdminError> {
        let c = config::load(config_dir, &node).map_err(AdminError::Config)?;
        let Some(drbd) = c.drbd else {
            return Err(AdminError::NoDrbdConf {
                dir: config_dir.to_path_buf(),
            });
        };
        let kernel = c.cluster.disk.driver.unwrap_or_default().is_kernel();
        Ok(DiskAdmin {
            config_dir: config_dir.to_path_buf(),
            node,
            run_dir,
            timeout,
            drbd,
            kernel,
        })
    }

    /// The resources `res` names (`all`: every one); an unknown name is an
    /// error.
    pub fn chosen(&self, res: &str) -> Result<Vec<&ResourceConf>, AdminError> {
        let chosen: Vec<_> = self
            .drbd
            .resources
            .iter()
            .filter(|r| res == "all" || r.name == res)
            .collect();
        if chosen.is_empty() {
            return Err(self.no_resource(res));
        }
        Ok(chosen)
    }

    fn no_resource(&self, res: &str) -> AdminError {
        AdminError::NoResource {
            res: res.to_string(),
            names: self.drbd.resources.iter().map(|r| r.name.clone()).collect(),
        }
    }

    /// How long a query (status, role...) may take.
    fn query_timeout(&self) -> Duration {
        self.timeout.min(QUERY_TIMEOUT)
    }

    /// Sends `req` to `res`'s device: its status and message when done.
    fn ask(
        &self,
        res: &str,
        req: DiskRequest,
        timeout: Duration,
    ) -> Result<(Box<DiskStatus>, Option<String>), AdminError> {
        match client::request_raw(&self.run_dir, res, req, timeout) {
            Ok(DiskResponse::Done { status, message }) => Ok((status, message)),
            Ok(DiskResponse::Refused { message, .. }) => Err(AdminError::Refused {
                res: res.to_string(),
                message,
            }),
            Ok(DiskResponse::Failed { message }) => Err(AdminError::Failed {
                res: res.to_string(),
                message,
            }),
            Err(client::ClientError::NotUp { .. }) => Err(AdminError::NotUp {
                res: res.to_string(),
            }),
            Err(e) => Err(AdminError::Failed {
                res: res.to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Refuses `op` when it would start hbd's device on a disk the kernel
    /// module drives.
    pub fn check_driver(&self, op: &Op) -> Result<(), AdminError> {
        if self.kernel && op.starts_device() {
            return Err(AdminError::KernelDriver {
                proc_drbd: Path::new("/proc/drbd").exists(),
            });
        }
        Ok(())
    }

    /// Carries out `op` on `r` here; the text to print (may be empty).
    pub fn run(&self, r: &ResourceConf, op: &Op) -> Result<String, AdminError> {
        self.check_driver(op)?;
        let res = r.name.as_str();
        if r.host(&self.node).is_none() {
            return Err(AdminError::NoHost {
                res: res.to_string(),
                node: self.node.clone(),
            });
        }
        match op {
            Op::CreateMd { .. } | Op::DumpMd => self.disk_md(r, op),
            Op::Up => {
                let s = client::up(
                    &self.config_dir,
                    &self.node,
                    &self.run_dir,
                    res,
                    self.timeout,
                )
                .map_err(AdminError::Device)?;
                Ok(format!(
                    "{res}: up: {}/{} {} {}/{}\n",
                    s.role, s.peer_role, s.connection, s.disk, s.peer_disk
                ))
            }
            Op::Down => match client::down(&self.run_dir, res, self.timeout) {
                Ok(None) | Ok(Some(DiskResponse::Done { .. })) => Ok(String::new()),
                Ok(Some(DiskResponse::Refused { message, .. })) => Err(AdminError::Refused {
                    res: res.to_string(),
                    message,
                }),
                Ok(Some(DiskResponse::Failed { message })) => Err(AdminError::Failed {
                    res: res.to_string(),
                    message,
                }),
                Err(e) => Err(AdminError::Device(e)),
            },
            Op::Role | Op::Cstate | Op::Dstate => {
                match self.ask(res, DiskRequest::Status, self.query_timeout()) {
                    Ok((s, _)) => Ok(format!("{}\n", state_word(op, &s))),
                    // drbdadm prints this for a resource that is down.
                    Err(AdminError::NotUp { .. }) => Ok("Unconfigured\n".into()),
                    Err(e) => Err(e),
                }
            }
            Op::Status => match self.ask(res, DiskRequest::Status, self.query_timeout()) {
                Ok((s, _)) => Ok(report::status_text(&s)),
                Err(AdminError::NotUp { .. }) => Ok(format!("{res} Unconfigured\n")),
                Err(e) => Err(e),
            },
            Op::Adjust => match self.ask(res, DiskRequest::Adjust, self.timeout) {
                // drbdadm adjust brings a resource that is down up.
                Err(AdminError::NotUp { .. }) => client::up(
                    &self.config_dir,
                    &self.node,
                    &self.run_dir,
                    res,
                    self.timeout,
                )
                .map(|_| String::new())
                .map_err(AdminError::Device),
                asked => done_message(res, asked),
            },
            Op::Request(req) => done_message(res, self.ask(res, req.clone(), self.timeout)),
        }
    }

    /// `status --json`: each of `chosen`'s status as JSON (a device that
    /// is down as `Unconfigured`), or why it did not answer.
    pub fn status_json(
        &self,
        chosen: &[&ResourceConf],
    ) -> Vec<Result<serde_json::Value, AdminError>> {
        chosen
            .iter()
            .map(
                |r| match self.ask(&r.name, DiskRequest::Status, self.query_timeout()) {
                    Ok((s, _)) => Ok(serde_json::to_value(&*s).unwrap_or_default()),
                    Err(AdminError::NotUp { .. }) => Ok(serde_json::json!({
                        "name": r.name,
                        "connection": "Unconfigured",
                    })),
                    Err(e) => Err(e),
                },
            )
            .collect()
    }

    /// `proc`: /proc/drbd for every configured device that is up.
    pub fn proc_text(&self) -> String {
        let mut statuses = Vec::new();
        for (i, r) in self.drbd.resources.iter().enumerate() {
            if let Ok(s) = client::status(&self.run_dir, &r.name, self.query_timeout()) {
                let minor = r
                    .host(&self.node)
                    .and_then(|h| h.minor)
                    .unwrap_or_else(|| report::minor_of(&s.device, i as u32));
                statuses.push((minor, s));
            }
        }
        statuses.sort_by_key(|(m, _)| *m);
        let refs: Vec<(u32, Option<&DiskStatus>)> =
            statuses.iter().map(|(m, s)| (*m, Some(s))).collect();
        report::proc_lines_with_minors(&refs)
    }

    /// `create-md` and `dump-md` on this node's backing disk of `r`.
    fn disk_md(&self, r: &ResourceConf, op: &Op) -> Result<String, AdminError> {
        let Some(host) = r.host(&self.node) else {
            return Err(AdminError::NoHost {
                res: r.name.clone(),
                node: self.node.clone(),
            });
        };
        let meta_error = |source| AdminError::Meta {
            res: r.name.clone(),
            disk: host.disk.clone(),
            source,
        };
        let disk = host.disk.display();
        match op {
            Op::CreateMd { force } => match meta::create(&host.disk, *force) {
                Ok(m) => Ok(format!(
                    "{}: metadata created on {disk}: data area {} bytes, metadata from byte {}\n",
                    r.name, m.layout.data_size, m.layout.al_offset
                )),
                Err(meta::MetaError::Exists) => Err(AdminError::MetaExists {
                    res: r.name.clone(),
                    disk: host.disk.clone(),
                }),
                Err(e) => Err(meta_error(e)),
            },
            _ => match meta::open(&host.disk) {
                Ok((m, f)) => {
                    let oos = meta::read_bitmap(&f, &m.layout)
                        .map(|b| b.out_of_sync_bytes().to_string())
                        .unwrap_or_else(|e| format!("unreadable: {e}"));
                    Ok(format!(
                        "{}: {disk}\n  device size {} bytes, data area {} bytes\n  \
                         uuids current {:016X} bitmap {:016X} history {:016X}:{:016X}\n  \
                         flags {:?}\n  out of sync {oos} bytes\n",
                        r.name,
                        m.layout.device_size,
                        m.layout.data_size,
                        m.uuids.current,
                        m.uuids.bitmap,
                        m.uuids.history[0],
                        m.uuids.history[1],
                        m.flags
                    ))
                }
                Err(e) => Err(meta_error(e)),
            },
        }
    }

    /// `hbctl split-brain`: the status of each resource in split brain
    /// here, or why its device did not answer (devices that are down are
    /// left out).
    pub fn split_brains(&self) -> Vec<Result<Box<DiskStatus>, AdminError>> {
        self.drbd
            .resources
            .iter()
            .filter_map(
                |r| match self.ask(&r.name, DiskRequest::Status, self.query_timeout()) {
                    Ok((s, _)) if s.split_brain.is_some() => Some(Ok(s)),
                    Ok(_) | Err(AdminError::NotUp { .. }) => None,
                    Err(e) => Some(Err(e)),
                },
            )
            .collect()
    }

    /// `hbctl split-brain resolve RES --survivor NODE`: the seed's recovery
    /// (victim: secondary, disconnect, connect --discard-my-data; survivor:
    /// connect), then the resync, watched to its end; every step and the
    /// progress are written to `out`.
    pub fn resolve(
        &self,
        res: &str,
        survivor: &str,
        timeout: Duration,
        out: &mut dyn Write,
    ) -> Result<(), AdminError> {
        let Some(conf) = self.drbd.resource(res) else {
            return Err(self.no_resource(res));
        };
        let Some(peer) = conf.peer(&self.node) else {
            return Err(AdminError::NoPeer {
                res: res.to_string(),
                node: self.node.clone(),
            });
        };
        let peer = peer.name.clone();
        if survivor != self.node && survivor != peer {
            return Err(AdminError::NotANode {
                res: res.to_string(),
                survivor: survivor.to_string(),
                node: self.node.clone(),
                peer,
            });
        }
        let victim_here = survivor != self.node;
        let victim = if victim_here {
            self.node.as_str()
        } else {
            peer.as_str()
        };
        let (local, _) = self.ask(res, DiskRequest::Status, self.query_timeout())?;
        if local.split_brain.is_none() && local.connection >= ConnState::Connected {
            writeln!(
                out,
                "{res}: {} and connected ({}/{}): no split brain to resolve",
                local.connection, local.disk, local.peer_disk
            )?;
            return Ok(());
        }
        let changes = local.split_brain.as_ref().map(|sb| {
            if victim_here {
                sb.my_changes_bytes
            } else {
                sb.peer_changes_bytes
            }
        });
        writeln!(
            out,
            "{res}: keeping {survivor}'s data; {victim}'s changes since the split{} are discarded",
            changes
                .map(|b| format!(" ({})", report::bytes(b)))
                .unwrap_or_default()
        )?;
        let victim_status = self.step(
            out,
            res,
            (victim_here, victim),
            "status",
            DiskRequest::Status,
        )?;
        if victim_status.role == Role::Primary {
            if let Err(e) = self.step(
                out,
                res,
                (victim_here, victim),
                "secondary",
                DiskRequest::Secondary,
            ) {
                return Err(AdminError::NotDemoted {
                    res: res.to_string(),
                    victim: victim.to_string(),
                    source: Box::new(e),
                });
            }
        }
        let before = local.counters.clone();
        for (what, req) in [
            ("disconnect", DiskRequest::Disconnect),
            (
                "connect --discard-my-data",
                DiskRequest::Connect {
                    discard_my_data: true,
                },
            ),
        ] {
            self.step(out, res, (victim_here, victim), what, req)?;
        }
        let survivor_status = self.step(
            out,
            res,
            (!victim_here, survivor),
            "status",
            DiskRequest::Status,
        )?;
        if survivor_status.connection == ConnState::StandAlone {
            self.step(
                out,
                res,
                (!victim_here, survivor),
                "connect",
                DiskRequest::Connect {
                    discard_my_data: false,
                },
            )?;
        }
        self.watch_resync(res, timeout, victim_here, &before, out)
    }

    /// One step of [`DiskAdmin::resolve`] on one side, `(here, node)`:
    /// this node's device, or the peer's through it.
    fn step(
        &self,
        out: &mut dyn Write,
        res: &str,
        (here, node): (bool, &str),
        what: &'static str,
        req: DiskRequest,
    ) -> Result<Box<DiskStatus>, AdminError> {
        if !matches!(req, DiskRequest::Status) {
            writeln!(out, "{res}: {node}: {what}")?;
        }
        match self.ask(res, side_request(here, req), self.timeout) {
            Ok((s, _)) => Ok(s),
            Err(AdminError::Refused { message, .. }) => Err(AdminError::StepRefused {
                res: res.to_string(),
                node: node.to_string(),
                what,
                message,
            }),
            Err(AdminError::Failed { message, .. }) => Err(AdminError::StepFailed {
                res: res.to_string(),
                node: node.to_string(),
                what,
                message,
            }),
            Err(AdminError::NotUp { .. }) => Err(AdminError::NotUpHere {
                res: res.to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Waits until `res` is Connected and UpToDate on both sides, writing
    /// the resync's progress to `out`, then reports it there.
    pub fn watch_resync(
        &self,
        res: &str,
        timeout: Duration,
        victim_here: bool,
        before: &Counters,
        out: &mut dyn Write,
    ) -> Result<(), AdminError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut seen: Option<(Instant, SyncStatus)> = None;
        let mut last_print: Option<Instant> = None;
        let mut standalone_since: Option<Instant> = None;
        loop {
            let (s, _) = self.ask(res, DiskRequest::Status, self.query_timeout())?;
            if let Some(y) = &s.sync {
                let first = seen.as_ref().map(|(t, _)| *t).unwrap_or_else(Instant::now);
                let mut keep = y.clone();
                if let Some((_, old)) = &seen {
                    keep.total_bytes = keep.total_bytes.max(old.total_bytes);
                    keep.full |= old.full;
                }
                if seen.is_none() {
                    writeln!(
                        out,
                        "{res}: resync started: {} {} ({}{})",
                        if y.source { "SyncSource" } else { "SyncTarget" },
                        report::bytes(y.total_bytes),
                        if y.full { "full sync" } else { "bitmap resync" },
                        if y.paused { ", paused" } else { "" }
                    )?;
                }
                seen = Some((first, keep));
                if last_print.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    last_print = Some(Instant::now());
                    writeln!(
                        out,
                        "{res}: {} {:.1}% ({} of {}), eta {}",
                        s.connection,
                        y.percent,
                        report::bytes(y.done_bytes),
                        report::bytes(y.total_bytes),
                        y.eta_secs.map(report::hms).unwrap_or_else(|| "?".into())
                    )?;
                }
            }
            let synced = s.connection == ConnState::Connected
                && s.disk == DiskState::UpToDate
                && s.peer_disk == DiskState::UpToDate;
            if synced {
                let secs = seen
                    .as_ref()
                    .map(|(t, _)| t.elapsed())
                    .unwrap_or_else(|| started.elapsed())
                    .as_secs_f64();
                let moved_kib = if victim_here {
                    s.counters.nr.saturating_sub(before.nr)
                } else {
                    s.counters.ns.saturating_sub(before.ns)
                };
                let (bytes, kind) = match &seen {
                    Some((_, y)) => (
                        y.total_bytes,
                        if y.full {
                            "full sync"
                        } else {
                            "bitmap resync, not a full sync"
                        },
                    ),
                    None => (moved_kib * 1024, "bitmap resync (too short to watch)"),
                };
                writeln!(
                    out,
                    "{res}: resolved: Connected {}/{} {}/{}; resynced {} ({bytes} bytes) in {secs:.1}s, {kind}",
                    s.role, s.peer_role, s.disk, s.peer_disk,
                    report::bytes(bytes)
                )?;
                return Ok(());
            }
            if s.connection == ConnState::StandAlone {
                let since = *standalone_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(10) {
                    return Err(AdminError::StandAloneAgain {
                        res: res.to_string(),
                        last_error: s.last_error.clone(),
                    });
                }
            } else {
                standalone_since = None;
            }
            if Instant::now() >= deadline {
                return Err(AdminError::NotInSync {
                    res: res.to_string(),
                    timeout,
                    connection: s.connection,
                    disk: s.disk,
                    peer_disk: s.peer_disk,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The text of a state change the device carried out: its message, if any.
fn done_message(
    res: &str,
    asked: Result<(Box<DiskStatus>, Option<String>), AdminError>,
) -> Result<String, AdminError> {
    asked.map(|(_, m)| m.map(|m| format!("{res}: {m}\n")).unwrap_or_default())
}

/// What `role`, `cstate` and `dstate` print, as drbdadm 8.4.
fn state_word(op: &Op, s: &DiskStatus) -> String {
    match op {
        Op::Role => format!("{}/{}", s.role, s.peer_role),
        Op::Dstate => format!("{}/{}", s.disk, s.peer_disk),
        _ => s.connection.to_string(),
    }
}

/// A request to one side of a resource: this node's device, or the peer's
/// through it.
fn side_request(here: bool, req: DiskRequest) -> DiskRequest {
    if here {
        req
    } else {
        DiskRequest::Remote {
            forward: Box::new(req),
        }
    }
}

/// One resource in split brain, for `hbctl split-brain --json`.
#[derive(serde::Serialize)]
pub struct SplitBrainEntry<'a> {
    pub name: &'a str,
    pub node: &'a str,
    pub peer: &'a str,
    pub role: String,
    pub connection: String,
    pub split_brain: &'a SplitBrainStatus,
}

/// The JSON entries of the resources in split brain.
pub fn split_brain_entries(found: &[Box<DiskStatus>]) -> Vec<SplitBrainEntry<'_>> {
    found
        .iter()
        .filter_map(|s| {
            s.split_brain.as_ref().map(|sb| SplitBrainEntry {
                name: &s.name,
                node: &s.node,
                peer: &s.peer,
                role: s.role.to_string(),
                connection: s.connection.to_string(),
                split_brain: sb,
            })
        })
        .collect()
}

/// What each side of the resources in split brain changed, as text.
pub fn split_brain_text(found: &[Box<DiskStatus>]) -> String {
    found
        .iter()
        .filter_map(|s| {
            s.split_brain
                .as_ref()
                .map(|sb| report::split_brain_text(s, sb))
        })
        .collect()
}

#[cfg(test)]
mod tests;
