"""Parts 1 and 2 of the benchmark (see cli.py): crash detection and the
idle footprint, hbd vs heartbeat."""
import datetime, os, signal, statistics, time

from .clusters import HB_SETTLE, HbdCluster, HeartbeatCluster
from .common import (ANSI, PREFIX, footprint, kill_offset, kill_pids, ms, ratio,
                     start_offset)

# (keepalive, deadtime) as both ha.cf dialects accept them, and in seconds.
DETECTION_SETTINGS = (("1", "3", 1.0, 3.0), ("100ms", "500ms", 0.1, 0.5),
                      ("50ms", "200ms", 0.05, 0.2), ("10ms", "50ms", 0.01, 0.05))
IDLE_SETTINGS = (("1", "3", 1.0, 3.0), ("100ms", "500ms", 0.1, 0.5))


def hbd_dead_time(log):
    """UTC timestamp (s) of the first 'node dead' line."""
    for line in ANSI.sub("", log).splitlines():
        if "node dead" in line:
            ts = line.split()[0].rstrip("Z")
            dt = datetime.datetime.fromisoformat(ts).replace(tzinfo=datetime.timezone.utc)
            return dt.timestamp()
    return None


def hbd_detection(keepalive, deadtime, keepalive_s, trials):
    out = []
    for t in range(trials):
        c = HbdCluster(f"{PREFIX}hbd-d{t}", keepalive, deadtime)
        try:
            c.start("n1")
            time.sleep(start_offset(t, trials, keepalive_s))
            c.start("n2")
            c.wait("n1", "n2", "up"); c.wait("n2", "n1", "up")
            time.sleep(1.0 + kill_offset(t, trials, keepalive_s))
            t0 = time.time()
            os.kill(c.procs["n2"].pid, signal.SIGKILL)
            c.wait("n1", "n2", "dead")
            out.append(hbd_dead_time(c.log("n1")) - t0)
        finally:
            c.close()
    return out


def hbd_idle(keepalive, deadtime, seconds):
    c = HbdCluster(f"{PREFIX}hbd-i", keepalive, deadtime)
    try:
        c.start("n1"); c.start("n2")
        c.wait("n1", "n2", "up")
        time.sleep(2)
        return footprint([c.procs["n1"].pid], seconds)  # `ip netns exec` execs hbd: same pid
    finally:
        c.close()

def heartbeat_detection(keepalive, deadtime, keepalive_s, deadtime_s, trials):
    out = []
    for t in range(trials):
        c = HeartbeatCluster(f"{PREFIX}hb-d{t}", keepalive, deadtime)
        try:
            c.start("n1")
            time.sleep(start_offset(t, trials, keepalive_s))
            started = time.time()
            c.start("n2")
            c.wait_active("n1", "n2")
            time.sleep(max(0.0, started + HB_SETTLE - time.time())
                       + kill_offset(t, trials, keepalive_s))
            victims = c.pids("n2")
            since = c.logs["n1"].mark()
            t0 = time.time()
            kill_pids(victims)
            td = c.logs["n1"].wait_for("node n2: is dead", since, timeout=deadtime_s + 10)
            if td is None:
                raise SystemExit("bench: heartbeat n1 never declared n2 dead")
            out.append(td - t0)
        finally:
            c.close()
    return out


def heartbeat_idle(keepalive, deadtime, seconds):
    c = HeartbeatCluster(f"{PREFIX}hb-i", keepalive, deadtime)
    try:
        started = time.time()
        c.start("n1"); c.start("n2")
        c.wait_active("n1", "n2")
        time.sleep(max(0.0, started + HB_SETTLE - time.time()))
        return footprint(c.pids("n1"), seconds)
    finally:
        c.close()


# ---------------------------------------------------------------- tables

def detection_table(args):
    print("Crash detection, kill → peer declares the node dead (median, min – max; "
          "median / deadtime):\n")
    print("| keepalive | deadtime | hbd | hbd min – max | hbd / deadtime "
          "| heartbeat | heartbeat min – max | heartbeat / deadtime | heartbeat / hbd | trials |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for ka, dt, ka_s, dt_s in DETECTION_SETTINGS:
        h = hbd_detection(ka, dt, ka_s, args.trials)
        hm = statistics.median(h)
        row = [ka, dt, ms(hm), f"{ms(min(h))} – {ms(max(h))}", f"{hm / dt_s:.2f}"]
        if args.skip_heartbeat:
            row += ["—", "—", "—", "—"]
        else:
            b = heartbeat_detection(ka, dt, ka_s, dt_s, args.trials)
            bm = statistics.median(b)
            row += [ms(bm), f"{ms(min(b))} – {ms(max(b))}", f"{bm / dt_s:.2f}", ratio(bm, hm)]
        print("| " + " | ".join(row + [str(args.trials)]) + " |", flush=True)


def idle_table(args):
    def mib(kib):
        return f"{kib / 1024:.1f} MiB"

    print(f"\nIdle footprint of one node over {args.idle_seconds} s "
          "(CPU % of one core; RSS and PSS summed over the node's processes):\n")
    print("| keepalive | hbd CPU | heartbeat CPU | heartbeat / hbd CPU "
          "| hbd RSS | heartbeat RSS | hbd PSS | heartbeat PSS | heartbeat / hbd PSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for ka, dt, _, _ in IDLE_SETTINGS:
        h = hbd_idle(ka, dt, args.idle_seconds)
        row = [ka, f"{h['cpu']:.3f} % ({h['procs']} proc)"]
        if args.skip_heartbeat:
            row += ["—", "—", mib(h["rss"]), "—", mib(h["pss"]), "—", "—"]
        else:
            b = heartbeat_idle(ka, dt, args.idle_seconds)
            row += [f"{b['cpu']:.3f} % ({b['procs']} procs)", ratio(b["cpu"], h["cpu"]),
                    mib(h["rss"]), mib(b["rss"]), mib(h["pss"]), mib(b["pss"]),
                    ratio(b["pss"], h["pss"])]
        print("| " + " | ".join(row) + " |", flush=True)
