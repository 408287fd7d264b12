//! The built-in peer outdater: heartbeat's dopd (`drbd-peer-outdater`),
//! DRBD 8.4's resource-level fencing carried over the heartbeat media.
//!
//! ```text
//!  n1: hbd-disk r0 ── OutdatePeer (ctl) ──▶ hbd n1 ══ Body::Outdate ══▶ hbd n2
//!        ▲  (fence-peer handler)              │ (every medium, resent      │
//!        │                                    │  each keepalive)            ▼
//!        └── Response::Outdate{code} ◀────────┘◀══ Body::Outdate{answer} ══ hbd-disk r0
//!                                                                  (OutdateForPeer)
//! ```
//!
//! The asking side answers its device 4 (outdated), 3 (peer Inconsistent),
//! 6 (peer is Primary), or 5 (peer dead in the membership, or no answer
//! within the handler's timeout). The asked side asks its device (or,
//! when no device process runs, marks the metadata Outdated itself) and
//! answers; answers are cached, so repeated requests are answered again
//! without asking the device twice.

use crate::ctl::Response;
use crate::disk::ctl::DiskRequest;
use crate::disk::fence;
use crate::wire::{Body, Outdate, OutdateAnswer};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How long the asked side waits for its device (it may wait for its own
/// side of the replication link to time out first).
pub const DEVICE_TIMEOUT: Duration = Duration::from_secs(15);
/// Answers kept for repeated requests.
const ANSWERS_KEPT: usize = 32;
/// Requests of peers answered at once (a flood is dropped: the asker
/// repeats).
const MAX_ANSWERING: usize = 8;

/// The answer of the local device, back on the daemon loop.
#[derive(Debug)]
pub struct Done {
    node: String,
    resource: String,
    id: u64,
    answer: OutdateAnswer,
}

struct Asking {
    id: u64,
    peer: String,
    resource: String,
    deadline: Instant,
    next_send: Instant,
    reply: oneshot::Sender<Response>,
}

/// The outdater's state on the daemon loop.
pub struct Outdater {
    node: String,
    run_dir: PathBuf,
    config_dir: PathBuf,
    next_id: u64,
    asking: Vec<Asking>,
    answering: Vec<(String, String, u64)>,
    answered: VecDeque<((String, String, u64), OutdateAnswer)>,
    done: mpsc::UnboundedSender<Done>,
}

impl Outdater {
    pub fn new(
        node: &str,
        run_dir: PathBuf,
        config_dir: PathBuf,
        done: mpsc::UnboundedSender<Done>,
    ) -> Outdater {
        Outdater {
            node: node.to_string(),
            run_dir,
            config_dir,
            next_id: 1,
            asking: Vec::new(),
            answering: Vec::new(),
            answered: VecDeque::new(),
            done,
        }
    }

    /// A local device's fence-peer handler asks: `peer_up` says whether the
    /// membership has the peer up. Returns the request to broadcast.
    pub fn ask(
        &mut self,
        resource: String,
        peer: String,
        peer_up: bool,
        timeout: Duration,
        reply: oneshot::Sender<Response>,
    ) -> Option<Body> {
        if !peer_up {
            // dopd: a peer heartbeat declared dead cannot be asked.
            tracing::warn!(%resource, %peer, "outdater: the peer is dead: answering 5 (peer unreachable)");
            let _ = reply.send(Response::Outdate {
                code: fence::PEER_UNREACHABLE,
                message: format!("{peer} is dead (heartbeat)"),
            });
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        tracing::info!(%resource, %peer, id, timeout_ms = timeout.as_millis() as u64, "outdater: asking the peer to outdate its disk");
        let now = Instant::now();
        let body = Body::Outdate(Outdate {
            to: peer.clone(),
            resource: resource.clone(),
            id,
            answer: None,
        });
        self.asking.push(Asking {
            id,
            peer,
            resource,
            deadline: now + timeout,
            next_send: now,
            reply,
        });
        Some(body)
    }

    /// Requests to send again (every `interval`), and requests that timed
    /// out (answered 5).
    pub fn tick(&mut self, interval: Duration) -> Vec<Body> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.asking.len() {
            let a = &mut self.asking[i];
            if now >= a.deadline {
                let a = self.asking.swap_remove(i);
                tracing::warn!(resource = %a.resource, peer = %a.peer, "outdater: no answer in time: answering 5 (peer unreachable)");
                let _ = a.reply.send(Response::Outdate {
                    code: fence::PEER_UNREACHABLE,
                    message: format!("{} did not answer in time", a.peer),
                });
                continue;
            }
            if now >= a.next_send {
                a.next_send = now + interval;
                out.push(Body::Outdate(Outdate {
                    to: a.peer.clone(),
                    resource: a.resource.clone(),
                    id: a.id,
                    answer: None,
                }));
            }
            i += 1;
        }
        out
    }

    /// When [`Outdater::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.asking
            .iter()
            .map(|a| a.next_send.min(a.deadline))
            .min()
    }

    /// The peer `node` died: its outstanding requests are answered 5 now.
    pub fn peer_dead(&mut self, node: &str) {
        let (dead, alive): (Vec<Asking>, Vec<Asking>) =
            self.asking.drain(..).partition(|a| a.peer == node);
        self.asking = alive;
        for a in dead {
            tracing::warn!(resource = %a.resource, peer = %node, "outdater: the peer died: answering 5 (peer unreachable)");
            let _ = a.reply.send(Response::Outdate {
                code: fence::PEER_UNREACHABLE,
                message: format!("{node} died (heartbeat)"),
            });
        }
    }

    /// A Body::Outdate from `node`. `mine(resource)`: the peer of this
    /// node's copy of `resource` is `node`. Returns what to broadcast.
    pub fn on_message(
        &mut self,
        node: &str,
        m: Outdate,
        mine: impl Fn(&str) -> bool,
    ) -> Option<Body> {
        if m.to != self.node {
            return None;
        }
        match m.answer {
            Some(answer) => {
                let i = self
                    .asking
                    .iter()
                    .position(|a| a.id == m.id && a.peer == node && a.resource == m.resource)?;
                let a = self.asking.swap_remove(i);
                tracing::info!(resource = %a.resource, peer = %node, code = answer.code, message = %answer.message, "outdater: the peer answered");
                let _ = a.reply.send(Response::Outdate {
                    code: answer.code,
                    message: answer.message,
                });
                None
            }
            None => {
                let key = (node.to_string(), m.resource.clone(), m.id);
                if let Some((_, a)) = self.answered.iter().find(|(k, _)| *k == key) {
                    return Some(self.answer_body(&key, a.clone()));
                }
                if self.answering.contains(&key) {
                    return None;
                }
                if !mine(&m.resource) {
                    let a = OutdateAnswer {
                        code: fence::PEER_UNREACHABLE,
                        message: format!(
                            "{} has no resource {} with peer {node}",
                            self.node, m.resource
                        ),
                    };
                    return Some(self.answer_body(&key, a));
                }
                if self.answering.len() >= MAX_ANSWERING {
                    return None;
                }
                tracing::warn!(resource = %m.resource, peer = %node, "outdater: the peer asks to outdate this node's disk");
                self.answering.push(key.clone());
                let run_dir = self.run_dir.clone();
                let config_dir = self.config_dir.clone();
                let me = self.node.clone();
                let done = self.done.clone();
                tokio::spawn(async move {
                    let answer = outdate_local(&run_dir, &config_dir, &me, &key.1).await;
                    let _ = done.send(Done {
                        node: key.0,
                        resource: key.1,
                        id: key.2,
                        answer,
                    });
                });
                None
            }
        }
    }

    /// The local device answered: remember it and broadcast the answer.
    pub fn on_done(&mut self, d: Done) -> Body {
        let key = (d.node, d.resource, d.id);
        self.answering.retain(|k| *k != key);
        tracing::info!(resource = %key.1, peer = %key.0, code = d.answer.code, message = %d.answer.message, "outdater: answering the peer");
        if self.answered.len() >= ANSWERS_KEPT {
            self.answered.pop_front();
        }
        self.answered.push_back((key.clone(), d.answer.clone()));
        self.answer_body(&key, d.answer)
    }

    fn answer_body(&self, key: &(String, String, u64), answer: OutdateAnswer) -> Body {
        Body::Outdate(Outdate {
            to: key.0.clone(),
            resource: key.1.clone(),
            id: key.2,
            answer: Some(answer),
        })
    }
}

/// Outdate this node's copy of `resource`: through its device process, or
/// in the metadata when none runs.
async fn outdate_local(
    run_dir: &std::path::Path,
    config_dir: &std::path::Path,
    node: &str,
    resource: &str,
) -> OutdateAnswer {
    let call = crate::disk::ctl::call(run_dir, resource, DiskRequest::OutdateForPeer);
    let (code, message) = match tokio::time::timeout(DEVICE_TIMEOUT, call).await {
        Ok(Ok(r)) => fence::outdate_answer(&r),
        Ok(Err(crate::ctl::CallError::Connect { source, .. }))
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            let (run, cfg, node, res) = (
                run_dir.to_path_buf(),
                config_dir.to_path_buf(),
                node.to_string(),
                resource.to_string(),
            );
            tokio::task::spawn_blocking(move || {
                crate::disk::device::outdate_offline(&cfg, &node, &run, &res)
            })
            .await
            .unwrap_or_else(|e| (fence::PEER_UNREACHABLE, e.to_string()))
        }
        Ok(Err(e)) => (
            fence::PEER_UNREACHABLE,
            format!("the device of {resource} did not answer: {e}"),
        ),
        Err(_) => (
            fence::PEER_UNREACHABLE,
            format!("the device of {resource} did not answer in time"),
        ),
    };
    OutdateAnswer { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outdater() -> (Outdater, mpsc::UnboundedReceiver<Done>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Outdater::new("n1", "/nonexistent".into(), "/nonexistent".into(), tx),
            rx,
        )
    }

    fn code(r: oneshot::Receiver<Response>) -> u8 {
        match r.blocking_recv() {
            Ok(Response::Outdate { code, .. }) => code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_dead_peer_is_unreachable_at_once() {
        let (mut o, _rx) = outdater();
        let (tx, rx) = oneshot::channel();
        assert!(o
            .ask("r0".into(), "n2".into(), false, Duration::from_secs(5), tx)
            .is_none());
        assert_eq!(code(rx), fence::PEER_UNREACHABLE);
    }

    #[test]
    fn the_answer_of_the_asked_peer_is_passed_on_and_others_are_ignored() {
        let (mut o, _rx) = outdater();
        let (tx, rx) = oneshot::channel();
        let Some(Body::Outdate(req)) =
            o.ask("r0".into(), "n2".into(), true, Duration::from_secs(5), tx)
        else {
            panic!("a request")
        };
        assert_eq!((req.to.as_str(), req.answer.is_none()), ("n2", true));
        // Resent every interval, until answered.
        assert_eq!(o.tick(Duration::from_secs(1)).len(), 1);
        assert!(o.tick(Duration::from_secs(1)).is_empty());
        let answer = |to: &str, from_id| Outdate {
            to: to.into(),
            resource: "r0".into(),
            id: from_id,
            answer: Some(OutdateAnswer {
                code: 4,
                message: "outdated".into(),
            }),
        };
        // For another node, another id, from another node: ignored.
        assert!(o.on_message("n2", answer("n3", req.id), |_| true).is_none());
        assert!(o
            .on_message("n2", answer("n1", req.id + 1), |_| true)
            .is_none());
        assert!(o.on_message("n3", answer("n1", req.id), |_| true).is_none());
        assert!(o.next_deadline().is_some());
        assert!(o.on_message("n2", answer("n1", req.id), |_| true).is_none());
        assert_eq!(code(rx), fence::PEER_OUTDATED);
        assert!(o.next_deadline().is_none());
    }

    #[test]
    fn no_answer_in_time_or_a_peer_death_is_unreachable() {
        let (mut o, _rx) = outdater();
        let (tx, rx) = oneshot::channel();
        o.ask("r0".into(), "n2".into(), true, Duration::ZERO, tx);
        assert!(o.tick(Duration::from_secs(1)).is_empty());
        assert_eq!(code(rx), fence::PEER_UNREACHABLE);
        let (tx, rx) = oneshot::channel();
        o.ask("r0".into(), "n2".into(), true, Duration::from_secs(60), tx);
        o.peer_dead("n3");
        o.peer_dead("n2");
        assert_eq!(code(rx), fence::PEER_UNREACHABLE);
    }

    #[test]
    fn requests_for_unknown_resources_are_answered_and_answers_cached() {
        let (mut o, _rx) = outdater();
        let req = Outdate {
            to: "n1".into(),
            resource: "nope".into(),
            id: 9,
            answer: None,
        };
        let Some(Body::Outdate(a)) = o.on_message("n2", req.clone(), |_| false) else {
            panic!("an answer")
        };
        assert_eq!((a.to.as_str(), a.id), ("n2", 9));
        assert_eq!(a.answer.map(|a| a.code), Some(fence::PEER_UNREACHABLE));
        // Not for this node: nothing.
        let other = Outdate {
            to: "n3".into(),
            ..req.clone()
        };
        assert!(o.on_message("n2", other, |_| true).is_none());
        // A device's answer is cached: a repeated request gets it again
        // without asking the device twice.
        let b = o.on_done(Done {
            node: "n2".into(),
            resource: "r0".into(),
            id: 3,
            answer: OutdateAnswer {
                code: 4,
                message: "ok".into(),
            },
        });
        let again = o.on_message(
            "n2",
            Outdate {
                to: "n1".into(),
                resource: "r0".into(),
                id: 3,
                answer: None,
            },
            |_| true,
        );
        assert_eq!(again, Some(b));
    }
}
