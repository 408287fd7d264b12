"""Parts 3 and 4 of the benchmark (see cli.py): crash failover and
planned switchover of the VIP group, hbd vs heartbeat."""
import statistics, subprocess, time

from . import summary
from .clusters import HB_SETTLE, HbdGroupCluster, HeartbeatGroupCluster
from .common import (LAB, PREFIX, hbd_log_times, kill_offset, kill_pids, med_range, ms,
                     ratio, sh, start_offset)

# (keepalive, deadtime, keepalive s, deadtime s, arp_probe or None = default)
HBD_FAILOVER_SETTINGS = (("1", "3", 1.0, 3.0, None), ("100ms", "500ms", 0.1, 0.5, None),
                         ("100ms", "500ms", 0.1, 0.5, "0s"), ("50ms", "200ms", 0.05, 0.2, None),
                         ("10ms", "50ms", 0.01, 0.05, None), ("10ms", "50ms", 0.01, 0.05, "0s"),
                         ("10ms", "50ms", 0.01, 0.05, "200ms"),
                         ("10ms", "50ms", 0.01, 0.05, "rfc5227"))
# hbd's default arp_probe, for the tables.
DEFAULT_PROBE = "30ms (default)"
HB_FAILOVER_SETTINGS = (("1", "3", 1.0, 3.0), ("100ms", "500ms", 0.1, 0.5),
                        ("10ms", "50ms", 0.01, 0.05))
SWITCHOVER_SETTING = ("1", "3", 1.0, 3.0)


def hbd_failover(keepalive, deadtime, keepalive_s, deadtime_s, arp_probe, trials):
    """[(kill → VIP answers from n2, kill → node dead, node dead → VIP added,
    VIP added → answers)], from n2's log ("node dead", IPaddr2's "address
    added") and the probe."""
    out = []
    for t in range(trials):
        c = HbdGroupCluster(f"{PREFIX}hbd-f{t}", keepalive, deadtime, arp_probe)
        try:
            c.start("n1")
            time.sleep(start_offset(t, trials, keepalive_s))
            c.start("n2")
            c.wait("n1", "n2", "up"); c.wait("n2", "n1", "up")
            c.wait_owner("n1")
            if c.probe.first("n1", 0, 10) is None:
                raise SystemExit(f"bench: hbd: the VIP never answered from n1; logs in {c.dir}")
            time.sleep(1.0 + kill_offset(t, trials, keepalive_s))
            t0 = time.time()
            kill_pids([c.procs["n1"].pid, c.procs["echo-n1"].pid])
            sh(LAB, "link", c.name, "n1", "0", "down")
            ta = c.probe.first("n2", t0, deadtime_s + 20)
            if ta is None:
                raise SystemExit(f"bench: hbd: the VIP never answered from n2; logs in {c.dir}")
            time.sleep(0.1)
            lines = hbd_log_times(c.log("n2"), t0 - 0.001)
            dead = next((ts for ts, l in lines if "node dead" in l), None)
            added = next((ts for ts, l in lines if "address added" in l), None)
            out.append((ta - t0, dead - t0 if dead else None,
                        added - dead if dead and added else None,
                        ta - added if added else None))
        finally:
            c.close()
    return out


def hbd_switchover(keepalive, deadtime, arp_probe, trials):
    """[(outage, command → VIP answers from the peer)]: `hbctl standby all` on
    n1 (timed), then `hbctl takeover all` on n1 (not timed) brings it back.
    (Standby on both nodes in turn leaves both refusing, after which a
    further standby never moves the group: see docs/BENCHMARKS.md.)"""
    out = []
    c = HbdGroupCluster(f"{PREFIX}hbd-s", keepalive, deadtime, arp_probe)
    try:
        c.start("n1"); c.start("n2")
        c.wait("n1", "n2", "up"); c.wait("n2", "n1", "up")
        c.wait_owner("n1")
        if c.probe.first("n1", 0, 10) is None:
            raise SystemExit(f"bench: hbd: the VIP never answered; logs in {c.dir}")
        for _ in range(trials):
            time.sleep(1.0)
            t0 = time.time()
            r = c.hbctl("n1", "standby", "all", "--timeout", "30")
            if r.returncode != 0:
                raise SystemExit(f"bench: hbctl standby failed: {r.stdout}{r.stderr}")
            ta = c.probe.first("n2", t0, 10)
            if ta is None:
                raise SystemExit(f"bench: hbd: the VIP never answered from n2; logs in {c.dir}")
            last = c.probe.last_before("n1", ta)
            out.append((ta - max(last, t0) if last else None, ta - t0))
            c.wait_owner("n2")
            time.sleep(1.0)
            r = c.hbctl("n1", "takeover", "all", "--timeout", "30")
            if r.returncode != 0:
                raise SystemExit(f"bench: hbctl takeover failed: {r.stdout}{r.stderr}")
            c.wait_owner("n1")
            if c.probe.first("n1", time.time(), 10) is None:
                raise SystemExit(f"bench: hbd: the VIP never came back to n1; logs in {c.dir}")
    finally:
        c.close()
    return out


def heartbeat_failover(keepalive, deadtime, keepalive_s, deadtime_s, trials):
    out = []
    for t in range(trials):
        c = HeartbeatGroupCluster(f"{PREFIX}hb-f{t}", keepalive, deadtime)
        try:
            c.start("n1")
            time.sleep(start_offset(t, trials, keepalive_s))
            started = time.time()
            c.start("n2")
            c.wait_active("n1", "n2")
            if c.probe.first("n1", 0, 60) is None:
                raise SystemExit("bench: heartbeat: the VIP never answered from n1")
            time.sleep(max(0.0, started + HB_SETTLE - time.time())
                       + kill_offset(t, trials, keepalive_s))
            victims = c.pids("n1")  # the daemon's 4 processes and the echo server
            t0 = time.time()
            kill_pids(victims)
            sh(LAB, "link", c.name, "n1", "0", "down")
            ta = c.probe.first("n2", t0, deadtime_s + 20)
            if ta is None:
                raise SystemExit("bench: heartbeat: the VIP never answered from n2")
            out.append(ta - t0)
        finally:
            c.close()
    return out


def heartbeat_switchover(keepalive, deadtime, trials):
    """As hbd_switchover: `hb_standby all` on n1 (timed), `hb_takeover all`
    on n1 (not timed), run inside n1's namespaces."""
    out = []
    c = HeartbeatGroupCluster(f"{PREFIX}hb-s", keepalive, deadtime)

    def run(tool):
        sh("nsenter", "-t", str(c.master("n1")), "-m", "-u", "-n",
           f"/usr/share/heartbeat/{tool}", "all",
           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    try:
        started = time.time()
        c.start("n1"); c.start("n2")
        c.wait_active("n1", "n2")
        if c.probe.first("n1", 0, 60) is None:
            raise SystemExit("bench: heartbeat: the VIP never answered from n1")
        time.sleep(max(0.0, started + HB_SETTLE - time.time()))
        for _ in range(trials):
            time.sleep(2.0)
            t0 = time.time()
            run("hb_standby")
            ta = c.probe.first("n2", t0, 20)
            if ta is None:
                raise SystemExit("bench: heartbeat: the VIP never answered from n2")
            last = c.probe.last_before("n1", ta)
            out.append((ta - max(last, t0) if last else None, ta - t0))
            time.sleep(2.0)
            tb = time.time()
            run("hb_takeover")
            if c.probe.first("n1", tb, 20) is None:
                raise SystemExit("bench: heartbeat: the VIP never came back to n1")
    finally:
        c.close()
    return out


# ---------------------------------------------------------------- tables

def failover_table(args):
    print("\nCrash failover, holder dies (SIGKILL of its daemon and echo server, link cut "
          "at the switch) → the VIP answers the client from the peer (median, min – max):\n")
    print("| keepalive | deadtime | program | arp_probe | VIP answers again | min – max "
          "| heartbeat / hbd | hbd: kill → node dead | hbd: dead → VIP added "
          "| hbd: VIP added → answers | trials |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    hbd_medians = {}
    runs = []
    for ka, dt, ka_s, dt_s, probe in HBD_FAILOVER_SETTINGS:
        runs.append(("hbd", ka, dt, ka_s, dt_s, probe))
        if not args.skip_heartbeat and probe is None and any(
                h[0] == ka for h in HB_FAILOVER_SETTINGS):
            runs.append(("heartbeat", ka, dt, ka_s, dt_s, None))
    for prog, ka, dt, ka_s, dt_s, probe in runs:
        if prog == "hbd":
            r = hbd_failover(ka, dt, ka_s, dt_s, probe, args.trials)
            m, rng, mv = med_range([x[0] for x in r])
            det, _, _ = med_range([x[1] for x in r])
            st, _, _ = med_range([x[2] for x in r])
            an, _, _ = med_range([x[3] for x in r])
            if probe is None:
                hbd_medians[ka] = mv
                if ka == "10ms":
                    summary.record(
                        "crash", m, mv is not None and mv <= dt_s + 0.030,
                        f"detection {det}, node dead → VIP added {st}, added → answers {an}; "
                        f"{args.trials} trials")
            row = [ka, dt, "hbd", probe or DEFAULT_PROBE, m, rng, "", det, st, an]
        else:
            r = heartbeat_failover(ka, dt, ka_s, dt_s, args.trials)
            m, rng, mv = med_range(r)
            if ka == "10ms":
                crash = summary._records.get("crash")
                if crash:
                    crash["baseline"] = f"heartbeat 3.0.6: {m}"
            row = [ka, dt, "heartbeat", "—", m, rng, ratio(mv, hbd_medians.get(ka)), "—", "—", "—"]
        print("| " + " | ".join(row + [str(args.trials)]) + " |", flush=True)


def switchover_table(args):
    ka, dt, _, _ = SWITCHOVER_SETTING
    print(f"\nPlanned switchover at keepalive {ka} / deadtime {dt}: `hbctl standby all` / "
          "`hb_standby all` on the holder n1, then takeover back, not timed (median, worst):\n")
    print("| program | arp_probe | outage (no answer) | worst | heartbeat / hbd "
          "| command → peer answers | worst | heartbeat / hbd | trials |")
    print("|---|---|---|---|---|---|---|---|---|")
    runs = [("hbd", None), ("hbd", "0s"), ("hbd", "200ms"), ("hbd", "rfc5227")] + (
        [] if args.skip_heartbeat else [("heartbeat", None)])
    base = None
    for prog, probe in runs:
        if prog == "hbd":
            r = hbd_switchover(ka, dt, probe, args.trials)
        else:
            r = heartbeat_switchover(ka, dt, args.trials)
        o = statistics.median([x[0] for x in r if x[0] is not None])
        a = statistics.median([x[1] for x in r])
        if prog == "hbd" and probe is None:
            base = (o, a)
            summary.record(
                "switchover", ms(o), o <= 0.020,
                f"worst {ms(max(x[0] for x in r if x[0] is not None))}; command → peer answers "
                f"{ms(a)}; {args.trials} trials")
        if prog == "heartbeat" and "switchover" in summary._records:
            summary._records["switchover"]["baseline"] = f"heartbeat 3.0.6: {ms(o)}"
        row = [prog, "—" if prog == "heartbeat" else (probe or DEFAULT_PROBE),
               ms(o), ms(max(x[0] for x in r if x[0] is not None)),
               ratio(o, base[0]) if prog == "heartbeat" and base else "",
               ms(a), ms(max(x[1] for x in r)),
               ratio(a, base[1]) if prog == "heartbeat" and base else ""]
        print("| " + " | ".join(row + [str(args.trials)]) + " |", flush=True)
