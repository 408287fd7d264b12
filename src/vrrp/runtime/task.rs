//! The task that owns one instance's state machine (`InstanceTask`:
//! timers, adverts, VIPs, gratuitous ARPs, notify queue) and the task of a
//! `vrrp_sync_group`.

use super::*;

pub(super) struct InstanceTask {
    pub(super) name: String,
    pub(super) machine: Instance,
    pub(super) epoch: Instant,
    pub(super) sock: Arc<VrrpSocket>,
    pub(super) src: Ipv4Addr,
    pub(super) dsts: Vec<Ipv4Addr>,
    /// Multicast: TTL 255 required.
    pub(super) check_ttl: bool,
    /// Unicast: adverts only from these.
    pub(super) peers: Vec<Ipv4Addr>,
    pub(super) version: Version,
    pub(super) vrid: u8,
    pub(super) adver_int: u16,
    pub(super) auth: packet::Auth,
    /// The advertised addresses (`virtual_ipaddress`).
    pub(super) addrs: Vec<Ipv4Addr>,
    pub(super) skip_addr_check: bool,
    pub(super) v3: V3Checksum,
    pub(super) ip_id: u16,
    /// Every VIP, excluded ones too.
    pub(super) vip_args: Vec<IpAddrArgs>,
    /// (ifindex, MAC, address) of each VIP on an ARP interface.
    pub(super) garp: Vec<(u32, Mac, Ipv4Addr)>,
    pub(super) garp_interval: Duration,
    pub(super) notify_tx: Option<mpsc::UnboundedSender<(State, u8)>>,
    pub(super) notifier: Option<JoinHandle<()>>,
    /// Its status: written only by this task, read by the handle.
    pub(super) status: watch::Sender<VrrpStatus>,
    /// `dont_track_primary`: link events of this interface are ignored.
    pub(super) ignored_link: Option<String>,
    pub(super) dropped: u64,
    pub(super) send_errors: u64,
    /// Its `vrrp_sync_group`'s task and its index there.
    pub(super) group: Option<(usize, GroupTx)>,
    /// The (state, own fault) last told to the group.
    pub(super) reported: Option<(State, bool)>,
    /// `no_accept`: the VIPs it holds are dropped by nftables.
    pub(super) firewall: Option<Arc<Firewall>>,
}

impl InstanceTask {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        // VIPs left behind by a crash: a BACKUP holds none.
        self.remove_vips().await;
        let now = self.now();
        self.machine.handle(now, Input::Start);
        self.flush().await;
        loop {
            let deadline = self.machine.next_deadline().map(|d| self.epoch + d);
            let ev = tokio::select! {
                _ = sleep_until_opt(deadline) => None,
                ev = rx.recv() => match ev {
                    Some(ev) => Some(ev),
                    None => Some(Event::Shutdown),
                },
            };
            let now = self.now();
            let stop = matches!(ev, Some(Event::Shutdown));
            match ev {
                None => self.machine.handle(now, Input::Tick),
                Some(Event::Packet(p)) => {
                    if let Some(input) = self.accept(&p) {
                        self.machine.handle(now, input);
                    }
                }
                Some(Event::Script { name, ok }) => {
                    self.machine.handle(now, Input::ScriptResult { name, ok })
                }
                Some(Event::Link { name, .. }) if self.ignored_link.as_ref() == Some(&name) => {}
                Some(Event::Link { name, up }) => self.machine.handle(
                    now,
                    if up {
                        Input::InterfaceUp(name)
                    } else {
                        Input::InterfaceDown(name)
                    },
                ),
                Some(Event::Standby) => self.machine.handle(now, Input::Standby),
                Some(Event::Takeover) => self.machine.handle(now, Input::Takeover),
                Some(Event::Gate(open)) => self.machine.handle(now, Input::FailbackGate(open)),
                Some(Event::Sync(input)) => self.machine.handle(now, input),
                Some(Event::Shutdown) => self.machine.handle(now, Input::Shutdown),
                Some(Event::Malformed(reason)) => {
                    self.count_drop(reason);
                }
            }
            self.flush().await;
            if stop {
                break;
            }
        }
        // The STOP notify scripts, and any still queued, run to the end.
        self.notify_tx = None;
        if let Some(n) = self.notifier.take() {
            let _ = n.await;
        }
    }

    fn count_drop(&self, reason: &str) {
        self.status
            .send_modify(|s| *s.drops.entry(reason.to_string()).or_default() += 1);
    }

    /// The advert as input for the machine, or None (dropped and counted).
    fn accept(&mut self, p: &Packet) -> Option<Input> {
        let from = p.ip.src;
        if from == self.src {
            return None;
        }
        let why = if self.check_ttl && p.ip.ttl != packet::VRRP_TTL {
            Some(("ttl", format!("TTL {}", p.ip.ttl)))
        } else if !self.peers.is_empty() && !self.peers.contains(&from) {
            Some(("unicast_peer", "not from a unicast_peer".to_string()))
        } else {
            let want = Expected {
                version: self.version,
                vrid: self.vrid,
                auth: self.auth,
                adver_int: self.adver_int,
                addrs: &self.addrs,
                skip_addr_check: self.skip_addr_check && self.machine.status().master == Some(from),
            };
            p.advert
                .check(&want)
                .err()
                .map(|m| (m.reason(), m.to_string()))
        };
        if let Some((reason, why)) = why {
            self.dropped += 1;
            self.count_drop(reason);
            // The first of each run at warn, as keepalived logs them.
            if self.dropped.is_power_of_two() {
                tracing::warn!(instance = %self.name, %from, reason = %why, dropped = self.dropped, "advert dropped");
            } else {
                tracing::debug!(instance = %self.name, %from, reason = %why, "advert dropped");
            }
            return None;
        }
        Some(Input::Advert {
            from,
            priority: p.advert.priority,
            interval: p.advert.interval(),
        })
    }

    async fn flush(&mut self) {
        for o in self.machine.take_outputs() {
            match o {
                Output::SendAdvert { priority } => self.send_advert(priority),
                Output::AddVips => self.add_vips().await,
                Output::RemoveVips => self.remove_vips().await,
                Output::SendGarps { repeat } => self.send_garps(repeat),
                Output::Notify { state, priority } => {
                    if let Some(tx) = &self.notify_tx {
                        let _ = tx.send((state, priority));
                    }
                }
                Output::StateChanged { from, to, why } => {
                    tracing::info!(
                        instance = %self.name,
                        from = from.as_str(),
                        to = to.as_str(),
                        why,
                        "({}) Entering {} STATE",
                        self.name,
                        to.as_str()
                    );
                }
            }
        }
        let st = self.machine.status();
        if let Some((member, tx)) = &self.group {
            let now = (st.state, st.own_fault);
            if self.reported != Some(now) {
                self.reported = Some(now);
                let _ = tx.send((*member, st.state, st.own_fault));
            }
        }
        let state = st.state.as_str();
        let master = st.master.map(|m| m.to_string());
        self.status.send_if_modified(|s| {
            let changed = s.state != state
                || s.effective_priority != st.effective_priority
                || s.master != master;
            if changed {
                s.state = state.to_string();
                s.effective_priority = st.effective_priority;
                s.master = master;
            }
            changed
        });
    }

    fn send_advert(&mut self, priority: u8) {
        let advert = Advert {
            version: self.version,
            vrid: self.vrid,
            priority,
            adver_int: self.adver_int,
            addrs: self.addrs.clone(),
            auth: self.auth,
        };
        for dst in &self.dsts {
            self.ip_id = self.ip_id.wrapping_add(1);
            let bytes = match Packet::new(self.src, *dst, self.ip_id, advert.clone())
                .encode(self.v3)
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(instance = %self.name, error = %e, "cannot encode the advert");
                    return;
                }
            };
            if let Err(e) = self.sock.send(&bytes, *dst) {
                self.send_errors += 1;
                if self.send_errors.is_power_of_two() {
                    tracing::warn!(instance = %self.name, iface = %self.sock.iface, %dst, error = %e, errors = self.send_errors, "sending the advert failed");
                }
            }
        }
    }

    fn agent_options() -> crate::agents::Options {
        crate::agents::Options {
            arp_count: 0,
            arp_probe: Duration::ZERO,
            ..Default::default()
        }
    }

    async fn add_vips(&mut self) {
        if let Some(f) = &self.firewall {
            // Before the addresses: never a moment where they answer.
            let vips = self.vip_args.iter().map(|a| a.addr).collect();
            if let Err(e) = f.set(&self.name, vips).await {
                tracing::error!(instance = %self.name, error = %e, "no_accept: cannot install the nftables rule");
            }
        }
        let o = Self::agent_options();
        for a in &self.vip_args {
            if let Err(e) = ipaddr::start(a, &o).await {
                tracing::error!(instance = %self.name, vip = %a.addr, error = %e, "cannot add the VIP");
            }
        }
    }

    async fn remove_vips(&mut self) {
        let o = Self::agent_options();
        for a in &self.vip_args {
            if let Err(e) = ipaddr::stop(a, &o).await {
                tracing::error!(instance = %self.name, vip = %a.addr, error = %e, "cannot remove the VIP");
            }
        }
        if let Some(f) = &self.firewall {
            if let Err(e) = f.set(&self.name, Vec::new()).await {
                tracing::error!(instance = %self.name, error = %e, "no_accept: cannot remove the nftables rule");
            }
        }
    }

    /// A burst of `repeat` gratuitous ARPs per VIP, `vrrp_garp_interval`
    /// apart, in the background.
    fn send_garps(&self, repeat: u32) {
        if repeat == 0 || self.garp.is_empty() {
            return;
        }
        let garp = self.garp.clone();
        let interval = self.garp_interval;
        let name = self.name.clone();
        tokio::spawn(async move {
            let mut socks: BTreeMap<u32, ArpSocket> = BTreeMap::new();
            for n in 0..repeat {
                for (index, mac, ip) in &garp {
                    if !socks.contains_key(index) {
                        match ArpSocket::open(*index) {
                            Ok(s) => {
                                socks.insert(*index, s);
                            }
                            Err(e) => {
                                tracing::warn!(instance = %name, error = %e, "gratuitous ARP socket");
                                continue;
                            }
                        }
                    }
                    if let Err(e) = arp::announce(&socks[index], *mac, *ip) {
                        tracing::debug!(instance = %name, %ip, error = %e, "gratuitous ARP failed");
                    }
                    if !interval.is_zero() {
                        tokio::time::sleep(interval).await;
                    }
                }
                if n + 1 < repeat && interval.is_zero() {
                    tokio::task::yield_now().await;
                }
            }
        });
    }
}

/// A `vrrp_sync_group` between its members: their state changes in,
/// [`Event::Sync`] out, the group's own transitions to its notifier.
pub(super) async fn sync_group(
    name: String,
    members: Vec<mpsc::UnboundedSender<Event>>,
    mut rx: mpsc::UnboundedReceiver<(usize, State, bool)>,
    notify: mpsc::UnboundedSender<(State, u8)>,
) {
    let mut g = super::super::sync::SyncGroup::new(members.len());
    while let Some((member, state, own_fault)) = rx.recv().await {
        for a in g.update(member, state, own_fault) {
            match a {
                super::super::sync::SyncAction::Member(i, input) => {
                    if let Some(tx) = members.get(i) {
                        let _ = tx.send(Event::Sync(input));
                    }
                }
                super::super::sync::SyncAction::Notify(state) => {
                    tracing::info!(group = %name, state = state.as_str(), "({name}) Sync group entering {} state", state.as_str());
                    let _ = notify.send((state, 0));
                }
            }
        }
    }
}
