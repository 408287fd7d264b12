//! Per-datagram cost of the receive path, side by side in one run:
//! `cargo bench --bench wire`.
//!
//! What a flood costs the daemon: a datagram with a bad header is rejected
//! before any MAC; one with a good header but a bad MAC costs one MAC; only
//! an authentic one reaches bincode and the membership machine. Medians of
//! 15 rounds, in nanoseconds per datagram, with ratios to the valid sha256 case.
//!
//! Then the replication link's codec, sealed (AES-256-GCM, the default) and
//! plain (`tls no`): encode + decode of one 4 KiB and one 1 MiB write frame,
//! the CPU cost of sealing alone, in ns per frame and MiB/s.

use hbd::membership::{MediumId, Membership, MembershipConfig};
use hbd::wire::{self, AuthKeys, AuthMethod, Body, Keepalive, Message};
use std::hint::black_box;
use std::time::{Duration, Instant};

const ROUNDS: usize = 15;

fn median_ns(iters: u32, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[ROUNDS / 2]
}

fn keys(method: AuthMethod) -> AuthKeys {
    AuthKeys::single(1, method, b"0123456789abcdef0123456789abcdef")
}

fn message(seq: u64) -> Message {
    Message {
        cluster: "hbd".into(),
        from: "n2".into(),
        incarnation: 1_763_800_000,
        seq,
        body: Body::Keepalive(Keepalive {
            keepalive_ms: 100,
            deadtime_ms: 500,
        }),
    }
}

fn main() {
    let iters = 20_000;
    let mut rows: Vec<(String, f64)> = Vec::new();

    for method in [
        AuthMethod::Crc,
        AuthMethod::Md5,
        AuthMethod::Sha1,
        AuthMethod::Sha256,
    ] {
        let k = keys(method);
        let bytes = wire::encode(&message(1), &k).expect("encode");
        rows.push((
            format!("encode keepalive ({})", method.as_str()),
            median_ns(iters, || {
                black_box(wire::encode(black_box(&message(1)), &k).ok());
            }),
        ));
        rows.push((
            format!("decode valid ({})", method.as_str()),
            median_ns(iters, || {
                black_box(wire::decode(black_box(&bytes), &k).ok());
            }),
        ));
    }

    let k = keys(AuthMethod::Sha256);
    let good = wire::encode(&message(1), &k).expect("encode");
    let mut forged = good.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let garbage = vec![0xa5u8; 200];
    let oversize = vec![0u8; 4000];
    rows.push((
        "decode bad MAC (sha256)".into(),
        median_ns(iters, || {
            black_box(wire::decode(black_box(&forged), &k).err());
        }),
    ));
    rows.push((
        "decode garbage, 200 bytes".into(),
        median_ns(iters, || {
            black_box(wire::decode(black_box(&garbage), &k).err());
        }),
    ));
    rows.push((
        "decode oversize, 4000 bytes".into(),
        median_ns(iters, || {
            black_box(wire::decode(black_box(&oversize), &k).err());
        }),
    ));

    // The whole receive path of the state machine: decode, checks, state.
    let config = MembershipConfig {
        cluster: "hbd".into(),
        node: "n1".into(),
        nodes: vec!["n1".into(), "n2".into()],
        media: vec!["bcast eth0".into()],
        keepalive: Duration::from_millis(100),
        deadtime: Duration::from_millis(500),
        warntime: Duration::from_millis(250),
        initdead: Duration::from_secs(1),
        keys: k.clone(),
        accept_weaker_keys: false,
    };
    let datagrams: Vec<Vec<u8>> = (1..=u64::from(iters) * ROUNDS as u64 + 1)
        .map(|s| wire::encode(&message(s), &k).expect("encode"))
        .collect();
    let mut m = Membership::new(config.clone(), 1, Duration::ZERO);
    let mut next = datagrams.iter();
    let mut now = Duration::ZERO;
    rows.push((
        "membership on_datagram, valid (sha256)".into(),
        median_ns(iters, || {
            now += Duration::from_micros(10);
            let d = next.next().expect("enough datagrams");
            black_box(m.on_datagram(MediumId(0), d, now).ok());
            m.take_outputs();
        }),
    ));
    let mut m = Membership::new(config, 1, Duration::ZERO);
    rows.push((
        "membership on_datagram, replay (sha256)".into(),
        median_ns(iters, || {
            black_box(m.on_datagram(MediumId(0), &good, Duration::ZERO).err());
            m.take_outputs();
        }),
    ));

    let base = rows
        .iter()
        .find(|(n, _)| n == "decode valid (sha256)")
        .map(|(_, v)| *v)
        .unwrap_or(1.0);
    println!(
        "| operation | ns per datagram (median of {ROUNDS}) | ratio to decode valid (sha256) |"
    );
    println!("|---|---|---|");
    for (name, ns) in rows {
        println!("| {name} | {ns:.0} | {:.2} |", ns / base);
    }

    link_codec();
}

fn link_codec() {
    use hbd::disk::packet::{self, Frame, LinkCodec};
    use tokio_util::bytes::BytesMut;
    use tokio_util::codec::{Decoder, Encoder};
    println!("\n| link frame, encode + decode | sealed ns | plain ns | sealed MiB/s | plain MiB/s | sealed ÷ plain time |");
    println!("|---|---|---|---|---|---|");
    for size in [4096usize, 1 << 20] {
        let body = packet::encode(&Frame::Write {
            seq: 1,
            offset: 0,
            data: vec![0x5a; size],
        })
        .expect("encode");
        let iters = if size > 65536 { 200 } else { 20_000 };
        let run = |mut tx: LinkCodec, mut rx: LinkCodec| {
            let mut wire = BytesMut::new();
            median_ns(iters, || {
                tx.encode(body.clone(), &mut wire).expect("seal");
                black_box(rx.decode(&mut wire).expect("open"));
            })
        };
        let (a, b) = LinkCodec::sealed_pair([1; 32], [2; 32], packet::REKEY_FRAMES);
        let sealed = run(a, b);
        let plain = run(LinkCodec::plain(), LinkCodec::plain());
        let mib = |ns: f64| size as f64 / (1 << 20) as f64 / (ns / 1e9);
        println!(
            "| {} | {sealed:.0} | {plain:.0} | {:.0} | {:.0} | {:.2} |",
            if size > 65536 {
                "1 MiB write"
            } else {
                "4 KiB write"
            },
            mib(sealed),
            mib(plain),
            sealed / plain
        );
    }
}
