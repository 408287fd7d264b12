//! SIGHUP: the configuration loaded again off the loop, and what of it the
//! running daemon takes at once (the rest at the next start).

use super::*;

/// Tells the agents of every group this node's name and the run dir (see
/// [`crate::agents::Resource::set_context`]).
pub(super) fn set_agent_context(config: &mut Config, run_dir: &std::path::Path) {
    let node = config.node.clone();
    for r in config.groups.iter_mut().flat_map(|g| &mut g.resources) {
        r.set_context(&node, run_dir);
    }
}

/// SIGHUP: reads the configuration again on a thread of its own, the result
/// to `loaded`. Never on the loop: the loader looks users and groups up
/// (respawn users, `[control] group`, job users), and NSS can stall on LDAP
/// or sssd for longer than deadtime, which would stop the keepalives.
/// `true` while the load runs.
pub(super) fn load_off_loop(
    paths: &Paths,
    running: &Config,
    loaded: &mpsc::Sender<Result<Config, ConfigErrors>>,
) -> bool {
    let load = if running.is_witness {
        config::load_witness
    } else {
        config::load
    };
    let (dir, run_dir, node, tx) = (
        paths.config_dir.clone(),
        paths.run_dir.clone(),
        running.node.clone(),
        loaded.clone(),
    );
    match std::thread::Builder::new()
        .name("hbd-reload".into())
        .spawn(move || {
            let _ = tx.blocking_send(load(&dir, &node).map(|mut c| {
                set_agent_context(&mut c, &run_dir);
                c
            }));
        }) {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "reload refused: cannot start a thread to load the configuration");
            false
        }
    }
}

impl Daemon {
    /// SIGHUP, once [`load_off_loop`] has read the configuration again:
    /// apply it; keep the running one when the new one is invalid or its
    /// media cannot be opened. The new media's inbox when they changed.
    pub(super) fn reload(
        &mut self,
        new: Result<Config, ConfigErrors>,
        ping_replies: &mpsc::Sender<std::net::Ipv4Addr>,
    ) -> Option<network::Inbox> {
        let new = match new {
            Ok(c) => c,
            Err(ConfigErrors(errors)) => {
                for e in &errors {
                    tracing::error!(error = %e, "configuration error");
                }
                tracing::error!(
                    errors = errors.len(),
                    "reload refused: keeping the running configuration"
                );
                return None;
            }
        };
        // What takes effect only at the next start keeps its running value.
        let mut new = new;
        if new.groups != self.config.groups || new.ha.auto_failback != self.config.ha.auto_failback
        {
            tracing::warn!(
                "haresources, resource settings or auto_failback changed: they take effect at the next start"
            );
            new.groups = self.config.groups.clone();
            new.ha.auto_failback = self.config.ha.auto_failback;
        }
        if new.checks != self.config.checks || new.jobs != self.config.jobs {
            tracing::warn!("[[check]] or [[job]] changed: they take effect at the next start");
            new.checks = self.config.checks.clone();
            new.jobs = self.config.jobs.clone();
        }
        if new.quorum != self.config.quorum
            || new.tiebreaker != self.config.tiebreaker
            || new.failure_timeout != self.config.failure_timeout
            || new.fencing != self.config.fencing
        {
            tracing::warn!(
                "[quorum], [tiebreaker], [groups] or [fencing] changed: they take effect at the next start"
            );
            new.quorum = self.config.quorum.clone();
            new.tiebreaker = self.config.tiebreaker.clone();
            new.failure_timeout = self.config.failure_timeout;
            new.fencing = self.config.fencing.clone();
        }
        if new.membership != self.config.membership || new.corosync != self.config.corosync {
            tracing::warn!(
                "[membership] or corosync.conf changed: they take effect at the next start"
            );
            new.membership = self.config.membership.clone();
            new.corosync = self.config.corosync.clone();
        }
        if on_corosync(&new) && new.ha.media != self.config.ha.media {
            // No media of its own on Corosync.
            new.ha.media = self.config.ha.media.clone();
        }
        if new.cluster.metrics != self.config.cluster.metrics {
            tracing::warn!("[metrics] changed: it takes effect at the next start");
            new.cluster.metrics = self.config.cluster.metrics.clone();
        }
        // Prepare everything that can fail before changing anything.
        let media = if new.ha.media != self.config.ha.media {
            match network::open_media(&new.ha.media, &self.receive_keys.subscribe()) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!(error = %e, "reload refused: keeping the running configuration");
                    return None;
                }
            }
        } else {
            None
        };
        let ping = if new.ha.ping != self.config.ha.ping
            || new.ha.ping_groups != self.config.ha.ping_groups
            || new.ha.deadping != self.config.ha.deadping
        {
            match Ping::new(&new, self.now(), ping_replies) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(error = %e, "reload refused: keeping the running configuration");
                    return None;
                }
            }
        } else {
            None
        };
        // The group machine takes the node list and deadtime with
        // membership (issue 14, finding 10: its grant and quorum leases
        // depend on both), or the reload is refused as a whole.
        let now = self.now();
        if let Err(why) = self.groups.reconfigure(groups_config(&new), now) {
            tracing::error!(reason = %why, "reload refused: keeping the running configuration");
            return None;
        }
        self.receive_keys.send_replace(receive_keys_of(&new));
        let inbox = media.map(|(m, inbox)| {
            for old in &self.media {
                for (reason, n) in old.drops.counts() {
                    *self.retired_drops.entry(reason).or_insert(0) += n;
                }
            }
            self.media = m;
            inbox
        });
        if let Some(p) = ping {
            self.ping = p;
        }
        for w in &new.warnings {
            tracing::warn!(warning = %w, "configuration warning");
        }
        if new.ha.logfile != self.config.ha.logfile
            || new.ha.debugfile != self.config.ha.debugfile
            || new.ha.logfacility != self.config.ha.logfacility
        {
            tracing::warn!("logging directives changed: they take effect at the next start");
        }
        *self.access.write().unwrap_or_else(|e| e.into_inner()) =
            Access::from_group(new.cluster.control.group.as_deref());
        if new.ha.watchdog != self.config.ha.watchdog {
            tracing::warn!("watchdog changed: it takes effect at the next start");
        }
        self.fence.reconfigure(&new);
        match &mut self.membership {
            Engine::Heartbeat(m) => m.reconfigure(membership_config(&new), now),
            Engine::Corosync(m) => {
                if let Some(cfg) = cpg_config(&new) {
                    m.reconfigure(cfg, now);
                }
            }
        }
        for (node, p) in &self.peers_seen {
            self.membership.remember(node, p.incarnation, p.left);
        }
        if self.membership.deadtime() > new.ha.deadtime {
            tracing::warn!(
                deadtime_ms = new.ha.deadtime.as_millis() as u64,
                running_ms = self.membership.deadtime().as_millis() as u64,
                "deadtime shortened: peers count on the longer one announced, so peers are \
                 declared dead after it until the next start"
            );
        }
        self.config = new;
        tracing::info!(
            nodes = ?self.config.ha.nodes,
            media = ?self.media.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            "configuration reloaded"
        );
        inbox
    }
}
