"""VRRP mode: hbd vs keepalived 2.2.7 (scripts/bench --only vrrp).

Same topology and settings for both programs, in one run: the netns lab with
two nodes and a client (scripts/lab: n1 = 192.0.2.11, n2 = .12, client .100,
one bridge), one vrrp_instance on eth0 with the VIP 192.0.2.50/24; n1 has
`state MASTER` and priority 150, n2 `state BACKUP` and priority 100, no
authentication. hbd runs in VRRP mode (a configuration directory holding
only keepalived.conf); keepalived runs VRRP only (`-P`) in the foreground
with its own pid files. Both nodes run the same program.

1. Takeover after a crash of the MASTER, at VRRPv2 advert_int 1, VRRPv3
   advert_int 0.1 and 0.01. A crash is SIGSTOP then SIGKILL of every process
   in n1's namespace (the daemon's processes and n1's echo server; stopped
   first so that keepalived's VRRP child cannot react to its parent's death
   with a priority 0 advert; a run that sees one from n1 fails), then the VIP,
   which both programs leave configured, is removed from n1's namespace
   (`ip -n NS addr del`), as a dead machine would not answer for it. t0 is
   taken right before the kill. Measured:
   - kill → the backup's first advert: an AF_PACKET socket in the client
     namespace stamps every VRRP datagram whose sender differs from the
     previous one's on arrival;
   - kill → the VIP answers the client from n2: each node runs a UDP echo
     server bound to the VIP (IP_FREEBIND) answering "NODE SEQ", the client
     sends to the VIP every 10 ms and stamps the answers (the resolution is
     the 10 ms probe interval).
   One lab per program and setting; between trials n1 is restarted (it
   preempts) and the next kill waits at least max(1 s, 3 adverts) after n1
   answers again, plus (t + 0.5)/N advert intervals, spreading the kill over
   the advert phase.
2. Flaps at VRRPv3 advert_int 0.01 over 60 s with the
   machine busy: two CPU hogs (`while 1: pass`) in a client namespace; both
   programs' pairs run at the same time, in two labs, under the same hogs.
   Counted: "Entering MASTER STATE" / "Entering BACKUP STATE" lines of both
   nodes' logs (both programs log keepalived's wording) during the window.
3. Idle footprint: CPU (% of one core, from /proc/PID/task/*/schedstat) and
   RSS/PSS, summed over every process of the daemon on the node, MASTER (n1)
   and BACKUP (n2), at v2 advert 1 and v3 advert 0.01, over --idle-seconds;
   the four pairs run at the same time, each in its own lab.

Environment: BENCH_VRRP_RAW=1 prints every trial's times to stderr;
BENCH_VRRP_LOGS=DIR keeps the daemons' logs in DIR.
"""
import os, re, shutil, signal, statistics, subprocess, sys, tempfile, threading, time

from .clusters import ECHO_PY, PROBE_PY
from .common import HBD, lab_down, lab_up, proc_mem_kib, task_cpu_ns
from .summary import record

VIP = "192.0.2.50"
ECHO_PORT = 7777
PROBE_INTERVAL = 0.01
KEEPALIVED = "keepalived"
# (label, vrrp_version, advert_int as written, advert_int s, issue's reference
# keepalived median kill → backup's first advert)
SETTINGS = (("v2, advert_int 1", 2, "1", 1.0, 3.13),
            ("v3, advert_int 0.1", 3, "0.1", 0.1, 0.33),
            ("v3, advert_int 0.01", 3, "0.01", 0.01, 0.031))
NODE_OF = {"192.0.2.11": "n1", "192.0.2.12": "n2"}

# Prints "ARRIVAL SRC PRIORITY" for each VRRP datagram on eth0 whose sender
# differs from the previous datagram's (so a steady MASTER prints once).
CAPTURE_PY = r"""
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind(("eth0", 0x0800))
last = None
while True:
    d = s.recv(2048)
    t = time.time()
    if len(d) < 28 or d[9] != 112:
        continue
    src = socket.inet_ntoa(d[12:16])
    prio = d[(d[0] & 15) * 4 + 2]
    if src != last or prio == 0:
        sys.stdout.write(f"{t:.6f} {src} {prio}\n")
        sys.stdout.flush()
        last = src
"""

HOG_PY = "while 1: pass"


def conf(version, advert, priority, state):
    g = "    vrrp_version 3\n" if version == 3 else ""
    return (f"global_defs {{\n    router_id bench_{priority}\n{g}}}\n"
            f"vrrp_instance VI_B {{\n    state {state}\n    interface eth0\n"
            f"    virtual_router_id 60\n    priority {priority}\n    advert_int {advert}\n"
            f"    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n")


class Lines:
    """A process in a lab namespace whose stdout lines a thread collects as
    (first field as float, rest of the fields)."""

    def __init__(self, ns, argv):
        self.items, self.cond = [], threading.Condition()
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns] + argv,
                                     stdout=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for line in self.proc.stdout:
            f = line.split()
            if len(f) >= 2:
                with self.cond:
                    self.items.append((float(f[0]), f[1:]))
                    self.cond.notify_all()

    def first(self, pred, since, timeout):
        end = time.time() + timeout
        with self.cond:
            while True:
                for t, f in self.items:
                    if t >= since and pred(f):
                        return t
                if time.time() >= end:
                    return None
                self.cond.wait(max(0.0, min(0.5, end - time.time())))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Pair:
    """n1 (MASTER, 150) and n2 (BACKUP, 100) running `prog` in a fresh lab,
    with echo servers on both nodes, the client's probe and capture."""

    def __init__(self, name, prog, version, advert, probe=True):
        self.name, self.prog = name, prog
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        self.procs, self.readers = {}, {}
        self.up = False
        try:
            lab_up(name)
            self.up = True
            for n, prio, state in (("n1", 150, "MASTER"), ("n2", 100, "BACKUP")):
                d = os.path.join(self.dir, n, "conf")
                os.makedirs(d)
                with open(os.path.join(d, "keepalived.conf"), "w") as f:
                    f.write(conf(version, advert, prio, state))
            if probe:
                self.readers["probe"] = Lines(f"{name}-c", [
                    sys.executable, "-c", PROBE_PY, VIP, str(ECHO_PORT), str(PROBE_INTERVAL)])
                self.readers["capture"] = Lines(f"{name}-c", [sys.executable, "-c", CAPTURE_PY])
        except BaseException:
            self.close()
            raise

    def ns(self, n):
        return f"{self.name}-{n}"

    def logpath(self, n):
        return os.path.join(self.dir, n, "log")

    def start(self, n, echo=True):
        base = os.path.join(self.dir, n)
        log = open(self.logpath(n), "a")
        if self.prog == "hbd":
            argv = [HBD, "--config", f"{base}/conf", "--node", n, "--run-dir",
                    f"{base}/run", "--state-dir", f"{base}/state"]
        else:
            argv = [KEEPALIVED, "-n", "-l", "-D", "-P", "-f", f"{base}/conf/keepalived.conf",
                    "-p", f"{base}/keepalived.pid", "-r", f"{base}/vrrp.pid",
                    "-c", f"{base}/checkers.pid", "-b", f"{base}/bfd.pid"]
        self.procs[n] = subprocess.Popen(["ip", "netns", "exec", self.ns(n)] + argv,
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         env={**os.environ, "NO_COLOR": "1"})
        log.close()
        if echo:
            self.procs["echo-" + n] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(n), sys.executable, "-c", ECHO_PY, n, VIP,
                 str(ECHO_PORT)], stdin=subprocess.DEVNULL)

    def daemon_pids(self, n):
        """Every process of the daemon in n's namespace (hbd: 1; keepalived:
        the parent and its VRRP child)."""
        out = []
        r = subprocess.run(["ip", "netns", "pids", self.ns(n)], capture_output=True, text=True)
        for p in r.stdout.split():
            try:
                with open(f"/proc/{p}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm in ("hbd", "keepalived"):
                out.append(int(p))
        return out

    def crash(self, n):
        """SIGKILL of every process in n's namespace, then its VIP removed.
        Returns t0, taken right before the kill."""
        r = subprocess.run(["ip", "netns", "pids", self.ns(n)], capture_output=True, text=True)
        pids = [int(p) for p in r.stdout.split()]
        t0 = time.time()
        # SIGSTOP first: keepalived's VRRP child would otherwise see its
        # parent die (PR_SET_PDEATHSIG) before its own SIGKILL and leave
        # gracefully with a priority 0 advert, which is not a crash.
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
        subprocess.run(["ip", "-n", self.ns(n), "addr", "del", f"{VIP}/24", "dev", "eth0"],
                       capture_output=True)
        for k in (n, "echo-" + n):
            p = self.procs.pop(k, None)
            if p:
                p.wait()
        for f in ("keepalived.pid", "vrrp.pid", "checkers.pid", "bfd.pid"):
            try:
                os.unlink(os.path.join(self.dir, n, f))
            except OSError:
                pass
        return t0

    def has_vip(self, n):
        r = subprocess.run(["ip", "-n", self.ns(n), "-4", "-o", "addr", "show", "dev", "eth0"],
                           capture_output=True, text=True)
        return f" {VIP}/" in r.stdout

    def log(self, n):
        try:
            with open(self.logpath(n), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        for p in list(self.procs.values()):
            if p.poll() is None:
                p.kill()
            p.wait()
        for r in self.readers.values():
            r.close()
        if self.up:
            lab_down(self.name)
        keep = os.environ.get("BENCH_VRRP_LOGS")  # a directory: keep the daemons' logs there
        if keep:
            os.makedirs(keep, exist_ok=True)
            for n in ("n1", "n2"):
                if os.path.exists(self.logpath(n)):
                    shutil.copy(self.logpath(n), os.path.join(keep, f"{self.name}-{n}.log"))
        shutil.rmtree(self.dir, ignore_errors=True)


def is_node(n):
    return lambda f: f[0] == n


def from_node(n):
    return lambda f: NODE_OF.get(f[0]) == n


def fail(pair, what):
    raise SystemExit(f"bench: {pair.prog}: {what}\n--- n1 ---\n{pair.log('n1')[-3000:]}\n"
                     f"--- n2 ---\n{pair.log('n2')[-3000:]}")


def takeover(prog, version, advert, advert_s, trials, name):
    """[(kill → n2's first advert, kill → VIP answers from n2)] in seconds."""
    out = []
    p = Pair(name, prog, version, advert)
    try:
        p.start("n2")
        time.sleep(0.2)
        for t in range(trials):
            ts = time.time()
            p.start("n1")
            probe, cap = p.readers["probe"], p.readers["capture"]
            if probe.first(is_node("n1"), ts, 30) is None:
                fail(p, "the VIP never answered from n1")
            if cap.first(from_node("n1"), ts, 30) is None:
                fail(p, "no advert from n1")
            time.sleep(max(1.0, 3 * advert_s) + 0.5 + advert_s * (t + 0.5) / trials)
            if p.has_vip("n2"):
                fail(p, "n2 holds the VIP while n1 is MASTER")
            t0 = p.crash("n1")
            ta = cap.first(from_node("n2"), t0, 30)
            tv = probe.first(is_node("n2"), t0, 30)
            if ta is None or tv is None:
                fail(p, "n2 never took over")
            if cap.first(lambda f: f[0] == "192.0.2.11" and f[1] == "0", t0, 0) is not None:
                fail(p, "n1 sent a priority 0 advert after the kill: not a crash")
            out.append((ta - t0, tv - t0))
            time.sleep(0.1)
    finally:
        p.close()
    return out


def count_transitions(log, since):
    text = log[since:]
    return (len(re.findall(r"Entering MASTER STATE", text)),
            len(re.findall(r"Entering BACKUP STATE", text)))


def flaps(prefix, seconds):
    pairs, hogs = {}, []
    try:
        for prog in ("keepalived", "hbd"):
            pairs[prog] = Pair(f"{prefix}-f{prog[0]}", prog, 3, "0.01")
            pairs[prog].start("n1")
            pairs[prog].start("n2")
        for prog, p in pairs.items():
            if p.readers["probe"].first(is_node("n1"), 0, 30) is None:
                fail(p, "the VIP never answered from n1")
        time.sleep(3)
        for _ in range(2):
            hogs.append(subprocess.Popen(["ip", "netns", "exec", f"{pairs['hbd'].name}-c",
                                          sys.executable, "-c", HOG_PY]))
        time.sleep(1)
        marks = {(prog, n): len(p.log(n)) for prog, p in pairs.items() for n in ("n1", "n2")}
        t0 = time.time()
        time.sleep(seconds)
        t1 = time.time()
        res = {}
        for prog, p in pairs.items():
            r = {}
            for n in ("n1", "n2"):
                r[n] = count_transitions(p.log(n), marks[(prog, n)])
            with p.readers["probe"].cond:
                items = list(p.readers["probe"].items)
            r["from_n2"] = sum(1 for t, f in items if t0 <= t < t1 and f[0] == "n2")
            r["n2_vip"] = p.has_vip("n2")
            res[prog] = r
        return res
    finally:
        for h in hogs:
            if h.poll() is None:
                h.kill()
            h.wait()
        for p in pairs.values():
            p.close()


def idle(args, prefix):
    pairs = {}
    try:
        for label, version, advert, _, _ in (SETTINGS[0], SETTINGS[2]):
            for prog in ("keepalived", "hbd"):
                p = Pair(f"{prefix}-i{prog[0]}{version}{len(pairs)}", prog, version, advert,
                         probe=False)
                pairs[(label, prog)] = p
                p.start("n1", echo=False)
                p.start("n2", echo=False)
        end = time.time() + 30
        for p in pairs.values():
            while not p.has_vip("n1") and time.time() < end:
                time.sleep(0.1)
            if not p.has_vip("n1"):
                fail(p, "n1 never took the VIP")
        time.sleep(4)
        pids = {(k, n): p.daemon_pids(n) for k, p in pairs.items() for n in ("n1", "n2")}
        a, ta = {k: task_cpu_ns(v) for k, v in pids.items()}, time.time()
        time.sleep(args.idle_seconds)
        b, tb = {k: task_cpu_ns(v) for k, v in pids.items()}, time.time()
        out = {}
        for k, v in pids.items():
            used = sum(b[k].get(x, y) - y for x, y in a[k].items()) + sum(
                y for x, y in b[k].items() if x not in a[k])
            rss = pss = 0
            for pid in v:
                r, s = proc_mem_kib(pid)
                rss, pss = rss + r, pss + s
            out[k] = {"cpu": 100.0 * used / 1e9 / (tb - ta), "rss": rss, "pss": pss,
                      "procs": len(v)}
        return out
    finally:
        for p in pairs.values():
            p.close()


def fmt(x):
    return f"{x * 1000:.0f} ms" if x >= 0.1 else f"{x * 1000:.1f} ms"


def ratio(a, b):
    return f"{a / b:.2f}×" if b else "—"


def keepalived_version():
    r = subprocess.run([KEEPALIVED, "--version"], capture_output=True, text=True)
    return (r.stdout + r.stderr).splitlines()[0].strip() if (r.stdout + r.stderr) else "?"


def vrrp_tables(args, prefix):
    if shutil.which(KEEPALIVED) is None:
        subprocess.run(["sh", "-c", "apt-get install -y -qq keepalived"], check=True,
                       stdout=sys.stderr, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    flap_s = 60
    load = os.getloadavg()
    print(f"### VRRP mode: hbd vs {keepalived_version()}\n")
    print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("Takeover after a crash of the MASTER (SIGSTOP + SIGKILL of every process in n1's "
          "namespace, then its VIP removed), median (worst); ratio = hbd / keepalived:\n")
    print("| setting | program | kill → backup's first advert | worst | ratio "
          "| kill → VIP answers the client | worst | ratio | issue's reference (keepalived, "
          "advert) | trials |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for i, (label, version, advert, advert_s, ref) in enumerate(SETTINGS):
        med = {}
        for prog in ("keepalived", "hbd"):
            r = takeover(prog, version, advert, advert_s, args.trials,
                         f"{prefix}-t{i}{prog[0]}")
            adv = [x[0] for x in r]
            ans = [x[1] for x in r]
            med[prog] = (statistics.median(adv), statistics.median(ans))
            row = [label, prog, fmt(med[prog][0]), fmt(max(adv)), "", fmt(med[prog][1]),
                   fmt(max(ans)), "", fmt(ref), str(len(r))]
            if prog == "hbd":
                row[4] = ratio(med["hbd"][0], med["keepalived"][0])
                row[7] = ratio(med["hbd"][1], med["keepalived"][1])
            if os.environ.get("BENCH_VRRP_RAW"):
                print("raw", prog, label, [(round(a, 4), round(b, 4)) for a, b in r],
                      file=sys.stderr)
            print("| " + " | ".join(row) + " |", flush=True)

    print(f"\nFlaps over {flap_s} s at v3 advert_int 0.01 with two CPU hogs (`while 1: pass`) "
          "in a client namespace; both pairs at the same time. Transitions counted from "
          "the logs (\"Entering MASTER/BACKUP STATE\"); answers from n2: the client's 10 ms "
          "probes of the VIP that n2 answered:\n")
    f = flaps(prefix, flap_s)
    print("| program | n1 (MASTER) → MASTER / → BACKUP | n2 (BACKUP) → MASTER / → BACKUP "
          "| answers from n2 | n2 holds the VIP at the end |")
    print("|---|---|---|---|---|")
    for prog in ("keepalived", "hbd"):
        r = f[prog]
        print(f"| {prog} | {r['n1'][0]} / {r['n1'][1]} | {r['n2'][0]} / {r['n2'][1]} | "
              f"{r['from_n2']} | {'yes' if r['n2_vip'] else 'no'} |", flush=True)

    print(f"\nIdle footprint over {args.idle_seconds} s, summed over the daemon's processes "
          "(CPU % of one core; all four pairs at the same time):\n")
    res = idle(args, prefix)
    print("| setting | node | keepalived CPU | hbd CPU | hbd / keepalived CPU "
          "| keepalived RSS | hbd RSS | keepalived PSS | hbd PSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label in (SETTINGS[0][0], SETTINGS[2][0]):
        for n, role in (("n1", "MASTER"), ("n2", "BACKUP")):
            k, h = res[((label, "keepalived"), n)], res[((label, "hbd"), n)]
            print(f"| {label} | {n} ({role}) | {k['cpu']:.3f} % ({k['procs']} procs) | "
                  f"{h['cpu']:.3f} % ({h['procs']} proc) | {ratio(h['cpu'], k['cpu'])} | "
                  f"{k['rss'] / 1024:.1f} MiB | {h['rss'] / 1024:.1f} MiB | "
                  f"{k['pss'] / 1024:.1f} MiB | {h['pss'] / 1024:.1f} MiB |", flush=True)
    k, h = res[((SETTINGS[0][0], "keepalived"), "n1")], res[((SETTINGS[0][0], "hbd"), "n1")]
    record("vrrp_idle", ratio(h["cpu"], k["cpu"]),
           k["cpu"] > 0 and h["cpu"] <= k["cpu"],
           f"{h['cpu']:.3f} % ÷ {k['cpu']:.3f} % over {args.idle_seconds} s "
           f"({SETTINGS[0][0]}, MASTER)",
           f"keepalived {k['cpu']:.3f} %")
    print()
