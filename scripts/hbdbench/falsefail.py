"""False failovers under load (scripts/bench --only falsefail).

1. falsefail: a two-node hbd cluster and a two-node heartbeat 3.0.6 cluster,
   each with the VIP group (`n1 IPaddr2::192.0.2.50/24/eth0:0`, auto_failback
   on) at each of BENCH_FALSEFAIL_TIMINGS (default "10ms/50ms 5ms/25ms"), for
   BENCH_FALSEFAIL_SECONDS each (default --idle-seconds; issue 15's row is
   5 min at 5ms/25ms), hbd's ha.cf with `realtime BENCH_FALSEFAIL_REALTIME`
   (on, the default, or off), both running at the same time, each
   in its own lab (clusters.py's HbdGroupCluster and HeartbeatGroupCluster),
   with two CPU hogs (`python3 -c 'while 1: pass'`) in the hbd lab's client
   namespace. After both clusters have settled (heartbeat: HB_SETTLE after
   its start; the hogs started after that, then 1 s), for that time,
   counted from both nodes' logs:
   - "node dead" declarations per node: hbd's "node dead" lines,
     heartbeat's "is dead" lines;
   - group moves: the VIP's starts (hbd: "resource started ... IPaddr2";
     heartbeat: "Running /etc/ha.d/resource.d/IPaddr2 ... start");
   - for context, late-heartbeat warnings (hbd: "late heartbeat",
     heartbeat: "Late heartbeat"), which are not failovers, and how many of
     each hbd's threads run at SCHED_RR/FIFO (/proc/PID/task/*/sched).
   Every process (hogs, daemons, labs) is killed at the end.

BENCH_MORE_LOGS=DIR keeps the daemons' logs in DIR.
"""
import os, re, subprocess, sys, time

from .clusters import HB_SETTLE, HbdGroupCluster, HeartbeatGroupCluster
from .common import ANSI
from .summary import record

HOG_PY = "while 1: pass"


def hb_lines(c, n, since):
    return [l for _, l in c.logs[n].lines[since:]]


def falsefail_settings(args):
    """[(keepalive, deadtime)], seconds, hbd's ha.cf realtime (on/off)."""
    timings = []
    for t in os.environ.get("BENCH_FALSEFAIL_TIMINGS", "10ms/50ms 5ms/25ms").split():
        ka, dt = t.split("/")
        timings.append((ka, dt))
    seconds = int(os.environ.get("BENCH_FALSEFAIL_SECONDS", args.idle_seconds))
    realtime = os.environ.get("BENCH_FALSEFAIL_REALTIME", "on")
    if realtime not in ("on", "off"):
        raise SystemExit("bench: BENCH_FALSEFAIL_REALTIME: on or off")
    return timings, seconds, realtime


def rt_threads(pid):
    """(threads at SCHED_RR/FIFO, threads) of a process, from /proc."""
    rt = total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/sched") as f:
                m = re.search(r"(?m)^policy\s*:\s*(\d+)", f.read())
        except OSError:
            continue
        total += 1
        if m and int(m.group(1)) in (1, 2):
            rt += 1
    return rt, total


def falsefail(prefix, seconds, keepalive, deadtime, realtime, tag):
    hbd = hb = None
    hogs = []
    try:
        hbd = HbdGroupCluster(f"{prefix}ff{tag}h", keepalive, deadtime)
        if realtime == "off":
            for n in ("n1", "n2"):
                with open(os.path.join(hbd.dir, n, "ha.d", "ha.cf"), "a") as f:
                    f.write("realtime off\n")
        hb = HeartbeatGroupCluster(f"{prefix}ff{tag}b", keepalive, deadtime)
        started = time.time()
        hbd.start("n1"); hbd.start("n2")
        hb.start("n1"); hb.start("n2")
        hbd.wait("n1", "n2", "up"); hbd.wait("n2", "n1", "up")
        hbd.wait_owner("n1")
        hb.wait_active("n1", "n2")
        if hb.probe.first("n1", 0, 60) is None:
            raise SystemExit("bench: heartbeat: the VIP never answered from n1")
        if hbd.probe.first("n1", 0, 10) is None:
            raise SystemExit(f"bench: hbd: the VIP never answered from n1; logs in {hbd.dir}")
        time.sleep(max(0.0, started + HB_SETTLE - time.time()))
        for _ in range(2):
            hogs.append(subprocess.Popen(["ip", "netns", "exec", f"{hbd.name}-c",
                                          sys.executable, "-c", HOG_PY]))
        time.sleep(1)
        hbd_marks = {n: len(hbd.log(n)) for n in ("n1", "n2")}
        hb_marks = {n: hb.logs[n].mark() for n in ("n1", "n2")}
        rt = {n: rt_threads(hbd.procs[n].pid) for n in ("n1", "n2")}
        time.sleep(seconds)
        res = {"rt": rt}
        dead, moves, late = {}, 0, 0
        for n in ("n1", "n2"):
            new = ANSI.sub("", hbd.log(n)[hbd_marks[n]:]).splitlines()
            dead[n] = sum("node dead" in l for l in new)
            moves += sum("resource started" in l and "IPaddr2" in l for l in new)
            late += sum("late heartbeat" in l for l in new)
        res["hbd"] = (dead, moves, late)
        dead, moves, late = {}, 0, 0
        for n in ("n1", "n2"):
            new = hb_lines(hb, n, hb_marks[n])
            dead[n] = sum("is dead" in l for l in new)
            moves += sum("resource.d/IPaddr2" in l and l.rstrip().endswith("start") for l in new)
            late += sum("Late heartbeat" in l for l in new)
        res["heartbeat"] = (dead, moves, late)
        if os.environ.get("BENCH_MORE_LOGS"):
            d = os.path.join(os.environ["BENCH_MORE_LOGS"], f"falsefail-{keepalive}-{deadtime}")
            os.makedirs(d, exist_ok=True)
            for n in ("n1", "n2"):
                with open(os.path.join(d, f"hbd-{n}.log"), "w") as f:
                    f.write(hbd.log(n))
                with open(os.path.join(d, f"heartbeat-{n}.log"), "w") as f:
                    f.write("\n".join(l for _, l in hb.logs[n].lines) + "\n")
        return res
    finally:
        for h in hogs:
            if h.poll() is None:
                h.kill()
            h.wait()
        for c in (hbd, hb):
            if c is not None:
                c.close()


def falsefail_table(args, prefix):
    timings, seconds, realtime = falsefail_settings(args)
    runs = [((ka, dt), falsefail(prefix, seconds, ka, dt, realtime, str(i)))
            for i, (ka, dt) in enumerate(timings)]
    print(f"\nFalse failovers over {seconds} s per setting, with two CPU hogs "
          "(`while 1: pass`) in the hbd lab's client namespace; both clusters (two nodes, "
          "the VIP group on n1, auto_failback on) at the same time, each in its own lab; "
          f"hbd with `realtime {realtime}` (heartbeat: its default, on). Counted from both "
          "nodes' logs (\"node dead\" / heartbeat's \"is dead\"; group moves: the VIP's "
          "starts). BENCH_FALSEFAIL_TIMINGS, BENCH_FALSEFAIL_SECONDS, "
          "BENCH_FALSEFAIL_REALTIME change the settings.\n")
    print("| keepalive / deadtime | | heartbeat | hbd |")
    print("|---|---|---|---|")
    for (ka, dt), res in runs:
        (hd, hm, hl), (bd, bm, bl) = res["hbd"], res["heartbeat"]
        print(f"| {ka} / {dt} | false deaths per node (n1, n2) | {bd['n1']}, {bd['n2']} "
              f"| {hd['n1']}, {hd['n2']} |")
        print(f"| | group moves | {bm} | {hm} |")
        print(f"| | late-heartbeat warnings (not failovers) | {bl} | {hl} |")
        rt = ", ".join(f"{n} {v[0]} of {v[1]}" if v else f"{n} ?"
                       for n, v in res["rt"].items())
        print(f"| | hbd threads at SCHED_RR/FIFO | | {rt} |")
        if (ka, dt) == ("5ms", "25ms"):
            record(
                "falsefail", f"{hd['n1']}, {hd['n2']} per node",
                hd["n1"] == 0 and hd["n2"] == 0,
                f"{seconds} s, realtime {realtime}",
                f"heartbeat {bd['n1']}, {bd['n2']}")
    sys.stdout.flush()
