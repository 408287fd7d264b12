"""Scenario 1's full-stack takeover, split by resource (scripts/bench
--only stack).

Scenario 1's full stack (scripts/demo: replicated disk, IPaddr2 VIP with its
ARP probe, drbddisk, Filesystem ext4, mysqld, the app tests/fixtures/app.py
via resources/daemon, mon; keepalive 200ms, deadtime 2 s), hbd only. Each
trial runs `scripts/demo` whole (it crashes the holder n1: every process of
its namespace SIGKILLed, then its link cut) and reads n2's log
/tmp/hbd-demo/n2/hbd.log afterwards: "node dead", each "resource started
group=... resource=X ms=N" (N: that resource's start alone), and the
group's "to=started". t0 (the kill) is when the demo's "==> Crash" line
reaches this script (the demo then runs one `hbctl disk` call before its
kill: t0 is early by a few ms at most); the client's figure is the demo's
own "acknowledged again X s after the crash".

BENCH_MORE_LOGS=DIR keeps the demo's output and logs in DIR.
"""
import os, re, shutil, statistics, subprocess, sys, time

from .common import ANSI, REPO, hbd_log_times
from .summary import record

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


# ---------------------------------------------------------------- stack

def stack_trial(t):
    env = {**os.environ, "NO_COLOR": "1"}
    out_lines = []
    t0 = None
    p = subprocess.Popen([os.path.join(REPO, "scripts/demo")], cwd=REPO,
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
    m = re.search(r"acknowledged again (\d+\.\d+) s after the crash", ANSI.sub("", text))
    client = float(m.group(1)) if m else None
    with open(f"{DEMO_WORK}/n2/hbd.log") as f:
        lines = hbd_log_times(f.read(), t0 - 0.001)
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


def stack_table(args):
    trials = args.stack_trials
    runs = []
    for t in range(trials):
        runs.append(stack_trial(t))
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
        m = statistics.median(served)
        record("stack", mw(served), m <= 2.5,
               f"node dead {mw([r['dead'] for r in runs])}; {trials} trials")
    sys.stdout.flush()
