//! Fencing off the daemon loop: the groups machine's `Output::Fence(node)`
//! and `hbctl fence NODE` start one task per node; the outcome comes back
//! over a bounded channel and the loop hands it to `Groups::on_fenced`.
//!
//! ```text
//!   loop ── fence(node) ──▶ task: fence::run::fence (agent, timeout)
//!     ▲                                   │
//!     └──────── Outcome (mpsc) ◀──────────┘
//! ```
//!
//! A second request for a node already being fenced joins the running one
//! (one agent run per node at a time: two concurrent power cycles of the
//! same machine would race).

use crate::config::Config;
use crate::ctl::{ErrorKind, Response};
use crate::fence::run::Outcome;
use crate::fence::{self, FenceDevice, FencingSettings};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Outcomes waiting for the loop; a fence task waits when it is full.
pub const RESULT_QUEUE: usize = 16;

/// The fence devices of this node and the calls in flight.
pub struct FenceRt {
    me: String,
    devices: Arc<Vec<FenceDevice>>,
    dirs: Arc<Vec<PathBuf>>,
    settings: FencingSettings,
    tx: mpsc::Sender<Outcome>,
    /// Nodes being fenced, with the operators waiting for the outcome.
    running: HashMap<String, Vec<oneshot::Sender<Response>>>,
}

impl FenceRt {
    /// `settings`: cluster.toml `[fencing]` (defaults until it is parsed).
    pub fn new(config: &Config, settings: FencingSettings, tx: mpsc::Sender<Outcome>) -> FenceRt {
        let resources = crate::config::agent_lookup(&config.dir, &config.cluster).resources_dirs;
        FenceRt {
            me: config.node.clone(),
            devices: Arc::new(devices_of(config)),
            dirs: Arc::new(fence::run::agent_dirs(&resources)),
            settings,
            tx,
            running: HashMap::new(),
        }
    }

    /// Whether this node can fence every other node: the groups machine
    /// then waits for fencing before taking a dead node's groups over.
    pub fn configured(config: &Config) -> bool {
        let devices = devices_of(config);
        !devices.is_empty()
            && config
                .ha
                .nodes
                .iter()
                .filter(|n| **n != config.node)
                .all(|n| !fence::devices_for(&devices, &config.node, n).is_empty())
    }

    /// Takes a reloaded configuration's devices (calls in flight go on
    /// with the old ones).
    pub fn reconfigure(&mut self, config: &Config) {
        self.devices = Arc::new(devices_of(config));
    }

    /// Starts fencing `node` (or joins the run in flight); `reply`: an
    /// operator's call, answered when it ends.
    pub fn fence(&mut self, node: &str, reply: Option<oneshot::Sender<Response>>) {
        if let Some(waiters) = self.running.get_mut(node) {
            tracing::info!(%node, "fencing already in progress");
            waiters.extend(reply);
            return;
        }
        if fence::devices_for(&self.devices, &self.me, node).is_empty() {
            let message = if node == self.me {
                format!("{node} is this node: hbd does not fence itself (see `watchdog`)")
            } else {
                format!("no stonith_host line lets {} fence {node}", self.me)
            };
            tracing::error!(%node, %message, "cannot fence");
            // Reported as a failed fencing, through the channel like any
            // outcome: a group never starts on a guess.
            self.running
                .insert(node.to_string(), reply.into_iter().collect());
            let (tx, node) = (self.tx.clone(), node.to_string());
            tokio::spawn(async move {
                let _ = tx
                    .send(Outcome {
                        node,
                        ok: false,
                        message,
                    })
                    .await;
            });
            return;
        }
        self.running
            .insert(node.to_string(), reply.into_iter().collect());
        let (devices, dirs, me, node, settings, tx) = (
            self.devices.clone(),
            self.dirs.clone(),
            self.me.clone(),
            node.to_string(),
            self.settings,
            self.tx.clone(),
        );
        tokio::spawn(async move {
            let o = fence::run::fence(&devices, &dirs, &me, &node, settings).await;
            let _ = tx.send(o).await;
        });
    }

    /// A fencing ended: answers the operators who asked for it.
    pub fn done(&mut self, o: &Outcome) {
        if o.ok {
            tracing::warn!(node = %o.node, message = %o.message, "node fenced");
        } else {
            tracing::error!(node = %o.node, message = %o.message, "FENCING FAILED");
        }
        for w in self.running.remove(&o.node).unwrap_or_default() {
            let _ = w.send(if o.ok {
                Response::Fenced {
                    node: o.node.clone(),
                    message: o.message.clone(),
                }
            } else {
                Response::Error {
                    kind: ErrorKind::Failed,
                    message: format!("fencing {} failed: {}", o.node, o.message),
                }
            });
        }
    }
}

/// The fence devices of ha.cf's `stonith_host` lines.
fn devices_of(config: &Config) -> Vec<FenceDevice> {
    config
        .ha
        .stonith_hosts
        .iter()
        .map(|(d, _)| d.clone())
        .collect()
}
