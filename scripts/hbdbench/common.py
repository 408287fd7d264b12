"""What every part of the benchmark shares: the paths of the binaries and
of scripts/lab, this run's lab prefix and cluster key, the lab (up, down,
its processes), the timing offsets that spread trials over a keepalive,
CPU and memory of processes, hbd's log lines, and the tables' number
formats."""
import datetime, os, re, signal, statistics, subprocess, sys, time

# scripts/hbdbench/common.py -> the repository
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
HBD = os.path.join(TARGET, "release/hbd")
HBCTL = os.path.join(TARGET, "release/hbctl")
HBD_DISK = os.path.join(TARGET, "release/hbd-disk")
LAB = os.path.join(REPO, "scripts/lab")
KEY = "auth 1\n1 sha256 " + os.urandom(32).hex() + "\n"
PREFIX = f"hbdb{os.getpid()}-"  # every lab of this run starts with it


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


# ---------------------------------------------------------------- the lab

def lab_up(name):
    sh(LAB, "up", name, "2", "1", "--owner", str(os.getpid()), stdout=subprocess.DEVNULL)


def lab_down(name):
    """Kills every process in the lab's namespaces, removes the namespaces."""
    subprocess.run([LAB, "down", name], capture_output=True)


def ns_pids(ns):
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


def kill_pids(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_offset(t, trials, keepalive_s):
    """Extra wait before trial t's kill: spreads kills over the keepalive phase."""
    return keepalive_s * (t + 0.5) / trials


def start_offset(t, trials, keepalive_s):
    """Wait between starting n1 and n2 in trial t: spreads the phase of the two
    nodes' timers (heartbeat checks for dead nodes on its own timer ticks, so
    two nodes started together would always see the same phase), in an order
    unrelated to kill_offset."""
    return keepalive_s * ((t * 7 + 3) % trials + 0.5) / trials


# ---------------------------------------------------------------- measuring

def task_cpu_ns(pids):
    """{(pid, tid): CPU ns so far} over every thread of the given processes."""
    out = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    out[(pid, tid)] = int(f.read().split()[0])
            except OSError:
                pass
    return out


def proc_mem_kib(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def footprint(pids, seconds):
    """CPU % of a core over `seconds`, RSS and PSS (KiB), summed over pids.
    Threads that exit during the window count up to their last sample only."""
    a, t0 = task_cpu_ns(pids), time.time()
    time.sleep(seconds)
    b, t1 = task_cpu_ns(pids), time.time()
    if set(a) != set(b):
        print(f"bench: note: threads changed during the idle window ({len(a)} -> {len(b)})",
              file=sys.stderr)
    used = sum(b.get(k, v) - v for k, v in a.items()) + sum(v for k, v in b.items() if k not in a)
    rss = pss = 0
    for pid in pids:
        r, p = proc_mem_kib(pid)
        rss, pss = rss + r, pss + p
    return {"cpu": 100.0 * used / 1e9 / (t1 - t0), "rss": rss, "pss": pss, "procs": len(pids)}


# ---------------------------------------------------------------- hbd's log

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def hbd_log_times(log, since):
    """[(UTC s, line)] of the log's lines stamped at or after `since`."""
    out = []
    for line in ANSI.sub("", log).splitlines():
        try:
            ts = line.split()[0].rstrip("Z")
            t = datetime.datetime.fromisoformat(ts).replace(tzinfo=datetime.timezone.utc).timestamp()
        except (IndexError, ValueError):
            continue
        if t >= since:
            out.append((t, line))
    return out


# ---------------------------------------------------------------- output

def ms(x):
    return f"{x * 1000:.0f} ms"


def ratio(a, b):
    return f"{a / b:.1f}×" if a is not None and b else "—"


def med_range(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—", "—", None
    m = statistics.median(xs)
    return ms(m), f"{ms(min(xs))} – {ms(max(xs))}", m
