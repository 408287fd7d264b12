"""False failovers under load, and the full stack's takeover split by
resource (scripts/bench --only falsefail, --only stack).

1. falsefail: a two-node hbd cluster and a two-node heartbeat 3.0.6 cluster,
   each with the VIP group (`n1 IPaddr2::192.0.2.50/24/eth0:0`, auto_failback
   on) at each of BENCH_FALSEFAIL_TIMINGS (default "10ms/50ms 5ms/25ms"), for
   BENCH_FALSEFAIL_SECONDS each (default --idle-seconds; issue 15's row is
   5 min at 5ms/25ms), hbd's ha.cf with `realtime BENCH_FALSEFAIL_REALTIME`
   (on, the default, or off), both running at the same time, each
   in its own lab (scripts/bench's HbdGroupCluster and HeartbeatGroupCluster),
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
2. stack: scenario 1's full stack (scripts/demo: replicated disk, IPaddr2
   VIP with its ARP probe, drbddisk, Filesystem ext4, mysqld, the app
   tests/fixtures/app.py via resources/daemon, mon; keepalive 200ms, deadtime 2 s),
   hbd only. Each trial runs `scripts/demo` whole (it crashes the holder n1:
   every process of its namespace SIGKILLed, then its link cut) and reads
   n2's log /tmp/hbd-demo/n2/hbd.log afterwards: "node dead", each
   "resource started group=... resource=X ms=N" (N: that resource's start
   alone), and the group's "to=started". t0 (the kill) is when the demo's
   "==> Crash" line reaches this script (the demo then runs one `hbctl disk`
   call before its kill: t0 is early by a few ms at most); the client's
   figure is the demo's own "acknowledged again X s after the crash".

BENCH_MORE_LOGS=DIR keeps the daemons' logs (falsefail) and the demo's
output and logs (stack) in DIR.
"""
import os, re, shutil, statistics, subprocess, sys, time

HOG_PY = "while 1: pass"
DEMO_WORK = "/tmp/hbd-demo"


def keep_logs(sub, files):
    d = os.environ.get("BENCH_MORE_LOGS")
    if not d:
        return
    os.makedirs(os.path.join(d, sub), exist_ok=True)
    for name, path in files:
        try:
            shutil.copy(path, os.path.join(d, sub, name))
        except OSError:
            pass


# ---------------------------------------------------------------- falsefail

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


def falsefail(bench, prefix, seconds, keepalive, deadtime, realtime, tag):
    hbd = hb = None
    hogs = []
    try:
        hbd = bench.HbdGroupCluster(f"{prefix}ff{tag}h", keepalive, deadtime)
        if realtime == "off":
            for n in ("n1", "n2"):
                with open(os.path.join(hbd.dir, n, "ha.d", "ha.cf"), "a") as f:
                    f.write("realtime off\n")
        hb = bench.HeartbeatGroupCluster(f"{prefix}ff{tag}b", keepalive, deadtime)
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
        time.sleep(max(0.0, started + bench.HB_SETTLE - time.time()))
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
            new = bench.ANSI.sub("", hbd.log(n)[hbd_marks[n]:]).splitlines()
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


def falsefail_table(args, prefix, bench):
    timings, seconds, realtime = falsefail_settings(args)
    runs = [((ka, dt), falsefail(bench, prefix, seconds, ka, dt, realtime, str(i)))
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
            import bench_summary
            bench_summary.record(
                "falsefail", f"{hd['n1']}, {hd['n2']} per node",
                hd["n1"] == 0 and hd["n2"] == 0,
                f"{seconds} s, realtime {realtime}",
                f"heartbeat {bd['n1']}, {bd['n2']}")
    sys.stdout.flush()


# ---------------------------------------------------------------- stack

def stack_trial(bench, t):
    env = {**os.environ, "NO_COLOR": "1"}
    out_lines = []
    t0 = None
    p = subprocess.Popen([os.path.join(bench.REPO, "scripts/demo")], cwd=bench.REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        for line in p.stdout:
            now = time.time()
            out_lines.append(line)
            if t0 is None and "Crash:" in line:
                t0 = now
        rc = p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = "".join(out_lines)
    d = os.environ.get("BENCH_MORE_LOGS")
    if d:
        os.makedirs(os.path.join(d, f"stack{t}"), exist_ok=True)
        with open(os.path.join(d, f"stack{t}", "demo.out"), "w") as f:
            f.write(text)
    keep_logs(f"stack{t}", [(f"{n}-hbd.log", f"{DEMO_WORK}/{n}/hbd.log") for n in ("n1", "n2")])
    if rc != 0 or t0 is None:
        sys.stderr.write(text[-3000:])
        raise SystemExit(f"bench: scripts/demo failed (exit {rc})")
    m = re.search(r"acknowledged again (\d+\.\d+) s after the crash", bench.ANSI.sub("", text))
    client = float(m.group(1)) if m else None
    with open(f"{DEMO_WORK}/n2/hbd.log") as f:
        lines = bench.hbd_log_times(f.read(), t0 - 0.001)
    dead = next((x for x, l in lines if "node dead" in l), None)
    res = []  # [(resource, ms as logged, its end - t0)]
    started = None
    for x, l in lines:
        if dead is None or x < dead:
            continue
        if "resource started" in l:
            r = re.search(r"resource=(\S+)", l)
            ms = re.search(r"\bms=(\d+)", l)
            res.append((r.group(1) if r else "?", int(ms.group(1)) if ms else None, x - t0))
        if re.search(r"\bgroup\b.*to=\"?started", l) and started is None:
            started = x - t0
    return {"dead": dead - t0 if dead else None, "res": res, "started": started,
            "client": client}


def stack_table(args, bench):
    trials = args.stack_trials
    runs = []
    for t in range(trials):
        runs.append(stack_trial(bench, t))
        if os.environ.get("BENCH_MORE_RAW"):
            print(runs[-1], file=sys.stderr, flush=True)
    print(f"\nScenario 1's full stack (scripts/demo: keepalive 200ms, deadtime 2 s), hbd only: "
          f"n1 crashed, n2 takes over; {trials} trial{'s' if trials != 1 else ''} "
          "(each a whole `scripts/demo`); from n2's log; times from the kill (median, worst "
          "over the trials):\n")

    def mw(xs):
        xs = [x for x in xs if x is not None]
        if not xs:
            return "–"
        if len(xs) == 1:
            return f"{xs[0] * 1000:.0f} ms"
        return f"{statistics.median(xs) * 1000:.0f} ms (worst {max(xs) * 1000:.0f})"
    print("| step | from the kill | the step alone (hbd's ms=) |")
    print("|---|---|---|")
    print(f"| node dead | {mw([r['dead'] for r in runs])} | |")
    names = [n for n, _, _ in runs[0]["res"]]

    def short(name):
        kind = name.split("::")[0]
        return "daemon (tests/fixtures/app.py)" if kind == "daemon" and "app.py" in name else kind
    for i, name in enumerate(names):
        ends = [r["res"][i][2] for r in runs if len(r["res"]) > i and r["res"][i][0] == name]
        own = [r["res"][i][1] / 1000 for r in runs
               if len(r["res"]) > i and r["res"][i][0] == name and r["res"][i][1] is not None]
        print(f"| started: {short(name)} | {mw(ends)} | {mw(own)} |")
    print(f"| group started | {mw([r['started'] for r in runs])} | |")
    print(f"| the client's writes acknowledged again (the demo's figure) | "
          f"{mw([r['client'] for r in runs])} | |")
    served = [r["client"] for r in runs if r["client"] is not None]
    if served:
        import bench_summary
        m = statistics.median(served)
        bench_summary.record("stack", mw(served), m <= 2.5,
                             f"node dead {mw([r['dead'] for r in runs])}; {trials} trials")
    sys.stdout.flush()


def more_tables(args, prefix, parts, bench):
    """bench: the scripts/bench module (clusters, lab, log helpers)."""
    if "falsefail" in parts:
        falsefail_table(args, prefix, bench)
    if "stack" in parts:
        stack_table(args, bench)
