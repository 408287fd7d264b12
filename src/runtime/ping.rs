//! heartbeat ping nodes (`ping IP...`, `ping_group NAME IP...`, `deadping`):
//! addresses that are not cluster members but whose reachability the cluster
//! watches (a router, a switch). Each is sent an ICMP echo every `keepalive`
//! and is dead after `deadping` without a reply; a ping group is up while any
//! of its members is.
//!
//! [`PingTracker`] is the logic (no I/O); [`PingSocket`] the raw ICMP socket.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::RuntimeError;
use crate::config::Config;

// The status types are the control protocol's.
pub use crate::ctl::{PingNodeStatus, PingState};

/// Ping nodes: the tracker, the socket (shared with its receive task) and
/// when the next echo round is due.
pub(super) struct Ping {
    pub(super) tracker: PingTracker,
    /// The tiebreaker's settled count; `None` when the tiebreaker is off.
    pub(super) settle: Option<PingSettle>,
    pub(super) socket: Option<Arc<PingSocket>>,
    pub(super) next_send: Duration,
    _receiver: Option<AbortOnDrop>,
}

/// A task aborted when this is dropped.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Ping {
    pub(super) fn new(
        c: &Config,
        now: Duration,
        replies: &mpsc::Sender<std::net::Ipv4Addr>,
    ) -> Result<Ping, RuntimeError> {
        let nodes: Vec<_> = c.ha.ping.iter().map(|(a, _)| *a).collect();
        let groups: Vec<_> =
            c.ha.ping_groups
                .iter()
                .map(|g| (g.name.clone(), g.addrs.clone()))
                .collect();
        // The witness runs no ping nodes: it takes no group over.
        let (nodes, groups) = if c.is_witness {
            (Vec::new(), Vec::new())
        } else {
            (nodes, groups)
        };
        let tracker = PingTracker::new(&nodes, &groups, c.ha.deadping, now);
        let settle =
            (c.tiebreaker.ping && !c.is_witness).then(|| PingSettle::new(c.tiebreaker.settle));
        if tracker.is_empty() {
            return Ok(Ping {
                tracker,
                settle,
                socket: None,
                next_send: Duration::MAX,
                _receiver: None,
            });
        }
        let socket = Arc::new(PingSocket::open().map_err(RuntimeError::Ping)?);
        let (s, tx) = (socket.clone(), replies.clone());
        let receiver = AbortOnDrop(tokio::spawn(async move {
            loop {
                match s.recv().await {
                    Ok(from) => {
                        if tx.send(from).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "ICMP receive error");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
        Ok(Ping {
            tracker,
            settle,
            socket: Some(socket),
            next_send: now,
            _receiver: Some(receiver),
        })
    }

    pub(super) fn next_deadline(&self) -> Duration {
        self.tracker
            .next_deadline()
            .unwrap_or(Duration::MAX)
            .min(self.next_send)
            .min(
                self.settle
                    .as_ref()
                    .and_then(PingSettle::next_deadline)
                    .unwrap_or(Duration::MAX),
            )
    }

    /// Feeds the tiebreaker the count of reached ping nodes; the settled
    /// count when it changed.
    pub(super) fn settled_change(&mut self, now: Duration) -> Option<u16> {
        let count = self.tracker.reachable();
        self.settle.as_mut()?.observe(count, now)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingEvent {
    Up { name: String },
    Dead { name: String },
}

#[derive(Debug)]
struct Target {
    name: String,
    members: Vec<Ipv4Addr>,
    last_reply: Option<Duration>,
    state: PingState,
}

/// Reachability of ping nodes and groups.
#[derive(Debug)]
pub struct PingTracker {
    targets: Vec<Target>,
    deadping: Duration,
    start: Duration,
}

impl PingTracker {
    pub fn new(
        nodes: &[Ipv4Addr],
        groups: &[(String, Vec<Ipv4Addr>)],
        deadping: Duration,
        now: Duration,
    ) -> Self {
        let plain = nodes.iter().map(|a| Target {
            name: a.to_string(),
            members: vec![*a],
            last_reply: None,
            state: PingState::Unknown,
        });
        let grouped = groups.iter().map(|(name, members)| Target {
            name: name.clone(),
            members: members.clone(),
            last_reply: None,
            state: PingState::Unknown,
        });
        PingTracker {
            targets: plain.chain(grouped).collect(),
            deadping,
            start: now,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Every address to send an echo to.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self
            .targets
            .iter()
            .flat_map(|t| t.members.iter().copied())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// An echo reply from `from`.
    pub fn on_reply(&mut self, from: Ipv4Addr, now: Duration) -> Vec<PingEvent> {
        let mut events = Vec::new();
        for t in self
            .targets
            .iter_mut()
            .filter(|t| t.members.contains(&from))
        {
            t.last_reply = Some(now);
            if t.state != PingState::Up {
                t.state = PingState::Up;
                events.push(PingEvent::Up {
                    name: t.name.clone(),
                });
            }
        }
        events
    }

    /// Declares dead what has been silent for `deadping` (or never answered
    /// within `deadping` of the start).
    pub fn tick(&mut self, now: Duration) -> Vec<PingEvent> {
        let mut events = Vec::new();
        for t in &mut self.targets {
            let since = t.last_reply.unwrap_or(self.start);
            if t.state != PingState::Dead && now.saturating_sub(since) >= self.deadping {
                t.state = PingState::Dead;
                events.push(PingEvent::Dead {
                    name: t.name.clone(),
                });
            }
        }
        events
    }

    /// How many ping nodes and groups are up now (the ping tiebreaker's
    /// count: a ping group counts once).
    pub fn reachable(&self) -> u16 {
        let n = self
            .targets
            .iter()
            .filter(|t| t.state == PingState::Up)
            .count();
        u16::try_from(n).unwrap_or(u16::MAX)
    }

    /// When `tick` next may change something.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.targets
            .iter()
            .filter(|t| t.state != PingState::Dead)
            .map(|t| t.last_reply.unwrap_or(self.start) + self.deadping)
            .min()
    }

    pub fn status(&self, now: Duration) -> Vec<PingNodeStatus> {
        self.targets
            .iter()
            .map(|t| PingNodeStatus {
                name: t.name.clone(),
                members: if t.members.len() == 1 && t.members[0].to_string() == t.name {
                    Vec::new()
                } else {
                    t.members.clone()
                },
                state: t.state,
                last_reply_ms: t
                    .last_reply
                    .map(|r| now.saturating_sub(r).as_millis() as u64),
            })
            .collect()
    }
}

/// A raw ICMP socket sending echo requests with our identifier and reading
/// the replies. Replies are checked for type, identifier and length; anything
/// else is ignored.
pub struct PingSocket {
    socket: tokio::io::unix::AsyncFd<Socket>,
    ident: u16,
    seq: std::sync::atomic::AtomicU16,
}

impl PingSocket {
    pub fn open() -> io::Result<PingSocket> {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        s.set_nonblocking(true)?;
        Ok(PingSocket {
            // SAFETY: the AsyncFd owns the socket, so its descriptor stays open
            // and the same for the AsyncFd's whole life.
            socket: unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(s, tokio::io::Interest::READABLE)
            }?,
            ident: (std::process::id() & 0xffff) as u16,
            seq: std::sync::atomic::AtomicU16::new(0),
        })
    }

    /// Sends one echo request to each address; errors (no route...) are
    /// returned per address, never waited on.
    pub fn send(&self, to: &[Ipv4Addr]) -> Vec<(Ipv4Addr, io::Error)> {
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let packet = echo_request(self.ident, seq);
        to.iter()
            .filter_map(|a| {
                self.socket
                    .get_ref()
                    .send_to(&packet, &SocketAddrV4::new(*a, 0).into())
                    .err()
                    .map(|e| (*a, e))
            })
            .collect()
    }

    /// Waits for the next echo reply carrying our identifier.
    pub async fn recv(&self) -> io::Result<Ipv4Addr> {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
        loop {
            let mut guard = self.socket.readable().await?;
            match guard.try_io(|s| s.get_ref().recv_from(&mut buf)) {
                Ok(Ok((len, _))) => {
                    // SAFETY: recv_from initialised the first `len` bytes.
                    let bytes: Vec<u8> = buf[..len]
                        .iter()
                        .map(|b| unsafe { b.assume_init() })
                        .collect();
                    if let Some(from) = parse_echo_reply(&bytes, self.ident) {
                        return Ok(from);
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// RFC 792 echo request: type 8, code 0, checksum, identifier, sequence.
fn echo_request(ident: u16, seq: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 8;
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"hbd ping");
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// The raw socket hands us the IPv4 header too: skip it (IHL), then expect an
/// echo reply (type 0) with our identifier. Returns the source address.
fn parse_echo_reply(b: &[u8], ident: u16) -> Option<Ipv4Addr> {
    let ihl = usize::from(*b.first()? & 0x0f) * 4;
    if ihl < 20 || b.len() < ihl + 8 {
        return None;
    }
    let src = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
    let icmp = &b[ihl..];
    (icmp[0] == 0 && icmp[1] == 0 && u16::from_be_bytes([icmp[4], icmp[5]]) == ident).then_some(src)
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The ping tiebreaker's count, settled: a count of reached ping nodes
/// counts once it has stayed unchanged for `settle`, so a flapping ping node
/// does not move groups back and forth (ipfail's "wait and see").
#[derive(Debug)]
pub struct PingSettle {
    settle: Duration,
    /// The latest count and since when it is unchanged.
    current: Option<(u16, Duration)>,
    settled: Option<u16>,
}

impl PingSettle {
    pub fn new(settle: Duration) -> PingSettle {
        PingSettle {
            settle,
            current: None,
            settled: None,
        }
    }

    /// The count seen now; returns the new settled count when it changes.
    pub fn observe(&mut self, count: u16, now: Duration) -> Option<u16> {
        match self.current {
            Some((c, _)) if c == count => {}
            _ => self.current = Some((count, now)),
        }
        let (c, since) = self.current?;
        if self.settled != Some(c) && now.saturating_sub(since) >= self.settle {
            self.settled = Some(c);
            return Some(c);
        }
        None
    }

    /// The settled count; `None` until one has settled.
    pub fn settled(&self) -> Option<u16> {
        self.settled
    }

    /// The latest count, settled or not.
    pub fn current(&self) -> Option<u16> {
        self.current.map(|(c, _)| c)
    }

    /// When [`observe`](Self::observe) may settle a count.
    pub fn next_deadline(&self) -> Option<Duration> {
        match self.current {
            Some((c, since)) if self.settled != Some(c) => Some(since + self.settle),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn up_on_reply_dead_after_deadping() {
        let a: Ipv4Addr = "192.0.2.1".parse().unwrap();
        let mut t = PingTracker::new(&[a], &[], 1000 * MS, Duration::ZERO);
        assert_eq!(t.next_deadline(), Some(1000 * MS));
        assert_eq!(
            t.on_reply(a, 100 * MS),
            vec![PingEvent::Up {
                name: a.to_string()
            }]
        );
        assert!(
            t.on_reply(a, 200 * MS).is_empty(),
            "no event without a change"
        );
        assert!(t.tick(1199 * MS).is_empty());
        assert_eq!(
            t.tick(1200 * MS),
            vec![PingEvent::Dead {
                name: a.to_string()
            }]
        );
        assert!(t.tick(5000 * MS).is_empty(), "dead once");
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn never_answering_is_dead_after_deadping_from_start() {
        let a: Ipv4Addr = "192.0.2.1".parse().unwrap();
        let mut t = PingTracker::new(&[a], &[], 500 * MS, 10 * MS);
        assert!(t.tick(509 * MS).is_empty());
        assert_eq!(t.tick(510 * MS).len(), 1);
        assert_eq!(t.status(510 * MS)[0].state, PingState::Dead);
    }

    #[test]
    fn group_is_up_while_any_member_answers() {
        let a: Ipv4Addr = "192.0.2.1".parse().unwrap();
        let b: Ipv4Addr = "192.0.2.2".parse().unwrap();
        let mut t = PingTracker::new(
            &[],
            &[("routers".into(), vec![a, b])],
            1000 * MS,
            Duration::ZERO,
        );
        t.on_reply(a, 100 * MS);
        t.on_reply(b, 900 * MS);
        assert!(t.tick(1500 * MS).is_empty(), "b answered recently");
        assert_eq!(t.status(1500 * MS)[0].state, PingState::Up);
        assert_eq!(t.status(1500 * MS)[0].members, vec![a, b]);
        assert_eq!(t.addresses(), vec![a, b]);
    }

    #[test]
    fn echo_request_checksum_verifies() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn parse_reply_checks_type_and_ident() {
        let mut ip = vec![
            0x45u8, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 9, 192, 0, 2, 11,
        ];
        let mut icmp = echo_request(0x1234, 1).to_vec();
        icmp[0] = 0;
        ip.extend_from_slice(&icmp);
        assert_eq!(
            parse_echo_reply(&ip, 0x1234),
            Some("192.0.2.9".parse().unwrap())
        );
        assert_eq!(
            parse_echo_reply(&ip, 0x9999),
            None,
            "another process's echo"
        );
        ip[20] = 8;
        assert_eq!(
            parse_echo_reply(&ip, 0x1234),
            None,
            "a request, not a reply"
        );
        assert_eq!(parse_echo_reply(&ip[..25], 0x1234), None, "truncated");
        assert_eq!(parse_echo_reply(&[], 0x1234), None);
        assert_eq!(
            parse_echo_reply(&[0x4f; 30], 0x1234),
            None,
            "IHL beyond the data"
        );
    }

    #[test]
    fn settle_waits_for_a_stable_count() {
        let s = Duration::from_secs;
        let mut p = PingSettle::new(s(5));
        assert_eq!(p.observe(0, s(0)), None);
        assert_eq!(p.next_deadline(), Some(s(5)));
        // A change restarts the wait.
        assert_eq!(p.observe(1, s(3)), None);
        assert_eq!(p.observe(1, s(7)), None);
        assert_eq!(p.observe(1, s(8)), Some(1));
        assert_eq!(p.settled(), Some(1));
        assert_eq!(p.next_deadline(), None);
        // A flap shorter than settle changes nothing.
        assert_eq!(p.observe(0, s(9)), None);
        assert_eq!(p.observe(1, s(10)), None);
        assert_eq!(p.observe(1, s(20)), None);
        assert_eq!(p.settled(), Some(1));
        assert_eq!(p.observe(0, s(21)), None);
        assert_eq!(p.observe(0, s(26)), Some(0));
        // settle 0: at once.
        let mut p = PingSettle::new(Duration::ZERO);
        assert_eq!(p.observe(2, s(1)), Some(2));
    }

    #[test]
    fn reachable_counts_up_targets() {
        let a = |x| Ipv4Addr::new(192, 0, 2, x);
        let mut t = PingTracker::new(
            &[a(1)],
            &[("g".into(), vec![a(2), a(3)])],
            Duration::from_secs(2),
            Duration::ZERO,
        );
        assert_eq!(t.reachable(), 0);
        t.on_reply(a(3), Duration::from_millis(10));
        assert_eq!(t.reachable(), 1);
        t.on_reply(a(1), Duration::from_millis(20));
        assert_eq!(t.reachable(), 2);
        t.tick(Duration::from_secs(3));
        assert_eq!(t.reachable(), 0);
    }
}
