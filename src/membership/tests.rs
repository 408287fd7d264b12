//! Unit tests of the machine, driven by hand (the simulation is in `sim`).

use super::sim::{config, keys, ms, Timing};
use super::*;
use crate::wire::{self, AuthMethod, Body, Keepalive, Message};
use proptest::prelude::*;

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

/// `alpha` with peers `beta` and `gamma` on two media.
fn machine() -> Membership {
    let c = config(
        "alpha",
        &names(&["alpha", "beta", "gamma"]),
        2,
        &Timing::default(),
    );
    Membership::new(c, 10, Duration::ZERO)
}

fn datagram(from: &str, incarnation: u64, seq: u64, body: Body) -> Vec<u8> {
    wire::encode(
        &Message {
            cluster: "sim".into(),
            from: from.into(),
            incarnation,
            seq,
            body,
        },
        &keys(),
    )
    .unwrap()
}

fn ka(from: &str, incarnation: u64, seq: u64) -> Vec<u8> {
    datagram(
        from,
        incarnation,
        seq,
        Body::Keepalive(Keepalive {
            keepalive_ms: 100,
            deadtime_ms: 500,
        }),
    )
}

fn sends(outputs: &[Output]) -> Vec<Message> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(b) => Some(wire::decode(b, &keys()).unwrap()),
            _ => None,
        })
        .collect()
}

/// The events among `outputs`, but for [`Event::PeerDeadtime`] (see
/// [`peer_deadtimes`]) and [`Event::PeerIncarnation`] (see
/// [`remembered`]).
fn events(outputs: Vec<Output>) -> Vec<Event> {
    outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::Event(Event::PeerDeadtime { .. } | Event::PeerIncarnation { .. }) => None,
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// The [`Event::PeerDeadtime`]s among `outputs`: (node, incarnation, ms).
fn peer_deadtimes(outputs: &[Output]) -> Vec<(String, u64, u64)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::PeerDeadtime {
                node,
                incarnation,
                deadtime,
            }) => Some((node.clone(), *incarnation, deadtime.as_millis() as u64)),
            _ => None,
        })
        .collect()
}

const M0: MediumId = MediumId(0);
const M1: MediumId = MediumId(1);

#[test]
fn new_machine() {
    let m = machine();
    assert_eq!(m.next_deadline(), Duration::ZERO);
    assert_eq!(m.node_state("alpha"), Some(NodeState::Up));
    assert_eq!(m.node_state("beta"), Some(NodeState::Unknown));
    assert_eq!(m.node_state("delta"), None);
    assert_eq!(m.link_state("beta", M1), Some(LinkState::Unknown));
    assert_eq!(m.link_state("beta", MediumId(2)), None);
    assert_eq!(m.incarnation(), 10);
    let st = m.status(Duration::ZERO);
    assert_eq!(st.node, "alpha");
    assert_eq!(st.incarnation, 10);
    let ns: Vec<_> = st
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.state))
        .collect();
    assert_eq!(
        ns,
        [
            ("alpha", NodeState::Up),
            ("beta", NodeState::Unknown),
            ("gamma", NodeState::Unknown)
        ]
    );
    assert!(st.nodes[0].links.iter().all(|l| l.state == LinkState::Up));
    assert_eq!(st.nodes[0].links[1].medium, "m1");
    // Every drop counter is there from the start.
    assert_eq!(st.counters.dropped.len(), DropReason::ALL.len());
}

#[test]
fn keepalives_on_a_fixed_grid() {
    let mut m = machine();
    m.tick(Duration::ZERO);
    let out = m.take_outputs();
    let msgs = sends(&out);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].seq, 1);
    assert_eq!(msgs[0].incarnation, 10);
    assert_eq!(msgs[0].from, "alpha");
    assert_eq!(
        msgs[0].body,
        Body::Keepalive(Keepalive {
            keepalive_ms: 100,
            deadtime_ms: 500
        })
    );
    // Nothing until due; a late tick does not shift the grid.
    assert_eq!(m.next_deadline(), ms(100));
    m.tick(ms(99));
    assert!(m.take_outputs().is_empty());
    m.tick(ms(130));
    assert_eq!(sends(&m.take_outputs())[0].seq, 2);
    assert_eq!(m.next_deadline(), ms(200));
    // Far behind: one keepalive, then the next future slot.
    m.tick(ms(1050));
    assert_eq!(sends(&m.take_outputs()).len(), 1);
    assert_eq!(m.next_deadline(), ms(1100));
    m.tick(ms(1100));
    assert_eq!(sends(&m.take_outputs())[0].seq, 4);
    // Exactly on a later slot: that slot is spent, the next one is due.
    m.tick(ms(1300));
    assert_eq!(m.next_deadline(), ms(1400));
    assert_eq!(m.counters().sent, 5);
}

#[test]
fn keepalive_fields_saturate() {
    let mut c = config("alpha", &names(&["alpha", "beta"]), 1, &Timing::default());
    c.deadtime = Duration::from_secs(10_000_000);
    let mut m = Membership::new(c, 1, Duration::ZERO);
    m.tick(Duration::ZERO);
    let msg = &sends(&m.take_outputs())[0];
    assert_eq!(
        msg.body,
        Body::Keepalive(Keepalive {
            keepalive_ms: 100,
            deadtime_ms: u32::MAX
        })
    );
}

#[test]
fn up_then_dead_with_exact_deadlines() {
    let mut m = machine();
    m.tick(Duration::ZERO);
    m.take_outputs();
    m.on_datagram(M0, &ka("beta", 1, 1), ms(10)).unwrap();
    assert_eq!(
        events(m.take_outputs()),
        [
            Event::LinkUp {
                node: "beta".into(),
                medium: M0
            },
            Event::NodeUp {
                node: "beta".into(),
                incarnation: 1
            }
        ]
    );
    m.on_datagram(M1, &ka("beta", 1, 1), ms(12)).unwrap();
    assert_eq!(
        events(m.take_outputs()),
        [Event::LinkUp {
            node: "beta".into(),
            medium: M1
        }]
    );
    m.tick(ms(100));
    m.take_outputs();
    // Next: keepalive at 200; link m0 dies at 510, m1 and the node at 512.
    assert_eq!(m.next_deadline(), ms(200));
    for t in [200, 300, 400, 500] {
        m.tick(ms(t));
        assert_eq!(sends(&m.take_outputs()).len(), 1);
    }
    assert_eq!(m.next_deadline(), ms(510));
    m.tick(ms(510));
    assert_eq!(
        events(m.take_outputs()),
        [Event::LinkDead {
            node: "beta".into(),
            medium: M0
        }]
    );
    assert_eq!(m.node_state("beta"), Some(NodeState::Up));
    assert_eq!(m.next_deadline(), ms(512));
    m.tick(ms(512));
    assert_eq!(
        events(m.take_outputs()),
        [
            Event::LinkDead {
                node: "beta".into(),
                medium: M1
            },
            Event::NodeDead {
                node: "beta".into(),
                reason: DeadReason::Timeout,
                silence: Some(ms(500))
            }
        ]
    );
    let st = m.status(ms(600));
    assert_eq!(st.nodes[1].dead_reason, Some(DeadReason::Timeout));
    assert_eq!(st.nodes[1].last_heard_ms, Some(588));
    assert_eq!(st.nodes[1].incarnation, Some(1));
    // gamma, never heard: initdead.
    assert_eq!(m.next_deadline(), ms(600));
    m.tick(ms(1000));
    let ev = events(m.take_outputs());
    assert!(ev.contains(&Event::NodeDead {
        node: "gamma".into(),
        reason: DeadReason::NeverHeard,
        silence: None
    }));
}

/// runtime::realtime: the loop passes each datagram's arrival stamp. One
/// that arrived before deadtime ran out but is processed after it (a busy
/// loop) keeps the node up, and a medium taken out of arrival order never
/// moves "last heard" back.
#[test]
fn arrival_stamps_decide_not_processing_time() {
    let mut m = machine();
    m.on_datagram(M0, &ka("beta", 1, 1), ms(0)).unwrap();
    m.take_outputs();
    // Arrived at 490 (deadtime 500 from 0), processed at 530: the loop
    // takes the inbox before ticking.
    m.on_datagram(M0, &ka("beta", 1, 2), ms(490)).unwrap();
    m.tick(ms(530));
    let ev = events(m.take_outputs());
    assert!(
        !ev.iter().any(|e| matches!(e, Event::NodeDead { .. })),
        "{ev:?}"
    );
    assert_eq!(m.node_state("beta"), Some(NodeState::Up));
    // Medium 1 arrived at 900, medium 0 at 880, taken in that order.
    m.on_datagram(M1, &ka("beta", 1, 1), ms(900)).unwrap();
    m.on_datagram(M0, &ka("beta", 1, 3), ms(880)).unwrap();
    m.take_outputs();
    // 880 + 500 = 1380 would kill the node; it was heard at 900.
    m.tick(ms(1390));
    assert_eq!(m.node_state("beta"), Some(NodeState::Up));
    m.tick(ms(1400));
    assert_eq!(m.node_state("beta"), Some(NodeState::Dead));
}

#[test]
fn a_late_datagram_without_a_tick_still_kills_first() {
    let mut m = machine();
    m.on_datagram(M0, &ka("beta", 1, 1), ms(0)).unwrap();
    m.take_outputs();
    m.on_datagram(M0, &ka("beta", 1, 2), ms(700)).unwrap();
    let ev = events(m.take_outputs());
    assert!(matches!(ev[0], Event::LinkDead { .. }));
    assert!(matches!(ev[1], Event::NodeDead { .. }));
    assert!(matches!(ev[2], Event::LinkUp { .. }));
    assert!(matches!(ev[3], Event::NodeUp { .. }));
    // Not a late heartbeat: it was dead, not up.
    assert_eq!(ev.len(), 4, "{ev:?}");
}

#[test]
fn per_medium_sequence_numbers() {
    let mut m = machine();
    let d = ka("beta", 1, 5);
    // The same datagram arrives once per medium...
    assert_eq!(m.on_datagram(M0, &d, ms(1)), Ok(()));
    assert_eq!(m.on_datagram(M1, &d, ms(2)), Ok(()));
    // ... and a second copy on a medium is a replay, as is anything older.
    assert_eq!(m.on_datagram(M0, &d, ms(3)), Err(DropReason::Replay));
    assert_eq!(
        m.on_datagram(M1, &ka("beta", 1, 4), ms(3)),
        Err(DropReason::Replay)
    );
    assert_eq!(m.on_datagram(M1, &ka("beta", 1, 7), ms(4)), Ok(()));
    // A gap in sequence numbers is fine (lost datagrams).
    assert_eq!(m.on_datagram(M0, &ka("beta", 1, 7), ms(4)), Ok(()));
    let c = m.counters();
    assert_eq!(c.received, 4);
    assert_eq!(c.dropped["replay"], 2);
    // Out of range medium: a caller bug, dropped.
    assert_eq!(
        m.on_datagram(MediumId(9), &d, ms(5)),
        Err(DropReason::Malformed)
    );
}

#[test]
fn incarnations_restart_and_stale() {
    let mut m = machine();
    m.on_datagram(M0, &ka("beta", 5, 100), ms(1)).unwrap();
    m.take_outputs();
    assert_eq!(
        m.on_datagram(M0, &ka("beta", 4, 1000), ms(2)),
        Err(DropReason::Stale)
    );
    // Restart: sequence numbers start over.
    assert_eq!(m.on_datagram(M0, &ka("beta", 6, 1), ms(3)), Ok(()));
    assert_eq!(
        events(m.take_outputs()),
        [Event::NodeRestarted {
            node: "beta".into(),
            old: 5,
            new: 6
        }]
    );
    assert_eq!(m.on_datagram(M1, &ka("beta", 6, 1), ms(3)), Ok(()));
    assert_eq!(
        m.on_datagram(M1, &ka("beta", 5, 101), ms(3)),
        Err(DropReason::Stale)
    );
    assert_eq!(m.status(ms(3)).nodes[1].incarnation, Some(6));
}

#[test]
fn leaving() {
    let mut m = machine();
    m.on_datagram(M0, &ka("beta", 1, 1), ms(1)).unwrap();
    m.on_datagram(M1, &ka("beta", 1, 1), ms(1)).unwrap();
    m.take_outputs();
    m.on_datagram(M0, &datagram("beta", 1, 2, Body::Leaving), ms(50))
        .unwrap();
    assert_eq!(
        events(m.take_outputs()),
        [
            Event::LinkDead {
                node: "beta".into(),
                medium: M0
            },
            Event::LinkDead {
                node: "beta".into(),
                medium: M1
            },
            Event::NodeDead {
                node: "beta".into(),
                reason: DeadReason::Left,
                silence: Some(Duration::ZERO)
            }
        ]
    );
    assert_eq!(m.node_state("beta"), Some(NodeState::Dead));
    // Its copy on the other medium, and any later datagram of that
    // incarnation, are stale.
    let copy = datagram("beta", 1, 2, Body::Leaving);
    assert_eq!(m.on_datagram(M1, &copy, ms(51)), Err(DropReason::Stale));
    assert_eq!(
        m.on_datagram(M1, &ka("beta", 1, 3), ms(52)),
        Err(DropReason::Stale)
    );
    assert!(m.take_outputs().is_empty());
    assert_eq!(
        m.status(ms(60)).nodes[1].dead_reason,
        Some(DeadReason::Left)
    );
    // No deadline for it any more.
    assert!(m.next_deadline() <= ms(100));
    // A new incarnation comes back.
    m.on_datagram(M1, &ka("beta", 2, 1), ms(900)).unwrap();
    assert_eq!(m.node_state("beta"), Some(NodeState::Up));
    assert_eq!(m.status(ms(900)).nodes[1].dead_reason, None);
}

#[test]
fn leave_sends_once_then_nothing() {
    let mut m = machine();
    m.tick(Duration::ZERO);
    m.take_outputs();
    m.leave(ms(30));
    m.leave(ms(31));
    let msgs = sends(&m.take_outputs());
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body, Body::Leaving);
    assert_eq!(msgs[0].seq, 2);
    assert!(m.has_left());
    for t in (100..3000).step_by(100) {
        m.tick(ms(t));
        assert!(sends(&m.take_outputs()).is_empty());
    }
    // Nothing pending: the deadline is far but finite.
    assert_eq!(m.next_deadline(), ms(2900) + Duration::from_secs(3600));
}

#[test]
fn warntime() {
    let mut m = machine();
    m.on_datagram(M0, &ka("beta", 1, 1), ms(0)).unwrap();
    m.on_datagram(M0, &ka("beta", 1, 2), ms(300)).unwrap();
    m.take_outputs();
    m.on_datagram(M1, &ka("beta", 1, 3), ms(601)).unwrap();
    assert_eq!(
        events(m.take_outputs()),
        [
            Event::LateHeartbeat {
                node: "beta".into(),
                medium: M1,
                gap: ms(301)
            },
            Event::LinkUp {
                node: "beta".into(),
                medium: M1
            }
        ]
    );
}

#[test]
fn drops_change_nothing() {
    let mut m = machine();
    m.on_datagram(M0, &ka("beta", 1, 1), ms(0)).unwrap();
    m.take_outputs();
    let before = m.status(ms(1));
    let other = wire::encode(
        &Message {
            cluster: "other".into(),
            from: "beta".into(),
            incarnation: 9,
            seq: 9,
            body: Body::Leaving,
        },
        &keys(),
    )
    .unwrap();
    let forged = wire::encode(
        &Message {
            cluster: "sim".into(),
            from: "beta".into(),
            incarnation: 9,
            seq: 9,
            body: Body::Leaving,
        },
        &crate::wire::AuthKeys::single(1, AuthMethod::Sha256, b"guess"),
    )
    .unwrap();
    let cases = [
        (vec![], DropReason::Malformed),
        (vec![0; 2000], DropReason::Oversize),
        (forged, DropReason::Forged),
        (other, DropReason::OtherCluster),
        (ka("delta", 1, 1), DropReason::UnknownNode),
        (ka("alpha", 10, 1), DropReason::Own),
        (ka("beta", 1, 1), DropReason::Replay),
        (ka("beta", 0, 1), DropReason::Stale),
    ];
    for (bytes, reason) in cases {
        assert_eq!(m.on_datagram(M0, &bytes, ms(1)), Err(reason));
        assert!(m.take_outputs().is_empty());
    }
    let after = m.status(ms(1));
    assert_eq!(before.nodes, after.nodes);
    assert_eq!(after.counters.received, 1);
    for r in DropReason::ALL {
        assert_eq!(after.counters.dropped[r.as_str()], 1, "{r:?}");
    }
}

#[test]
fn duplicate_node_once_per_incarnation() {
    let mut m = machine();
    assert_eq!(
        m.on_datagram(M0, &ka("alpha", 10, 1), ms(0)),
        Err(DropReason::Own)
    );
    assert!(m.take_outputs().is_empty());
    for seq in 1..4 {
        assert_eq!(
            m.on_datagram(M0, &ka("alpha", 11, seq), ms(0)),
            Err(DropReason::Own)
        );
    }
    assert_eq!(
        events(m.take_outputs()),
        [Event::DuplicateNode { incarnation: 11 }]
    );
    m.on_datagram(M1, &ka("alpha", 3, 1), ms(0)).unwrap_err();
    assert_eq!(
        events(m.take_outputs()),
        [Event::DuplicateNode { incarnation: 3 }]
    );
    assert_eq!(m.counters().dropped["own"], 5);
    // A flood of incarnations is remembered only so far, and never panics.
    for inc in 100..300 {
        m.on_datagram(M0, &ka("alpha", inc, 1), ms(0)).unwrap_err();
    }
    assert_eq!(events(m.take_outputs()).len(), 200);
}

#[test]
fn reconfigure_keeps_state_and_timing_applies() {
    let mut m = machine();
    m.tick(Duration::ZERO);
    m.on_datagram(M0, &ka("beta", 1, 1), ms(10)).unwrap();
    m.on_datagram(M1, &ka("beta", 1, 1), ms(10)).unwrap();
    m.take_outputs();
    let mut c = m.config().clone();
    c.nodes = names(&["beta", "alpha", "delta"]);
    c.media = vec!["m1".into()];
    c.keepalive = ms(1000);
    c.deadtime = ms(2000);
    c.initdead = ms(5000);
    m.reconfigure(c, ms(50));
    assert!(m.take_outputs().is_empty());
    assert_eq!(m.node_state("gamma"), None);
    assert_eq!(m.node_state("delta"), Some(NodeState::Unknown));
    assert_eq!(m.link_state("beta", M0), Some(LinkState::Up));
    assert_eq!(m.link_state("beta", M1), None);
    // The next keepalive stays at 100 (already scheduled, sooner than 1050).
    assert_eq!(m.next_deadline(), ms(100));
    m.tick(ms(100));
    m.take_outputs();
    // beta now dies 2000 after its last datagram.
    assert_eq!(m.next_deadline(), ms(1100));
    m.tick(ms(1100));
    assert_eq!(m.next_deadline(), ms(2010));
    m.tick(ms(2010));
    assert_eq!(m.node_state("beta"), Some(NodeState::Dead));
    // delta waits initdead from the reconfiguration.
    m.tick(ms(5049));
    assert_eq!(m.node_state("delta"), Some(NodeState::Unknown));
    m.tick(ms(5050));
    assert_eq!(m.node_state("delta"), Some(NodeState::Dead));
    // Seq continues across the reconfiguration; gamma is now unknown.
    assert_eq!(
        m.on_datagram(M0, &ka("gamma", 1, 1), ms(5100)),
        Err(DropReason::UnknownNode)
    );
    let st = m.status(ms(5100));
    let order: Vec<_> = st.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(order, ["beta", "alpha", "delta"]);
    assert_eq!(st.nodes[0].links.len(), 1);
}

#[test]
fn odd_configurations_do_not_panic() {
    // Self missing from the list, duplicates, zero timings, no media.
    let mut c = config("alpha", &names(&["beta", "beta"]), 0, &Timing::default());
    c.keepalive = Duration::ZERO;
    c.deadtime = Duration::ZERO;
    c.initdead = Duration::ZERO;
    let mut m = Membership::new(c, 1, Duration::ZERO);
    m.tick(Duration::ZERO);
    assert!(m.next_deadline() > Duration::ZERO);
    let st = m.status(Duration::ZERO);
    let order: Vec<_> = st.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(order, ["alpha", "beta"]);
    assert_eq!(m.node_state("beta"), Some(NodeState::Dead));
    assert_eq!(
        m.on_datagram(M0, &ka("beta", 1, 1), ms(1)),
        Err(DropReason::Malformed)
    );
    // Times near the end of Duration.
    let mut m = machine();
    m.tick(Duration::MAX);
    m.on_datagram(M0, &ka("beta", 1, 1), Duration::MAX).unwrap();
    let _ = m.next_deadline();
    let _ = m.status(Duration::ZERO);
    // Names too long to encode: the machine stays silent.
    let long = "x".repeat(wire::MAX_NAME + 1);
    let c = config(&long, &names(&["beta"]), 1, &Timing::default());
    let mut m = Membership::new(c, 1, Duration::ZERO);
    m.tick(Duration::ZERO);
    m.leave(Duration::ZERO);
    assert!(sends(&m.take_outputs()).is_empty());
}

proptest! {
    #[test]
    fn random_bytes_never_change_state(
        bytes in proptest::collection::vec(any::<u8>(), 0..1600),
        medium in 0u16..3,
    ) {
        let mut m = machine();
        m.on_datagram(M0, &ka("beta", 1, 1), ms(0)).unwrap();
        m.take_outputs();
        let before = m.status(ms(1));
        prop_assert!(m.on_datagram(MediumId(medium), &bytes, ms(1)).is_err());
        prop_assert!(m.take_outputs().is_empty());
        prop_assert_eq!(before.nodes, m.status(ms(1)).nodes);
    }

    #[test]
    fn any_valid_datagram_sequence_never_panics(
        msgs in proptest::collection::vec(
            (0usize..4, 0u64..4, 0u64..6, any::<bool>(), 0u16..2, 0u64..2000), 0..40),
    ) {
        let who = ["alpha", "beta", "gamma", "delta"];
        let mut m = machine();
        let mut now = Duration::ZERO;
        for (from, inc, seq, leaving, medium, dt) in msgs {
            now += ms(dt);
            m.tick(now);
            let body = if leaving { Body::Leaving } else {
                Body::Keepalive(Keepalive { keepalive_ms: 1, deadtime_ms: 1 })
            };
            let _ = m.on_datagram(MediumId(medium), &datagram(who[from], inc, seq, body), now);
            prop_assert!(m.next_deadline() > now);
            for peer in ["beta", "gamma"] {
                if m.node_state(peer) == Some(NodeState::Up) {
                    prop_assert!((0..2).any(|i| m.link_state(peer, MediumId(i)) == Some(LinkState::Up)));
                }
            }
            m.take_outputs();
        }
    }
}

/// A group report is liveness like a keepalive, and is delivered once
/// however many media carry it; an older one arriving late is not delivered.
#[test]
fn reports_are_delivered_once_and_in_order() {
    let mut m = machine();
    m.take_outputs();
    let report = |ready| {
        Body::Groups(crate::wire::GroupReport {
            ready,
            leaving: false,
            groups: Vec::new(),
            marks: Vec::new(),
            no: 1,
            heard: Vec::new(),
            witness: false,
            ping: None,
        })
    };
    let t = ms(10);
    m.on_datagram(M0, &datagram("beta", 7, 2, report(true)), t)
        .unwrap();
    // seq 1 arrives late on medium 1 (new there, so accepted): not delivered.
    m.on_datagram(M1, &datagram("beta", 7, 1, report(false)), t)
        .unwrap();
    // seq 2 on medium 1 too: the same report, not delivered twice.
    m.on_datagram(M1, &datagram("beta", 7, 2, report(true)), t)
        .unwrap();
    let ev = events(m.take_outputs());
    let reports: Vec<&Event> = ev
        .iter()
        .filter(|e| matches!(e, Event::Report { .. }))
        .collect();
    assert_eq!(reports.len(), 1, "{ev:?}");
    assert!(
        matches!(reports[0], Event::Report { node, incarnation: 7, report } if node == "beta" && report.ready)
    );
    assert!(ev.contains(&Event::NodeUp {
        node: "beta".into(),
        incarnation: 7
    }));
    assert_eq!(m.node_state("beta"), Some(NodeState::Up));
    // After a restart sequence numbers start over and reports flow again.
    m.on_datagram(M0, &datagram("beta", 8, 1, report(false)), ms(20))
        .unwrap();
    let ev = events(m.take_outputs());
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Report { incarnation: 8, .. })),
        "{ev:?}"
    );
    // broadcast sends the body as the next datagram, and nothing after leave.
    m.broadcast(report(true));
    assert!(matches!(sends(&m.take_outputs())[0].body, Body::Groups(_)));
    m.leave(ms(30));
    m.take_outputs();
    m.broadcast(report(true));
    assert!(sends(&m.take_outputs()).is_empty());
}

fn ka_deadtime(from: &str, incarnation: u64, seq: u64, deadtime_ms: u32) -> Vec<u8> {
    datagram(
        from,
        incarnation,
        seq,
        Body::Keepalive(Keepalive {
            keepalive_ms: 100,
            deadtime_ms,
        }),
    )
}

/// Issue 14, finding 10: the deadtime a peer announces reaches the group
/// machine once per incarnation and change, after its NodeUp.
#[test]
fn peer_deadtime_is_reported_once_per_incarnation_and_change() {
    let mut m = machine();
    m.on_datagram(M0, &ka_deadtime("beta", 5, 1, 500), ms(1))
        .unwrap();
    let out = m.take_outputs();
    assert_eq!(peer_deadtimes(&out), [("beta".to_string(), 5, 500)]);
    let up = out
        .iter()
        .position(|o| matches!(o, Output::Event(Event::NodeUp { .. })));
    let dt = out
        .iter()
        .position(|o| matches!(o, Output::Event(Event::PeerDeadtime { .. })));
    assert!(up < dt, "{out:?}");
    // The same on the other medium and later: nothing new.
    m.on_datagram(M1, &ka_deadtime("beta", 5, 1, 500), ms(2))
        .unwrap();
    m.on_datagram(M0, &ka_deadtime("beta", 5, 2, 500), ms(3))
        .unwrap();
    assert!(peer_deadtimes(&m.take_outputs()).is_empty());
    // A reload there: the new one.
    m.on_datagram(M0, &ka_deadtime("beta", 5, 3, 2000), ms(4))
        .unwrap();
    assert_eq!(
        peer_deadtimes(&m.take_outputs()),
        [("beta".to_string(), 5, 2000)]
    );
    // A restart announces again, even the same value.
    m.on_datagram(M0, &ka_deadtime("beta", 6, 1, 2000), ms(5))
        .unwrap();
    assert_eq!(
        peer_deadtimes(&m.take_outputs()),
        [("beta".to_string(), 6, 2000)]
    );
}

/// Issue 14, finding 10: a reload that shortens the deadtime does not make
/// peers die sooner in this incarnation (they trust this node's grants
/// and votes for as long as the deadtime they heard announced); a longer
/// one applies at once. Keepalives announce the one in force.
#[test]
fn a_shorter_deadtime_waits_for_the_next_start() {
    let c = |deadtime| MembershipConfig {
        deadtime,
        ..config(
            "alpha",
            &names(&["alpha", "beta", "gamma"]),
            2,
            &Timing::default(),
        )
    };
    let mut m = Membership::new(c(ms(500)), 10, Duration::ZERO);
    m.on_datagram(M0, &ka("beta", 1, 1), ms(10)).unwrap();
    m.take_outputs();
    m.reconfigure(c(ms(200)), ms(20));
    assert_eq!(m.deadtime(), ms(500));
    m.tick(ms(300));
    assert_eq!(
        m.node_state("beta"),
        Some(NodeState::Up),
        "not dead after 290 ms"
    );
    let announced: Vec<_> = sends(&m.take_outputs())
        .into_iter()
        .map(|msg| msg.body)
        .collect();
    assert_eq!(
        announced,
        [Body::Keepalive(Keepalive {
            keepalive_ms: 100,
            deadtime_ms: 500
        })]
    );
    m.tick(ms(510));
    assert_eq!(m.node_state("beta"), Some(NodeState::Dead));
    // Longer: at once.
    m.reconfigure(c(ms(900)), ms(520));
    assert_eq!(m.deadtime(), ms(900));
    // A new start runs the configured one.
    assert_eq!(Membership::new(c(ms(200)), 11, ms(600)).deadtime(), ms(200));
}

/// authkeys with sha256 signing (key 1) and weaker keys 2 (crc) and 3
/// (md5) listed, as during a rollover.
fn mixed_keys(active: u8) -> AuthKeys {
    AuthKeys {
        active,
        keys: vec![
            wire::AuthKey {
                id: 1,
                method: AuthMethod::Sha256,
                secret: b"cluster secret".to_vec(),
            },
            wire::AuthKey {
                id: 2,
                method: AuthMethod::Crc,
                secret: Vec::new(),
            },
            wire::AuthKey {
                id: 3,
                method: AuthMethod::Md5,
                secret: b"older secret".to_vec(),
            },
        ],
    }
}

fn ka_signed(from: &str, incarnation: u64, seq: u64, key: u8) -> Vec<u8> {
    wire::encode(
        &Message {
            cluster: "sim".into(),
            from: from.into(),
            incarnation,
            seq,
            body: Body::Keepalive(Keepalive {
                keepalive_ms: 100,
                deadtime_ms: 500,
            }),
        },
        &mixed_keys(key),
    )
    .unwrap()
}

/// Issue 14, finding 8: a node that signs with sha256 drops datagrams
/// signed with a weaker key (crc: anyone can compute it; md5) even though
/// the key id is listed in its authkeys.
#[test]
fn a_sha256_node_drops_crc_and_md5_datagrams() {
    let t = Timing {
        keys: mixed_keys(1),
        ..Timing::default()
    };
    let c = config("alpha", &names(&["alpha", "beta"]), 1, &t);
    let mut m = Membership::new(c, 10, Duration::ZERO);
    assert_eq!(
        m.on_datagram(M0, &ka_signed("beta", 1, 1, 2), ms(1)),
        Err(DropReason::Forged),
        "crc"
    );
    assert_eq!(
        m.on_datagram(M0, &ka_signed("beta", 1, 2, 3), ms(2)),
        Err(DropReason::Forged),
        "md5"
    );
    assert_eq!(m.node_state("beta"), Some(NodeState::Unknown));
    assert_eq!(
        m.on_datagram(M0, &ka_signed("beta", 1, 3, 1), ms(3)),
        Ok(())
    );
}

/// The [`Event::PeerIncarnation`]s among `outputs`.
fn remembered(outputs: &[Output]) -> Vec<(String, u64, bool)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::PeerIncarnation {
                node,
                incarnation,
                left,
            }) => Some((node.clone(), *incarnation, *left)),
            _ => None,
        })
        .collect()
}

/// Issue 14, finding 8: what the machine asks to remember of a peer (its
/// newest incarnation, whether it left), once per change; given back to a
/// new machine, datagrams of older incarnations (and of the one that
/// left) are stale from the first on, while the remembered incarnation
/// itself, still running, is accepted.
#[test]
fn a_restarted_machine_remembers_the_peers_newest_incarnation() {
    let mut m = machine();
    let captured = ka("beta", 5, 1);
    m.on_datagram(M0, &captured, ms(1)).unwrap();
    assert_eq!(
        remembered(&m.take_outputs()),
        [("beta".to_string(), 5, false)]
    );
    m.on_datagram(M1, &ka("beta", 5, 1), ms(2)).unwrap();
    m.on_datagram(M0, &ka("beta", 5, 2), ms(3)).unwrap();
    assert!(remembered(&m.take_outputs()).is_empty(), "no change");
    m.on_datagram(M0, &ka("beta", 6, 1), ms(4)).unwrap();
    assert_eq!(
        remembered(&m.take_outputs()),
        [("beta".to_string(), 6, false)]
    );

    // This node restarts: without memory the captured datagram of
    // incarnation 5 would bring beta up.
    let mut fresh = machine();
    assert_eq!(fresh.on_datagram(M0, &captured, ms(1)), Ok(()));
    let mut m = machine();
    m.remember("beta", 6, false);
    m.remember("beta", 4, false);
    m.remember("nobody", 9, false);
    assert_eq!(m.on_datagram(M0, &captured, ms(1)), Err(DropReason::Stale));
    assert_eq!(m.node_state("beta"), Some(NodeState::Unknown));
    assert!(m.take_outputs().is_empty());
    // Incarnation 6, still running, is accepted (no restart event).
    m.on_datagram(M0, &ka("beta", 6, 9), ms(2)).unwrap();
    assert_eq!(m.node_state("beta"), Some(NodeState::Up));
    let out = m.take_outputs();
    assert!(remembered(&out).is_empty(), "{out:?}");
    assert!(!events(out)
        .iter()
        .any(|e| matches!(e, Event::NodeRestarted { .. })));

    // A leaving incarnation is remembered as such.
    m.on_datagram(M0, &datagram("beta", 6, 10, Body::Leaving), ms(3))
        .unwrap();
    assert_eq!(
        remembered(&m.take_outputs()),
        [("beta".to_string(), 6, true)]
    );
    let mut m = machine();
    m.remember("beta", 6, true);
    assert_eq!(
        m.on_datagram(M0, &ka("beta", 6, 11), ms(1)),
        Err(DropReason::Stale)
    );
    assert_eq!(m.on_datagram(M0, &ka("beta", 7, 1), ms(2)), Ok(()));
}

/// Issue 14, finding 8: `[cluster] accept_weaker_keys` lets the weaker
/// keys in again (a rollover to a stronger method).
#[test]
fn weaker_keys_are_accepted_when_asked() {
    let t = Timing {
        keys: mixed_keys(1),
        ..Timing::default()
    };
    let c = MembershipConfig {
        accept_weaker_keys: true,
        ..config("alpha", &names(&["alpha", "beta"]), 1, &t)
    };
    let mut m = Membership::new(c.clone(), 10, Duration::ZERO);
    assert_eq!(
        m.on_datagram(M0, &ka_signed("beta", 1, 1, 2), ms(1)),
        Ok(())
    );
    assert_eq!(
        m.on_datagram(M0, &ka_signed("beta", 1, 2, 3), ms(2)),
        Ok(())
    );
    // And a reload without it drops them again.
    m.reconfigure(
        MembershipConfig {
            accept_weaker_keys: false,
            ..c
        },
        ms(3),
    );
    assert_eq!(
        m.on_datagram(M0, &ka_signed("beta", 1, 3, 2), ms(4)),
        Err(DropReason::Forged)
    );
}
