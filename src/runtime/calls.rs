//! The control socket's requests on the daemon loop: commands (`standby`,
//! `takeover`, `clear`, `fence`...) and the calls waiting for their groups
//! to move, the status document, the peer outdater's asks, and VRRP's
//! commands in both modes.

use super::*;

/// How long status waits for each replicated disk's device.
pub(super) const DISK_STATUS_TIMEOUT: Duration = Duration::from_millis(1000);

/// `hbctl standby|takeover INSTANCE` (or every instance with `None`).
pub(super) fn vrrp_command(
    vrrp: Option<&VrrpHandle>,
    standby: bool,
    instance: Option<&str>,
) -> Response {
    let Some(v) = vrrp else {
        return Response::Error {
            kind: ErrorKind::NotFound,
            message: match instance {
                Some(name) => format!(
                    "no group scope or VRRP instance {name}: use all, local, foreign \
                     (hbd runs no keepalived.conf here)"
                ),
                None => "hbd runs no keepalived.conf here".into(),
            },
        };
    };
    let r = if standby {
        v.standby(instance)
    } else {
        v.takeover(instance)
    };
    match r {
        Ok(names) => {
            tracing::info!(standby, instances = ?names, "operator command (VRRP)");
            Response::Done {
                groups: names,
                moves: Vec::new(),
            }
        }
        Err(e) => Response::Error {
            kind: ErrorKind::NotFound,
            message: e.to_string(),
        },
    }
}

/// The control socket in VRRP-only mode (keepalived.conf without ha.cf):
/// status lists the instances; standby and takeover act on them.
pub(super) fn vrrp_only_answer(
    config: &Config,
    vrrp: &VrrpHandle,
    started: Instant,
    request: Request,
) -> Response {
    match request {
        Request::Status => Response::Status(Box::new(Status {
            node: config.node.clone(),
            cluster: config.cluster.cluster.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            incarnation: 0,
            uptime_ms: started.elapsed().as_millis() as u64,
            keepalive_ms: 0,
            deadtime_ms: 0,
            nodes: Vec::new(),
            ping_nodes: Vec::new(),
            groups: Vec::new(),
            disks: Vec::new(),
            vrrp: vrrp.status(),
            counters: Default::default(),
            protection: None,
        })),
        Request::Standby { instance, .. } => vrrp_command(Some(vrrp), true, instance.as_deref()),
        Request::Takeover { instance, .. } => vrrp_command(Some(vrrp), false, instance.as_deref()),
        other => Response::Error {
            kind: ErrorKind::BadRequest,
            message: format!(
                "{other:?}: hbd runs in VRRP mode here (keepalived.conf, no ha.cf): no nodes or groups"
            ),
        },
    }
}

impl Daemon {
    /// Answers the `standby`/`takeover` calls whose groups have moved, failed
    /// or run out of time.
    pub(super) fn answer_waiting(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.waiting.len() {
            let w = &self.waiting[i];
            let progress = self.groups.progress(&w.command, &w.groups);
            let response = match progress {
                Progress::Done(moves) => Some(Response::Done {
                    groups: self.group_ids(&w.groups),
                    moves,
                }),
                Progress::Failed(message) => Some(Response::Error {
                    kind: ErrorKind::Failed,
                    message,
                }),
                Progress::Pending if now >= w.deadline => Some(Response::Error {
                    kind: ErrorKind::Timeout,
                    message: format!(
                        "not finished in time; it goes on. Now: {}",
                        self.group_summary(&w.groups)
                    ),
                }),
                Progress::Pending => None,
            };
            match response {
                Some(r) => {
                    let w = self.waiting.swap_remove(i);
                    let _ = w.reply.send(r);
                }
                None => i += 1,
            }
        }
    }

    pub(super) fn group_ids(&self, groups: &[usize]) -> Vec<String> {
        groups
            .iter()
            .map(|&i| self.config.groups[i].id.clone())
            .collect()
    }

    pub(super) fn group_summary(&self, groups: &[usize]) -> String {
        let status = self.groups.status();
        groups
            .iter()
            .map(|&i| {
                let g = &status[i];
                format!(
                    "{} {} on {}",
                    g.id,
                    g.state.as_str(),
                    g.owner.as_deref().unwrap_or("no node")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(super) fn call(&mut self, request: Request, reply: tokio::sync::oneshot::Sender<Response>) {
        let standby = matches!(request, Request::Standby { .. });
        let (command, wait_ms) = match request {
            Request::Standby {
                instance: Some(name),
                ..
            }
            | Request::Takeover {
                instance: Some(name),
                ..
            } => {
                let _ = reply.send(vrrp_command(self.vrrp.as_deref(), standby, Some(&name)));
                return;
            }
            Request::Standby { scope, wait_ms, .. } => {
                if scope == Scope::All && self.vrrp.is_some() {
                    let _ = vrrp_command(self.vrrp.as_deref(), true, None);
                }
                (Command::Standby(scope), wait_ms)
            }
            Request::Takeover { scope, wait_ms, .. } => {
                if scope == Scope::All && self.vrrp.is_some() {
                    let _ = vrrp_command(self.vrrp.as_deref(), false, None);
                }
                (Command::Takeover(scope), wait_ms)
            }
            Request::Clear { group } => (Command::Clear(group), None),
            Request::Fence { node } => {
                // Node names compare ignoring case (heartbeat lowercases them).
                let node = node.to_lowercase();
                if !self.config.ha.nodes.contains(&node) {
                    let _ = reply.send(Response::Error {
                        kind: ErrorKind::NotFound,
                        message: format!(
                            "no node {node} in the node list ({})",
                            self.config.ha.nodes.join(", ")
                        ),
                    });
                    return;
                }
                tracing::warn!(%node, "operator command: fence");
                self.fence.fence(&node, Some(reply));
                return;
            }
            Request::OutdatePeer {
                resource,
                timeout_ms,
            } => {
                self.outdate_peer(resource, timeout_ms, reply);
                return;
            }
            Request::Status if !self.disk_names().is_empty() => {
                // The devices answer on their own sockets: asked off the loop.
                let mut status = self.status();
                let names = self.disk_names();
                let run_dir = self.paths.run_dir.clone();
                tokio::spawn(async move {
                    status.disks =
                        crate::disk::client::summaries(&run_dir, &names, DISK_STATUS_TIMEOUT).await;
                    let _ = reply.send(Response::Status(Box::new(status)));
                });
                return;
            }
            other => {
                let _ = reply.send(self.answer(other));
                return;
            }
        };
        let now = self.now();
        if let Command::Clear(id) = &command {
            if let Some(i) = self.groups.group_index(id) {
                self.monitor.machine.clear(i);
            }
        }
        match self.groups.command(&command, now) {
            Err(why) => {
                let _ = reply.send(Response::Error {
                    kind: ErrorKind::Refused,
                    message: why.to_string(),
                });
            }
            Ok(groups) => {
                tracing::info!(command = ?command, groups = ?self.group_ids(&groups), "operator command");
                match wait_ms {
                    Some(ms) if !matches!(command, Command::Clear(_)) => {
                        self.waiting.push(Waiting {
                            command,
                            groups,
                            deadline: Instant::now() + Duration::from_millis(ms),
                            reply,
                        });
                    }
                    _ => {
                        let _ = reply.send(Response::Done {
                            groups: self.group_ids(&groups),
                            moves: Vec::new(),
                        });
                    }
                }
            }
        }
    }

    /// [`Request::OutdatePeer`]: a local device's fence-peer handler asks
    /// the built-in outdater to outdate its peer's copy.
    pub(super) fn outdate_peer(
        &mut self,
        resource: String,
        timeout_ms: u64,
        reply: tokio::sync::oneshot::Sender<Response>,
    ) {
        let peer = self
            .config
            .drbd
            .as_ref()
            .and_then(|d| d.resource(&resource))
            .and_then(|r| r.peer(&self.config.node))
            .map(|h| h.name.clone());
        let Some(peer) = peer else {
            let _ = reply.send(Response::Error {
                kind: ErrorKind::NotFound,
                message: format!(
                    "no drbd.conf resource {resource} on {} with a peer",
                    self.config.node
                ),
            });
            return;
        };
        let now = self.now();
        let peer_up = self
            .membership
            .status(now)
            .nodes
            .iter()
            .any(|n| n.name == peer && n.state == crate::membership::NodeState::Up);
        let timeout = Duration::from_millis(timeout_ms.clamp(100, 3_600_000));
        // The `outdate` phase of a failover: its duration and answer on
        // the event bus, on the way back to the device.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let observe = self.observe.clone();
        let kind = if self.timeline.in_failover() {
            "takeover"
        } else {
            "outdate"
        };
        let (res, started) = (resource.clone(), Instant::now());
        tokio::spawn(async move {
            let Ok(answer) = rx.await else { return };
            let mut ev = crate::events::Event::change(kind, &res)
                .phase("outdate", started.elapsed())
                .with("resource", &res);
            if let Response::Outdate { code, message } = &answer {
                ev = ev.with("code", code).with("message", message);
            }
            observe.publish(ev);
            let _ = reply.send(answer);
        });
        let reply = tx;
        if let Some(body) = self.outdater.ask(resource, peer, peer_up, timeout, reply) {
            self.membership.broadcast(body);
        }
    }

    /// The replicated disks whose devices (hbd's own, not the kernel
    /// module's) status lists: drbd.conf's resources with a section for
    /// this node.
    pub(super) fn disk_names(&self) -> Vec<String> {
        match &self.config.drbd {
            Some(d)
                if !self
                    .config
                    .cluster
                    .disk
                    .driver
                    .unwrap_or_default()
                    .is_kernel() =>
            {
                d.resources
                    .iter()
                    .filter(|r| r.host(&self.config.node).is_some())
                    .map(|r| r.name.clone())
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    pub(super) fn status(&self) -> Status {
        let now = self.now();
        let m = self.membership.status(now);
        let mut counters = m.counters;
        // What the media dropped before the machine saw it.
        let media = self.media.iter().flat_map(|m| m.drops.counts());
        for (reason, n) in self
            .retired_drops
            .iter()
            .map(|(r, n)| (*r, *n))
            .chain(media)
        {
            *counters.dropped.entry(reason.to_string()).or_insert(0) += n;
        }
        let checks = self.monitor.machine.status(now);
        let jobs = self.jobs.machine.status(jobs::unix_now());
        Status {
            node: m.node,
            cluster: self.config.cluster.cluster.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            incarnation: self.incarnation,
            uptime_ms: now.as_millis() as u64,
            keepalive_ms: self.config.ha.keepalive.as_millis() as u64,
            deadtime_ms: self.config.ha.deadtime.as_millis() as u64,
            nodes: m.nodes,
            disks: Vec::new(),
            vrrp: self.vrrp.as_ref().map(|v| v.status()).unwrap_or_default(),
            ping_nodes: self.ping.tracker.status(now),
            groups: self
                .groups
                .status()
                .into_iter()
                .enumerate()
                .map(|(i, v)| GroupStatus {
                    id: v.id,
                    home: v.home,
                    owner: v.owner,
                    state: v.state,
                    local: v.local,
                    nodes: v.nodes.into_iter().collect(),
                    desired: v.desired,
                    pref: v.pref,
                    note: v.note,
                    resources: self.runner.resources(i),
                    unhealthy: self.groups.unhealthy(i).map(String::from),
                    unhealthy_on: v.unhealthy_on,
                    events: self
                        .events
                        .get(i)
                        .map(|e| e.iter().cloned().collect())
                        .unwrap_or_default(),
                    checks: checks.iter().filter(|c| c.group == i).cloned().collect(),
                    jobs: jobs.iter().filter(|j| j.group == i).cloned().collect(),
                })
                .collect(),
            counters,
            protection: Some(self.protection(now)),
        }
    }

    pub(super) fn protection(&self, now: Duration) -> crate::ctl::ProtectionStatus {
        let tiebreaker = self.ping.settle.as_ref().map(|t| {
            let settled = t.settled();
            crate::ctl::TiebreakerStatus {
                settle_ms: self.config.tiebreaker.settle.as_millis() as u64,
                ping_nodes: u16::try_from(self.ping.tracker.status(now).len()).unwrap_or(u16::MAX),
                reached: self.ping.tracker.reachable(),
                settled,
                nodes: settled
                    .map(|n| (self.config.node.clone(), n))
                    .into_iter()
                    .collect(),
            }
        });
        crate::ctl::ProtectionStatus {
            is_witness: self.config.is_witness,
            witness: self.config.quorum.witness.clone(),
            wait_for_all: self.config.quorum.wait_for_all,
            quorum: self.groups.quorum(),
            tiebreaker,
            failure_timeout_ms: self.config.failure_timeout.map(|d| d.as_millis() as u64),
            fencing: fence::FenceRt::configured(&self.config),
            builtin_outdater: self.config.builtin_outdater,
        }
    }

    pub(super) fn answer(&self, request: Request) -> Response {
        match request {
            Request::Status => Response::Status(Box::new(self.status())),
            Request::ListNodes => Response::Nodes {
                nodes: self.config.ha.nodes.clone(),
            },
            Request::Standby { .. }
            | Request::Takeover { .. }
            | Request::Clear { .. }
            | Request::Fence { .. }
            | Request::Events { .. }
            | Request::Metrics
            | Request::OutdatePeer { .. } => Response::Error {
                kind: ErrorKind::BadRequest,
                message: "not answered here".into(),
            },
            Request::Daemon => Response::Daemon {
                node: self.config.node.clone(),
                config_dir: self.paths.config_dir.clone(),
                run_dir: self.paths.run_dir.clone(),
            },
            Request::NodeStatus { node } => {
                let found = self.status().nodes.into_iter();
                match found
                    .into_iter()
                    .find(|n| n.name.eq_ignore_ascii_case(&node))
                {
                    Some(n) => Response::NodeStatus(n),
                    None => Response::Error {
                        kind: ErrorKind::NotFound,
                        message: format!(
                            "no node {node} in the node list ({})",
                            self.config.ha.nodes.join(", ")
                        ),
                    },
                }
            }
        }
    }
}
