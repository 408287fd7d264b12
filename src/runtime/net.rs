//! The only file with cluster sockets: one receive and one send socket per
//! `ha.cf` medium, all bound to the medium's interface.
//!
//! Each receive socket is bound to the address its traffic is sent to, so the
//! socket alone tells the medium a datagram came in on: `bcast` to the
//! interface's broadcast address, `mcast` to the group, `ucast` to the
//! interface's own address. Sends go from a separate socket bound to the
//! interface address (a socket bound to a broadcast address cannot send).

use crate::config::{Location, Medium, MediumKind};
use crate::membership::MediumId;
use crate::wire::MAX_DATAGRAM;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// An IPv4 address of a local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddr {
    pub iface: String,
    pub addr: Ipv4Addr,
    pub broadcast: Option<Ipv4Addr>,
}

/// The IPv4 addresses of this host (of this network namespace).
pub fn local_addrs() -> io::Result<Vec<LocalAddr>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let Some(addr) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) else {
            continue;
        };
        let broadcast = ifa
            .broadcast
            .as_ref()
            .and_then(|a| a.as_sockaddr_in())
            .map(|b| b.ip());
        out.push(LocalAddr {
            iface: ifa.interface_name.clone(),
            addr: addr.ip(),
            broadcast,
        });
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{at}: {medium}: interface {iface} has no IPv4 address here (does it exist in this namespace?)")]
    NoAddress {
        at: Location,
        medium: String,
        iface: String,
    },
    #[error("{at}: {medium}: interface {iface} has no broadcast address")]
    NoBroadcast {
        at: Location,
        medium: String,
        iface: String,
    },
    #[error("{at}: {medium}: {op}: {source}")]
    Socket {
        at: Location,
        medium: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("cannot list local addresses: {0}")]
    LocalAddrs(io::Error),
}

/// A datagram as the receive tasks hand it to the daemon's loop.
#[derive(Debug)]
pub struct Received {
    pub medium: MediumId,
    pub from: SocketAddr,
    pub bytes: Vec<u8>,
}

/// An open medium: where to send, and the task feeding received datagrams.
pub struct OpenMedium {
    pub id: MediumId,
    pub name: String,
    send: UdpSocket,
    /// Destinations: the broadcast address, the group, or the unicast peers that
    /// are not addresses of this host.
    pub destinations: Vec<SocketAddrV4>,
    receiver: JoinHandle<()>,
}

impl Drop for OpenMedium {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

impl OpenMedium {
    /// Sends without waiting: a full socket buffer drops the datagram (the next
    /// keepalive follows) rather than stall the daemon.
    pub fn send(&self, bytes: &[u8]) -> Vec<(SocketAddrV4, io::Error)> {
        let mut errors = Vec::new();
        for dest in &self.destinations {
            if let Err(e) = self.send.try_send_to(bytes, SocketAddr::V4(*dest)) {
                errors.push((*dest, e));
            }
        }
        errors
    }
}

/// Counts datagrams dropped because the daemon's queue was full.
pub static QUEUE_OVERFLOWS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Opens every medium. `tx` receives what arrives; it is bounded and a full
/// queue drops (and counts) datagrams instead of blocking the receive task.
pub fn open_media(
    media: &[Medium],
    tx: &mpsc::Sender<Received>,
) -> Result<Vec<OpenMedium>, NetError> {
    let locals = local_addrs().map_err(NetError::LocalAddrs)?;
    let mut out = Vec::with_capacity(media.len());
    for (i, m) in media.iter().enumerate() {
        out.push(open_one(MediumId(i as u16), m, &locals, tx.clone())?);
    }
    Ok(out)
}

fn open_one(
    id: MediumId,
    m: &Medium,
    locals: &[LocalAddr],
    tx: mpsc::Sender<Received>,
) -> Result<OpenMedium, NetError> {
    let name = m.name();
    let local = locals
        .iter()
        .find(|l| l.iface == m.iface)
        .ok_or_else(|| NetError::NoAddress {
            at: m.at.clone(),
            medium: name.clone(),
            iface: m.iface.clone(),
        })?;
    let err = |op: &'static str| {
        let at = m.at.clone();
        let medium = name.clone();
        move |source: io::Error| NetError::Socket {
            at,
            medium,
            op,
            source,
        }
    };

    let (recv_addr, destinations) = match &m.kind {
        MediumKind::Bcast => {
            let b = local.broadcast.ok_or_else(|| NetError::NoBroadcast {
                at: m.at.clone(),
                medium: name.clone(),
                iface: m.iface.clone(),
            })?;
            (b, vec![SocketAddrV4::new(b, m.port)])
        }
        MediumKind::Mcast { group, .. } => (*group, vec![SocketAddrV4::new(*group, m.port)]),
        MediumKind::Ucast { peers } => {
            // A ucast line naming one of our own addresses is skipped, so one
            // ha.cf can list every node's address (heartbeat does the same).
            let dests = peers
                .iter()
                .filter(|p| !locals.iter().any(|l| l.addr == **p))
                .map(|p| SocketAddrV4::new(*p, m.port))
                .collect();
            (local.addr, dests)
        }
    };

    // Receive socket.
    let rs = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err("socket"))?;
    rs.set_reuse_address(true).map_err(err("SO_REUSEADDR"))?;
    rs.bind_device(Some(m.iface.as_bytes()))
        .map_err(err("SO_BINDTODEVICE"))?;
    if let MediumKind::Mcast { group, .. } = &m.kind {
        let index = nix::net::if_::if_nametoindex(m.iface.as_str())
            .map_err(|e| err("if_nametoindex")(io::Error::from(e)))?;
        rs.join_multicast_v4_n(group, &InterfaceIndexOrAddress::Index(index))
            .map_err(err("IP_ADD_MEMBERSHIP"))?;
        // Only this group's traffic, not every group joined on the host.
        rs.set_multicast_all_v4(false)
            .map_err(err("IP_MULTICAST_ALL"))?;
    }
    rs.bind(&SocketAddrV4::new(recv_addr, m.port).into())
        .map_err(err("bind (receive)"))?;
    rs.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
    let rs = UdpSocket::from_std(rs.into()).map_err(err("register (receive)"))?;

    // Send socket.
    let ss = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err("socket"))?;
    ss.bind_device(Some(m.iface.as_bytes()))
        .map_err(err("SO_BINDTODEVICE"))?;
    match &m.kind {
        MediumKind::Bcast => ss.set_broadcast(true).map_err(err("SO_BROADCAST"))?,
        MediumKind::Mcast { ttl, loop_, .. } => {
            ss.set_multicast_if_v4(&local.addr)
                .map_err(err("IP_MULTICAST_IF"))?;
            ss.set_multicast_ttl_v4(u32::from(*ttl))
                .map_err(err("IP_MULTICAST_TTL"))?;
            ss.set_multicast_loop_v4(*loop_)
                .map_err(err("IP_MULTICAST_LOOP"))?;
        }
        MediumKind::Ucast { .. } => {}
    }
    ss.bind(&SocketAddrV4::new(local.addr, 0).into())
        .map_err(err("bind (send)"))?;
    ss.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
    let send = UdpSocket::from_std(ss.into()).map_err(err("register (send)"))?;

    let receiver = tokio::spawn(receive_loop(id, rs, tx));
    Ok(OpenMedium {
        id,
        name,
        send,
        destinations,
        receiver,
    })
}

async fn receive_loop(id: MediumId, socket: UdpSocket, tx: mpsc::Sender<Received>) {
    // One byte more than the largest valid datagram, so an oversize one is
    // seen as such instead of silently truncated into something shorter.
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((len, from)) => {
                let item = Received {
                    medium: id,
                    from,
                    bytes: buf[..len].to_vec(),
                };
                if tx.try_send(item).is_err() {
                    QUEUE_OVERFLOWS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::debug!(medium = id.0, error = %e, "receive error");
                // Errors such as ECONNREFUSED from ICMP are transient; do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
