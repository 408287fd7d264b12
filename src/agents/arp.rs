//! ARP for IPv4 over Ethernet (RFC 826): the 28-byte packet, RFC 5227 address
//! conflict detection (probes) and gratuitous ARP announcements, sent and
//! received on an `AF_PACKET`/`SOCK_DGRAM` socket (the kernel adds and strips
//! the Ethernet header). This is the only file of the agents with a packet
//! socket.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        HTYPE (1: Ethernet)    |      PTYPE (0x0800: IPv4)     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   HLEN (6)    |   PLEN (4)    |  OPER (1 request, 2 reply)    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          SHA: sender hardware address (6 bytes)               |
//! +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               |  SPA: sender IPv4 address     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  SPA (cont.)                  |  THA: target hardware address |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          TPA: target IPv4 address                             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
use std::fmt;
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Length of an IPv4-over-Ethernet ARP packet.
pub const ARP_LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
pub const BROADCAST_MAC: Mac = Mac([0xff; 6]);

/// An Ethernet address, printed `02:00:00:00:00:01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const ZERO: Mac = Mac([0; 6]);

    /// From an `IFLA_ADDRESS`; `None` unless it is 6 bytes (Ethernet).
    pub fn from_slice(b: &[u8]) -> Option<Mac> {
        <[u8; 6]>::try_from(b).ok().map(Mac)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// ARP `OPER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Request,
    Reply,
    Other(u16),
}

impl Op {
    fn to_u16(self) -> u16 {
        match self {
            Op::Request => 1,
            Op::Reply => 2,
            Op::Other(n) => n,
        }
    }
    fn from_u16(n: u16) -> Op {
        match n {
            1 => Op::Request,
            2 => Op::Reply,
            n => Op::Other(n),
        }
    }
}

/// One IPv4-over-Ethernet ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    pub op: Op,
    pub sha: Mac,
    pub spa: Ipv4Addr,
    pub tha: Mac,
    pub tpa: Ipv4Addr,
}

impl ArpPacket {
    /// RFC 5227 §2.1.1 ARP Probe: a request with sender IP 0.0.0.0, so that
    /// no host's cache is changed by it, and target hardware address zero.
    pub fn probe(mac: Mac, ip: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            op: Op::Request,
            sha: mac,
            spa: Ipv4Addr::UNSPECIFIED,
            tha: Mac::ZERO,
            tpa: ip,
        }
    }

    /// RFC 5227 §2.3 ARP Announcement (gratuitous ARP): a request with sender
    /// IP = target IP = the address, which makes every host that already has
    /// the address cached point it at `mac`.
    pub fn announcement(mac: Mac, ip: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            op: Op::Request,
            sha: mac,
            spa: ip,
            tha: Mac::ZERO,
            tpa: ip,
        }
    }

    pub fn encode(&self) -> [u8; ARP_LEN] {
        let mut b = [0u8; ARP_LEN];
        b[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        b[2..4].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_u16().to_be_bytes());
        b[8..14].copy_from_slice(&self.sha.0);
        b[14..18].copy_from_slice(&self.spa.octets());
        b[18..24].copy_from_slice(&self.tha.0);
        b[24..28].copy_from_slice(&self.tpa.octets());
        b
    }

    /// Decodes an IPv4-over-Ethernet ARP packet; `None` for anything else
    /// (short, other hardware or protocol). Trailing bytes (Ethernet padding
    /// to 46 bytes) are ignored. Never panics.
    pub fn decode(b: &[u8]) -> Option<ArpPacket> {
        let b: &[u8; ARP_LEN] = b.get(..ARP_LEN)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let mac_at = |i: usize| Mac([b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5]]);
        let ip_at = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
        if u16_at(0) != HTYPE_ETHERNET || u16_at(2) != PTYPE_IPV4 || b[4] != 6 || b[5] != 4 {
            return None;
        }
        Some(ArpPacket {
            op: Op::from_u16(u16_at(6)),
            sha: mac_at(8),
            spa: ip_at(14),
            tha: mac_at(18),
            tpa: ip_at(24),
        })
    }
}

/// What an RFC 5227 probe found (§2.1.1): another host uses the address, or
/// is probing for it at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Some host sent ARP with the address as its sender address.
    Answered(Mac),
    /// Some other host sent a probe for the same address.
    Probing(Mac),
}

/// Decides whether `pkt`, received while probing for `ip` from `own`, is a
/// conflict (RFC 5227 §2.1.1). Our own packets (looped back as
/// `PACKET_OUTGOING`) are never one.
pub fn conflict(pkt: &ArpPacket, own: Mac, ip: Ipv4Addr) -> Option<Conflict> {
    if pkt.sha == own {
        return None;
    }
    if pkt.spa == ip {
        return Some(Conflict::Answered(pkt.sha));
    }
    if pkt.op == Op::Request && pkt.spa.is_unspecified() && pkt.tpa == ip {
        return Some(Conflict::Probing(pkt.sha));
    }
    None
}

/// An `AF_PACKET` datagram socket for ARP, bound to one interface.
pub struct ArpSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
}

fn sockaddr_ll(ifindex: u32, dest: Option<Mac>) -> io::Result<SockAddr> {
    let ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is one of the sockaddr types of this platform.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = ETH_P_ARP.to_be();
    ll.sll_ifindex = ifindex;
    if let Some(mac) = dest {
        ll.sll_halen = 6;
        ll.sll_addr[..6].copy_from_slice(&mac.0);
    }
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: storage holds an initialised sockaddr_ll of `len` bytes.
    Ok(unsafe { SockAddr::new(storage, len) })
}

impl ArpSocket {
    /// Opens the socket and binds it to `ifindex`, so that it receives the
    /// interface's ARP traffic from now on (open it before sending a probe).
    pub fn open(ifindex: u32) -> io::Result<ArpSocket> {
        // Protocol 0 receives nothing until `bind` names ETH_P_ARP and the
        // interface: no packet of another interface slips in before.
        let sock = Socket::new(Domain::PACKET, Type::DGRAM, Some(Protocol::from(0)))?;
        sock.set_nonblocking(true)?;
        sock.set_cloexec(true)?;
        sock.bind(&sockaddr_ll(ifindex, None)?)?;
        // SAFETY: the socket's fd stays open and owned by the AsyncFd until
        // it is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(ArpSocket { fd, ifindex })
    }

    /// Broadcasts `pkt` (ff:ff:ff:ff:ff:ff) on the interface. A packet
    /// socket send does not wait for buffer space, so this never blocks the
    /// runtime; ENOBUFS is reported as an error like any other.
    pub fn broadcast(&self, pkt: &ArpPacket) -> io::Result<()> {
        let to = sockaddr_ll(self.ifindex, Some(BROADCAST_MAC))?;
        self.fd.get_ref().send_to(&pkt.encode(), &to).map(|_| ())
    }

    /// The next ARP packet received on the interface (ours included).
    pub async fn recv(&self) -> io::Result<ArpPacket> {
        let mut buf = [0u8; 1500];
        loop {
            let n = self
                .fd
                .async_io(Interest::READABLE, |s| {
                    let mut s: &Socket = s;
                    s.read(&mut buf)
                })
                .await?;
            if let Some(p) = ArpPacket::decode(&buf[..n]) {
                return Ok(p);
            }
        }
    }
}

/// How probes are spaced and how long their answers are awaited: RFC 5227's
/// timing (§2.1.1: PROBE_WAIT, PROBE_NUM, PROBE_MIN/MAX, ANNOUNCE_WAIT), or a
/// LAN's, where answers arrive in well under a millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTiming {
    /// Random delay before the first probe, uniform in `0..=wait`
    /// (PROBE_WAIT).
    pub wait: Duration,
    /// Unanswered probes a decision needs when probing starts at the
    /// request (PROBE_NUM).
    pub probes: u32,
    /// Unanswered probes a decision needs when probing ran before the
    /// request (a pre-probe, see [`Prober`]).
    pub warm_probes: u32,
    /// Spacing between probes, uniform in `interval_min..=interval_max`
    /// (PROBE_MIN, PROBE_MAX).
    pub interval_min: Duration,
    pub interval_max: Duration,
    /// How long after a probe an answer to it is awaited (ANNOUNCE_WAIT
    /// after the last probe).
    pub listen: Duration,
}

impl ProbeTiming {
    /// RFC 5227's constants: 0–1 s, then 3 probes 1–2 s apart, then 2 s.
    pub const RFC5227: ProbeTiming = ProbeTiming {
        wait: Duration::from_secs(1),
        probes: 3,
        warm_probes: 3,
        interval_min: Duration::from_secs(1),
        interval_max: Duration::from_secs(2),
        listen: Duration::from_secs(2),
    };

    /// A LAN's timing compressed into `window`: three probes `window / 3`
    /// apart and `window / 3` of listening after the last, so a probe
    /// started at the request decides after `window`; after a pre-probe two
    /// unanswered probes are enough (an answer would have taken well under
    /// a millisecond).
    pub fn lan(window: Duration) -> ProbeTiming {
        let step = window / 3;
        ProbeTiming {
            wait: Duration::ZERO,
            probes: 3,
            warm_probes: 2,
            interval_min: step,
            interval_max: step,
            listen: step,
        }
    }
}

/// What a [`Prober`] says at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    /// A probe is due: send it, then call [`Prober::on_sent`].
    pub send: bool,
    /// Once the start was requested: add the address ([`Verdict::Start`])
    /// or refuse ([`Verdict::Conflict`]); `None`: keep probing.
    pub verdict: Option<Verdict>,
    /// When to poll again if no packet arrives first.
    pub wake: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Start,
    Conflict(Conflict),
}

/// Duplicate-address detection as a rule without I/O, for probing that may
/// begin before the address is wanted (a pre-probe while its holder's
/// heartbeats are late) and go on until the start asks for a verdict.
///
/// Inputs, each with `now` (any monotonic clock, as a [`Duration`]): probes
/// sent ([`Prober::on_sent`]), conflicts seen ([`Prober::on_conflict`]: an
/// answer from another host or its own probe, see [`conflict`]) and the
/// moment the start asks ([`Prober::request`]). The rule:
///
/// - a conflict seen at or after the request: [`Verdict::Conflict`], as a
///   plain RFC 5227 probe would (someone holds the address now);
/// - a conflict seen before the request only means the holder still
///   answered then (while its node was alive): the probes sent before it
///   no longer count, probing goes on;
/// - [`Verdict::Start`] once enough probes sent after the latest conflict
///   have each been listened to for `listen` ([`ProbeTiming::probes`], or
///   [`ProbeTiming::warm_probes`] when probing ran before the request);
/// - a probe is due `interval` after the previous one (the first after a
///   random `0..=wait`).
#[derive(Debug, Clone)]
pub struct Prober {
    timing: ProbeTiming,
    /// Send times of the probes after the latest conflict (at most a few).
    sent: Vec<Duration>,
    /// The latest conflict seen before the request.
    last_conflict: Option<Duration>,
    /// The first conflict seen at or after the request.
    conflict: Option<Conflict>,
    next_send: Duration,
    requested: Option<Duration>,
    warm: bool,
    /// A probe went out (before the request: the probing is warm).
    ever_sent: bool,
    rng: crate::rng::SplitMix64,
}

/// Probes remembered: enough for any decision.
const PROBES_KEPT: usize = 8;

impl Prober {
    /// Probing that begins at `now`; `seed` draws RFC 5227's random delays.
    pub fn new(timing: ProbeTiming, now: Duration, seed: u64) -> Prober {
        let mut p = Prober {
            timing,
            sent: Vec::new(),
            last_conflict: None,
            conflict: None,
            next_send: now,
            requested: None,
            warm: false,
            ever_sent: false,
            rng: crate::rng::SplitMix64::new(seed),
        };
        p.next_send = now + p.random(Duration::ZERO, timing.wait);
        p
    }

    fn random(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min).as_micros() as u64;
        min + Duration::from_micros(self.rng.below(span.saturating_add(1)))
    }

    /// The start wants a verdict from `now` on. Probing counts as warm when
    /// a probe went out before.
    pub fn request(&mut self, now: Duration) {
        if self.requested.is_none() {
            self.requested = Some(now);
            self.warm = self.ever_sent;
        }
    }

    pub fn requested(&self) -> bool {
        self.requested.is_some()
    }

    pub fn on_sent(&mut self, now: Duration) {
        if self.sent.len() >= PROBES_KEPT {
            self.sent.remove(0);
        }
        self.sent.push(now);
        self.ever_sent = true;
        let (lo, hi) = (self.timing.interval_min, self.timing.interval_max);
        self.next_send = now + self.random(lo, hi);
    }

    pub fn on_conflict(&mut self, now: Duration, c: Conflict) {
        match self.requested {
            Some(r) if now >= r => {
                self.conflict.get_or_insert(c);
            }
            _ => {
                self.last_conflict = Some(now);
                self.sent.clear();
            }
        }
    }

    /// Probes a verdict needs.
    fn need(&self) -> usize {
        let n = if self.warm {
            self.timing.warm_probes
        } else {
            self.timing.probes
        };
        n.max(1) as usize
    }

    pub fn poll(&self, now: Duration) -> Poll {
        // Before the request a pre-probe goes on probing; after it, no
        // more probes than the verdict needs.
        let more = self.requested.is_none() || self.sent.len() < self.need();
        let send = more && now >= self.next_send;
        let listen = self.timing.listen;
        let verdict = match (self.requested, self.conflict) {
            (None, _) => None,
            (Some(_), Some(c)) => Some(Verdict::Conflict(c)),
            (Some(_), None) => {
                let heard_out = self.sent.iter().filter(|&&t| t + listen <= now).count();
                (heard_out >= self.need()).then_some(Verdict::Start)
            }
        };
        // The next moment a probe's listening ends, or the next probe.
        let next_send = match (more, send) {
            (false, _) => None,
            (true, true) => Some(now + self.timing.interval_min),
            (true, false) => Some(self.next_send),
        };
        let wake = self
            .sent
            .iter()
            .map(|&t| t + listen)
            .filter(|&t| t > now)
            .chain(next_send)
            .min()
            .unwrap_or(now + self.timing.interval_max.max(Duration::from_millis(1)));
        Poll {
            send,
            verdict,
            wake,
        }
    }
}

/// A [`Prober`] shared between the task that sends and receives and the
/// start that waits for its verdict.
pub struct SharedProber {
    prober: std::sync::Mutex<Prober>,
    /// Woken on every packet and probe.
    changed: tokio::sync::Notify,
    epoch: tokio::time::Instant,
    /// The sending task ends at this time (a pre-probe nobody asked for).
    until: std::sync::Mutex<tokio::time::Instant>,
}

impl SharedProber {
    pub fn new(timing: ProbeTiming, until: tokio::time::Instant) -> SharedProber {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        SharedProber {
            prober: std::sync::Mutex::new(Prober::new(timing, Duration::ZERO, seed)),
            changed: tokio::sync::Notify::new(),
            epoch: tokio::time::Instant::now(),
            until: std::sync::Mutex::new(until),
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Prober> {
        self.prober.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the sending task alive until at least `until`.
    pub fn keep_until(&self, until: tokio::time::Instant) {
        let mut u = self.until.lock().unwrap_or_else(|e| e.into_inner());
        *u = (*u).max(until);
    }

    fn until(&self) -> tokio::time::Instant {
        *self.until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the probes and records the conflicts for `ip` from `mac` on
    /// `sock` until [`SharedProber::keep_until`]'s time passes.
    pub async fn run(&self, sock: &ArpSocket, mac: Mac, ip: Ipv4Addr) -> io::Result<()> {
        let probe = ArpPacket::probe(mac, ip);
        loop {
            let now = self.now();
            let p = self.lock().poll(now);
            if p.send {
                sock.broadcast(&probe)?;
                self.lock().on_sent(now);
                self.changed.notify_waiters();
                continue;
            }
            let until = self.until();
            if tokio::time::Instant::now() >= until {
                return Ok(());
            }
            let wake = (self.epoch + p.wake).min(until);
            tokio::select! {
                r = sock.recv() => {
                    if let Some(c) = conflict(&r?, mac, ip) {
                        self.lock().on_conflict(self.now(), c);
                        self.changed.notify_waiters();
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    self.changed.notify_waiters();
                }
            }
        }
    }

    /// Asks for the verdict and waits for it (the task running
    /// [`SharedProber::run`] must live until then).
    pub async fn verdict(&self) -> Verdict {
        self.lock().request(self.now());
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let p = self.lock().poll(self.now());
            if let Some(v) = p.verdict {
                return v;
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(self.epoch + p.wake) => {}
            }
        }
    }
}

/// Duplicate-address detection for `ip` from `mac` starting now (no
/// pre-probe): probes with `timing`, listening the whole time for an answer
/// or a competing probe. `Ok(None)`: nobody claimed `ip`.
pub async fn probe(
    ifindex: u32,
    mac: Mac,
    ip: Ipv4Addr,
    timing: ProbeTiming,
) -> io::Result<Option<Conflict>> {
    let sock = ArpSocket::open(ifindex)?;
    let shared = SharedProber::new(
        timing,
        tokio::time::Instant::now() + Duration::from_secs(3600),
    );
    shared.lock().request(Duration::ZERO);
    tokio::select! {
        r = shared.run(&sock, mac, ip) => {
            r?;
            Err(io::Error::other("probing ended without a verdict"))
        }
        v = shared.verdict() => Ok(match v {
            Verdict::Start => None,
            Verdict::Conflict(c) => Some(c),
        }),
    }
}

/// Sends one RFC 5227 announcement (gratuitous ARP) for `ip` from `mac`.
pub fn announce(sock: &ArpSocket, mac: Mac, ip: Ipv4Addr) -> io::Result<()> {
    sock.broadcast(&ArpPacket::announcement(mac, ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
    const OTHER: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

    #[test]
    fn announcement_golden_bytes() {
        let b = ArpPacket::announcement(MAC, VIP).encode();
        assert_eq!(
            b,
            [
                0, 1, 8, 0, 6, 4, 0, 1, // ethernet, ipv4, request
                2, 0, 0, 0, 0, 1, 192, 0, 2, 100, // sha, spa
                0, 0, 0, 0, 0, 0, 192, 0, 2, 100, // tha, tpa
            ]
        );
        assert_eq!(
            ArpPacket::decode(&b),
            Some(ArpPacket::announcement(MAC, VIP))
        );
    }

    #[test]
    fn probe_golden_bytes() {
        let b = ArpPacket::probe(MAC, VIP).encode();
        assert_eq!(&b[14..18], &[0, 0, 0, 0]);
        assert_eq!(&b[24..28], &[192, 0, 2, 100]);
        assert_eq!(&b[6..8], &[0, 1]);
    }

    #[test]
    fn decode_rejects_other_kinds_and_ignores_padding() {
        let mut b = ArpPacket::announcement(MAC, VIP).encode().to_vec();
        assert!(ArpPacket::decode(&b[..27]).is_none());
        b.extend_from_slice(&[0; 18]);
        assert!(ArpPacket::decode(&b).is_some());
        b[1] = 6; // IEEE 802 hardware type
        assert!(ArpPacket::decode(&b).is_none());
        let mut b = ArpPacket::announcement(MAC, VIP).encode();
        b[5] = 16; // IPv6-sized protocol address
        assert!(ArpPacket::decode(&b).is_none());
    }

    #[test]
    fn conflicts_as_rfc_5227_defines_them() {
        let reply = ArpPacket {
            op: Op::Reply,
            sha: OTHER,
            spa: VIP,
            tha: MAC,
            tpa: Ipv4Addr::UNSPECIFIED,
        };
        assert_eq!(conflict(&reply, MAC, VIP), Some(Conflict::Answered(OTHER)));
        // Our own probe, looped back: not a conflict.
        assert_eq!(conflict(&ArpPacket::probe(MAC, VIP), MAC, VIP), None);
        assert_eq!(
            conflict(&ArpPacket::probe(OTHER, VIP), MAC, VIP),
            Some(Conflict::Probing(OTHER))
        );
        // Traffic about other addresses.
        let other = ArpPacket::announcement(OTHER, Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(conflict(&other, MAC, VIP), None);
        let asking = ArpPacket {
            op: Op::Request,
            sha: OTHER,
            spa: Ipv4Addr::new(192, 0, 2, 7),
            tha: Mac::ZERO,
            tpa: VIP,
        };
        assert_eq!(conflict(&asking, MAC, VIP), None);
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const ANSWER: Conflict = Conflict::Answered(OTHER);

    /// Drives `p` from `from` to `to` in 1 ms steps: sends every due probe
    /// (`answer(t)`: the holder answers a probe sent at `t`, 1 ms later),
    /// and returns the first verdict with its time.
    fn drive(
        p: &mut Prober,
        from: u64,
        to: u64,
        request_at: Option<u64>,
        answer: impl Fn(u64) -> bool,
    ) -> Option<(u64, Verdict)> {
        let mut pending = Vec::new();
        for t in from..=to {
            if request_at == Some(t) {
                p.request(ms(t));
            }
            if pending.contains(&t) {
                p.on_conflict(ms(t), ANSWER);
            }
            let poll = p.poll(ms(t));
            if let Some(v) = poll.verdict {
                return Some((t, v));
            }
            if poll.send {
                p.on_sent(ms(t));
                if answer(t) {
                    pending.push(t + 1);
                }
            }
            assert!(p.poll(ms(t)).wake > ms(t), "a wake-up in the past at {t}");
        }
        None
    }

    #[test]
    fn cold_lan_probe_decides_after_three_unanswered_probes_and_the_window() {
        let mut p = Prober::new(ProbeTiming::lan(ms(30)), ms(0), 1);
        p.request(ms(0));
        assert_eq!(
            drive(&mut p, 0, 100, None, |_| false),
            Some((30, Verdict::Start))
        );
        // An answer during it: refused.
        let mut p = Prober::new(ProbeTiming::lan(ms(30)), ms(0), 1);
        p.request(ms(0));
        assert_eq!(
            drive(&mut p, 0, 100, None, |t| t == 10),
            Some((11, Verdict::Conflict(ANSWER)))
        );
    }

    #[test]
    fn a_pre_probe_decides_at_once_when_the_holder_stopped_answering() {
        // The holder answers until it dies at 12 ms; the start asks at 40.
        let mut p = Prober::new(ProbeTiming::lan(ms(30)), ms(0), 1);
        assert_eq!(drive(&mut p, 0, 39, None, |t| t < 12), None);
        assert_eq!(
            drive(&mut p, 40, 100, Some(40), |_| false),
            Some((40, Verdict::Start))
        );
    }

    #[test]
    fn a_pre_probe_with_too_few_quiet_probes_keeps_probing() {
        // Answers until 22 ms: at the request (25 ms) only the probe of 30
        // ms is after them; the second unanswered one goes out at 40.
        let mut p = Prober::new(ProbeTiming::lan(ms(30)), ms(0), 1);
        assert_eq!(drive(&mut p, 0, 24, None, |t| t < 22), None);
        assert_eq!(
            drive(&mut p, 25, 100, Some(25), |_| false),
            Some((50, Verdict::Start))
        );
    }

    #[test]
    fn a_holder_that_still_answers_is_a_conflict_even_after_a_pre_probe() {
        let mut p = Prober::new(ProbeTiming::lan(ms(30)), ms(0), 1);
        assert_eq!(drive(&mut p, 0, 99, None, |_| true), None);
        assert_eq!(
            drive(&mut p, 100, 200, Some(100), |_| true),
            Some((101, Verdict::Conflict(ANSWER)))
        );
        // A competing probe after the request counts as well.
        let mut p = Prober::new(ProbeTiming::lan(ms(30)), ms(0), 1);
        p.request(ms(0));
        p.on_conflict(ms(3), Conflict::Probing(OTHER));
        assert_eq!(
            p.poll(ms(3)).verdict,
            Some(Verdict::Conflict(Conflict::Probing(OTHER)))
        );
    }

    #[test]
    fn a_just_begun_pre_probe_needs_its_probes_listened_to() {
        // Pre-probing began 1 ms before the request: warm, but its two
        // probes must still each be listened to.
        let mut p = Prober::new(ProbeTiming::lan(ms(30)), ms(0), 1);
        assert_eq!(drive(&mut p, 0, 0, None, |_| false), None);
        assert_eq!(
            drive(&mut p, 1, 100, Some(1), |_| false),
            Some((20, Verdict::Start))
        );
    }

    #[test]
    fn rfc_5227_timing_is_kept() {
        for seed in 0..50 {
            let mut p = Prober::new(ProbeTiming::RFC5227, ms(0), seed);
            p.request(ms(0));
            let mut sent = Vec::new();
            let mut verdict = None;
            let mut t = 0;
            while t <= 10_000 {
                let poll = p.poll(ms(t));
                if let Some(v) = poll.verdict {
                    verdict = Some((t, v));
                    break;
                }
                if poll.send {
                    p.on_sent(ms(t));
                    sent.push(t);
                    continue;
                }
                t = (poll.wake.as_micros() as u64).div_ceil(1000);
            }
            let (at, v) = verdict.expect("a verdict");
            assert_eq!(v, Verdict::Start);
            assert_eq!(sent.len(), 3, "{sent:?}");
            assert!(sent[0] <= 1000, "PROBE_WAIT: {sent:?}");
            for w in sent.windows(2) {
                assert!(
                    (1000..=2000).contains(&(w[1] - w[0])),
                    "PROBE_MIN/MAX: {sent:?}"
                );
            }
            assert_eq!(at, sent[2] + 2000, "ANNOUNCE_WAIT after the last");
        }
    }

    #[test]
    fn mac_display() {
        assert_eq!(MAC.to_string(), "02:00:00:00:00:01");
        assert_eq!(Mac::from_slice(&[1, 2, 3]), None);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(p) = ArpPacket::decode(&b) {
                prop_assert_eq!(&p.encode()[..], &b[..ARP_LEN]);
            }
        }
    }
}
