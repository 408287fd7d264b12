//! Duplicate-address probing ahead of a takeover (issue 15): when a peer's
//! heartbeats are late (silent for more than `warntime`), the addresses of
//! the groups this node would take over from it are probed for at once
//! ([`crate::agents::ipaddr::preprobe`]), so that when it is declared dead
//! the probe's answer is already in and adding the address waits for
//! nothing. The rule of what counts is [`crate::agents::arp::Prober`]'s:
//! answers while the peer was alive reset the count, any answer after the
//! start refuses it.

use std::time::Duration;

/// Which groups are pre-probed, and when to look again.
#[derive(Debug)]
pub struct PreProbing {
    /// When the daemon looks at its peers' silence again.
    pub next_check: Duration,
    /// Groups pre-probed and when their pre-probe was last begun or renewed.
    renewed: Vec<(usize, Duration)>,
}

impl PreProbing {
    pub fn new() -> PreProbing {
        PreProbing {
            next_check: Duration::ZERO,
            renewed: Vec::new(),
        }
    }

    /// `wanted`: the groups to pre-probe now. Returns those whose pre-probe
    /// must be begun or renewed (each pre-probe runs for `keep` after its
    /// last renewal; renewed every `keep / 2` while wanted).
    pub fn due(&mut self, wanted: &[usize], now: Duration, keep: Duration) -> Vec<usize> {
        let mut out = Vec::new();
        for &i in wanted {
            match self.renewed.iter_mut().find(|(g, _)| *g == i) {
                Some((_, t)) if now < *t + keep / 2 => {}
                Some((_, t)) => {
                    *t = now;
                    out.push(i);
                }
                None => {
                    self.renewed.push((i, now));
                    out.push(i);
                }
            }
        }
        self.renewed
            .retain(|(g, t)| wanted.contains(g) || now < *t + keep);
        out
    }
}

impl super::Daemon {
    /// Begins or renews the pre-probes for the groups of late peers.
    pub(super) fn preprobe_sync(&mut self) {
        let now = self.now();
        if now < self.preprobe.next_check {
            return;
        }
        let warntime = self.membership.config().warntime;
        let keep = self.membership.deadtime().max(Duration::from_millis(200));
        let (late, next) = self.membership.late_peers(now, warntime);
        let mut wanted = Vec::new();
        for node in late.iter() {
            wanted.extend(self.groups.takeover_from(node));
        }
        // Exactly when the next peer becomes late; while one is, often
        // enough to renew its pre-probes.
        let renew = (!late.is_empty()).then(|| now + keep / 4);
        self.preprobe.next_check = [next, renew]
            .into_iter()
            .flatten()
            .min()
            // No peer up: look again a warntime later (one may come up).
            .unwrap_or(now + warntime.max(Duration::from_millis(1)));
        for i in self.preprobe.due(&wanted, now, keep) {
            self.runner.preprobe(i, keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_probes_are_begun_once_and_renewed_at_half_their_life() {
        let ms = Duration::from_millis;
        let mut p = PreProbing::new();
        assert_eq!(p.due(&[0], ms(0), ms(100)), vec![0]);
        assert!(p.due(&[0], ms(10), ms(100)).is_empty());
        assert_eq!(p.due(&[0], ms(50), ms(100)), vec![0]);
        // No longer wanted: forgotten once its pre-probe has run out, and
        // begun anew when wanted again.
        assert!(p.due(&[], ms(60), ms(100)).is_empty());
        assert!(p.due(&[0], ms(70), ms(100)).is_empty());
        assert!(p.due(&[], ms(200), ms(100)).is_empty());
        assert_eq!(p.due(&[0], ms(210), ms(100)), vec![0]);
    }
}
