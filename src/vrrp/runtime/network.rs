//! The network side of the VRRP runtime: the raw protocol-112 socket of
//! one interface and its receive task, and the link states from rtnetlink
//! link events.

use super::*;

/// A raw protocol-112 socket bound to one interface.
pub(super) struct VrrpSocket {
    pub(super) fd: AsyncFd<Socket>,
    pub(super) iface: String,
}

impl VrrpSocket {
    pub(super) fn open(iface: &str, ifindex: u32, group: Ipv4Addr) -> std::io::Result<VrrpSocket> {
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(packet::IPPROTO_VRRP))),
        )?;
        sock.set_nonblocking(true)?;
        sock.set_cloexec(true)?;
        sock.bind_device(Some(iface.as_bytes()))?;
        sock.set_header_included_v4(true)?;
        sock.set_multicast_loop_v4(false)?;
        sock.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))?;
        // SAFETY: the socket's fd stays open and owned by the AsyncFd until
        // it is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(VrrpSocket {
            fd,
            iface: iface.to_string(),
        })
    }

    pub(super) fn send(&self, bytes: &[u8], dst: Ipv4Addr) -> std::io::Result<()> {
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        self.fd.get_ref().send_to(bytes, &to).map(|_| ())
    }

    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |s| {
                let mut s: &Socket = s;
                s.read(buf)
            })
            .await
    }
}

/// Receives on one interface and routes adverts by VRID.
pub(super) async fn receive(
    sock: Arc<VrrpSocket>,
    routes: Routes,
    v3: V3Checksum,
    on_iface: Vec<mpsc::UnboundedSender<Event>>,
) {
    let mut buf = vec![0u8; 65536];
    let mut bad: u64 = 0;
    loop {
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(iface = %sock.iface, error = %e, "VRRP receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // TTL is checked per instance (not for unicast ones).
        match Packet::decode_with(&buf[..n], v3, false) {
            Ok(p) => match routes.get(&p.advert.vrid) {
                Some(txs) => {
                    let p = Arc::new(p);
                    for tx in txs {
                        let _ = tx.send(Event::Packet(p.clone()));
                    }
                }
                None => {
                    tracing::trace!(iface = %sock.iface, vrid = p.advert.vrid, from = %p.ip.src, "advert for another VRID");
                }
            },
            Err(e) => {
                bad += 1;
                for tx in &on_iface {
                    let _ = tx.send(Event::Malformed(e.reason()));
                }
                if bad.is_power_of_two() {
                    tracing::warn!(iface = %sock.iface, error = %e, dropped = bad, "malformed VRRP datagram dropped");
                } else {
                    tracing::debug!(iface = %sock.iface, error = %e, "malformed VRRP datagram dropped");
                }
            }
        }
    }
}

/// `operstate` up (or unknown, for devices that do not report it) and
/// carrier present; a missing interface is down.
pub(super) fn link_up(name: &str) -> bool {
    let dir = std::path::Path::new("/sys/class/net").join(name);
    let oper = std::fs::read_to_string(dir.join("operstate")).unwrap_or_default();
    let carrier = std::fs::read_to_string(dir.join("carrier")).unwrap_or_default();
    matches!(oper.trim(), "up" | "unknown") && carrier.trim() == "1"
}

/// Re-reads every watched link's state; tells the instances of each change.
fn check_links(states: &mut BTreeMap<String, bool>, txs: &[mpsc::UnboundedSender<Event>]) {
    for (name, was) in states.iter_mut() {
        let up = link_up(name);
        if up != *was {
            *was = up;
            tracing::info!(iface = %name, up, "link state changed");
            for tx in txs {
                let _ = tx.send(Event::Link {
                    name: name.clone(),
                    up,
                });
            }
        }
    }
}

/// A netlink route socket subscribed to link changes (RTNLGRP_LINK):
/// readable when a link is added, removed or changes flags, carrier or
/// operstate.
fn link_events() -> std::io::Result<AsyncFd<std::os::fd::OwnedFd>> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscalls; the descriptor is owned from here on.
    let fd = unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        std::os::fd::OwnedFd::from_raw_fd(fd)
    };
    // SAFETY: a zeroed sockaddr_nl is valid; bind gets its exact size.
    let r = unsafe {
        use std::os::fd::AsRawFd;
        let mut sa: libc::sockaddr_nl = std::mem::zeroed();
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = libc::RTMGRP_LINK as u32;
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::addr_of!(sa).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor stays open and owned by the AsyncFd until it
    // is dropped.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

/// Reads every queued notification; `Err` when the socket failed (other
/// than an overflow, which only means "look again").
fn drain_link_events(fd: &AsyncFd<std::os::fd::OwnedFd>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 8192];
    loop {
        // SAFETY: reads into a buffer of its stated length.
        let n = unsafe {
            libc::recv(
                fd.get_ref().as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            continue;
        }
        if n == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(()),
            Some(libc::EINTR) | Some(libc::ENOBUFS) => continue,
            _ => Err(e),
        };
    }
}

const LINK_POLL: Duration = Duration::from_millis(100);

/// After a link event, links are read again every [`LINK_POLL`] for this
/// long: the kernel may settle operstate after the event that announced
/// the change (linkwatch runs up to a second later).
const LINK_SETTLE: Duration = Duration::from_secs(2);

/// Link states from rtnetlink events: nothing runs while no link changes
/// (keepalived's idle cost). Falls back to reading the links every
/// [`LINK_POLL`] if the netlink socket cannot be had.
pub(super) async fn watch_links(
    mut states: BTreeMap<String, bool>,
    txs: Vec<mpsc::UnboundedSender<Event>>,
) {
    let events = match link_events() {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::warn!(error = %e, "no rtnetlink link events: reading link states every 100 ms");
            None
        }
    };
    // A change between the states taken at start and the subscription.
    check_links(&mut states, &txs);
    let Some(events) = events else {
        let mut tick = tokio::time::interval(LINK_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            check_links(&mut states, &txs);
        }
    };
    // Until when links are read every LINK_POLL after an event.
    let mut settle: Option<tokio::time::Instant> = None;
    loop {
        let poll = settle.map(|until| (until, tokio::time::Instant::now() + LINK_POLL));
        tokio::select! {
            ready = events.readable() => {
                let mut guard = match ready {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::warn!(error = %e, "rtnetlink link events failed: reading link states every 100 ms");
                        break;
                    }
                };
                guard.clear_ready();
                if let Err(e) = drain_link_events(&events) {
                    tracing::warn!(error = %e, "rtnetlink link events failed: reading link states every 100 ms");
                    break;
                }
                settle = Some(tokio::time::Instant::now() + LINK_SETTLE);
            }
            _ = sleep_until_opt(poll.map(|(_, next)| next)) => {
                if poll.is_some_and(|(until, _)| tokio::time::Instant::now() >= until) {
                    settle = None;
                }
            }
        }
        check_links(&mut states, &txs);
    }
    let mut tick = tokio::time::interval(LINK_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        check_links(&mut states, &txs);
    }
}
