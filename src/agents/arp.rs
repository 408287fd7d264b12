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

/// RFC 5227 probing compressed into `window`: three probes spread over it
/// (one may be lost), listening the whole time for an answer or a competing
/// probe. `Ok(None)`: nobody claimed `ip`.
pub async fn probe(
    ifindex: u32,
    mac: Mac,
    ip: Ipv4Addr,
    window: Duration,
) -> io::Result<Option<Conflict>> {
    const PROBES: u32 = 3;
    let sock = ArpSocket::open(ifindex)?;
    let start = tokio::time::Instant::now();
    let deadline = start + window;
    let probe = ArpPacket::probe(mac, ip);
    let mut sent = 0;
    loop {
        let next_probe = start + window * sent / PROBES;
        if sent < PROBES && tokio::time::Instant::now() >= next_probe {
            sock.broadcast(&probe)?;
            sent += 1;
            continue;
        }
        let wake = if sent < PROBES { next_probe } else { deadline };
        tokio::select! {
            r = sock.recv() => {
                if let Some(c) = conflict(&r?, mac, ip) {
                    return Ok(Some(c));
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if sent >= PROBES {
                    return Ok(None);
                }
            }
        }
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
