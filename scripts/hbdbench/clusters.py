"""The two programs' two-node clusters in the netns lab: hbd's and
heartbeat 3.0.6's (heartbeat installed with apt-get when missing), and
both with the VIP group, echo servers on the nodes and the client's probe
(see the failover part in cli.py's description)."""
import os, re, shutil, subprocess, sys, tempfile, threading, time

from .common import HBCTL, HBD, KEY, kill_pids, lab_down, lab_up, ns_pids, sh


# ---------------------------------------------------------------- hbd

class HbdCluster:
    def __init__(self, name, keepalive, deadtime):
        self.name, self.dir = name, tempfile.mkdtemp(prefix=name + "-")
        self.procs = {}
        try:
            self._setup(keepalive, deadtime)
        except BaseException:
            self.close()
            raise

    def _setup(self, keepalive, deadtime):
        lab_up(self.name)
        for n in ("n1", "n2"):
            d = os.path.join(self.dir, n, "ha.d")
            os.makedirs(d)
            with open(os.path.join(d, "ha.cf"), "w") as f:
                f.write(f"keepalive {keepalive}\ndeadtime {deadtime}\ninitdead {deadtime}\n"
                        "bcast eth0\nnode n1 n2\n")
            with open(os.path.join(d, "authkeys"), "w") as f:
                f.write(KEY)
            os.chmod(os.path.join(d, "authkeys"), 0o600)

    def start(self, n):
        base = os.path.join(self.dir, n)
        log = open(os.path.join(base, "hbd.log"), "a")
        self.procs[n] = subprocess.Popen(
            ["ip", "netns", "exec", f"{self.name}-{n}", HBD, "--config", f"{base}/ha.d",
             "--node", n, "--run-dir", f"{base}/run", "--state-dir", f"{base}/state"],
            stdout=log, stderr=log, env={**os.environ, "NO_COLOR": "1"})

    def state(self, observer, node):
        r = subprocess.run([HBCTL, "--run-dir", f"{self.dir}/{observer}/run", "nodestatus", node],
                           capture_output=True, text=True)
        return r.stdout.strip()

    def wait(self, observer, node, want, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if self.state(observer, node) == want:
                return
            time.sleep(0.02)
        raise SystemExit(f"bench: hbd {observer} never saw {node} {want}; logs in {self.dir}")

    def log(self, n):
        with open(os.path.join(self.dir, n, "hbd.log")) as f:
            return f.read()

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        lab_down(self.name)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- heartbeat

HB_DAEMON = "/usr/libexec/heartbeat/heartbeat"
HB_SETTLE = 10.0  # a node started < ~5 s ago advertises deadtime + 2 s
HB_KEY = KEY.replace("sha256", "sha1")  # heartbeat's strongest: crc, md5, sha1

# One node: its own UTS and mount namespace inside the node's network
# namespace, with per-node copies bind-mounted over heartbeat's fixed paths.
# The daemon forks into the background; the mounts vanish with its processes.
HB_NODE_SH = r"""
set -e
hostname "$1"
mount --bind "$2/ha.d" /etc/ha.d
mount --bind "$2/lib" /var/lib/heartbeat
mount --bind "$2/run" /run
mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd
chown -R hacluster:haclient /run/heartbeat
chmod 0750 /run/heartbeat /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd
exec "$3"
"""


class LogPipe:
    """A FIFO used as heartbeat's logfile; a thread reads it and stamps every
    line with the time it arrived. Opened read-write, so it never sees EOF and
    heartbeat's open() never blocks."""

    def __init__(self, path):
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDWR)
        self.lines, self.cond, self.stop = [], threading.Condition(), False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        buf = b""
        while not self.stop:
            data = os.read(self.fd, 65536)
            now = time.time()
            buf += data
            *full, buf = buf.split(b"\n")
            with self.cond:
                self.lines += [(now, l.decode(errors="replace")) for l in full]
                self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait_for(self, text, since=0, timeout=30):
        """Arrival time of the first line containing text, from line `since`."""
        end = time.time() + timeout
        with self.cond:
            while True:
                for t, line in self.lines[since:]:
                    if text in line:
                        return t
                if time.time() >= end:
                    return None
                self.cond.wait(max(0.0, end - time.time()))

    def close(self):
        self.stop = True
        os.write(self.fd, b"\n")  # wakes the reader, which then exits
        self.thread.join(2)
        os.close(self.fd)


class HeartbeatCluster:
    def __init__(self, name, keepalive, deadtime):
        self.name, self.dir = name, tempfile.mkdtemp(prefix=name + "-")
        self.logs = {}
        try:
            self._setup(keepalive, deadtime)
        except BaseException:
            self.close()
            raise

    def _setup(self, keepalive, deadtime):
        lab_up(self.name)
        for n in ("n1", "n2"):
            d = os.path.join(self.dir, n)
            os.makedirs(os.path.join(d, "run"))
            sh("cp", "-a", "/etc/ha.d", f"{d}/ha.d")
            sh("cp", "-a", "/var/lib/heartbeat", f"{d}/lib")
            with open(f"{d}/ha.d/ha.cf", "w") as f:
                f.write(f"logfile {d}/log\ndebugfile {d}/debug\nlogfacility none\nuse_logd no\n"
                        f"keepalive {keepalive}\ndeadtime {deadtime}\ninitdead 5\nbcast eth0\n"
                        "auto_failback on\nnode n1\nnode n2\ncrm no\n")
            open(f"{d}/ha.d/haresources", "w").close()  # no resources, but it must exist
            with open(f"{d}/ha.d/authkeys", "w") as f:
                f.write(HB_KEY)
            os.chmod(f"{d}/ha.d/authkeys", 0o600)
            self.logs[n] = LogPipe(f"{d}/log")

    def start(self, n):
        r = subprocess.run(["ip", "netns", "exec", f"{self.name}-{n}", "unshare", "--uts",
                            "--mount", "--propagation", "private", "sh", "-c", HB_NODE_SH,
                            "sh", n, os.path.join(self.dir, n), HB_DAEMON],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            time.sleep(0.2)
            errors = [l for _, l in self.logs[n].lines if "ERROR" in l]
            raise SystemExit(f"bench: heartbeat on {n} did not start:\n{r.stdout}"
                             + "\n".join(errors))

    def wait_active(self, observer, node, timeout=30):
        t = self.logs[observer].wait_for(f"Status update for node {node}: status active",
                                         timeout=timeout)
        if t is None:
            raise SystemExit(f"bench: heartbeat {observer} never saw {node} active")
        return t

    def pids(self, n):
        return ns_pids(f"{self.name}-{n}")

    def close(self):
        # SIGKILL, not lab down's SIGTERM first: on SIGTERM heartbeat forks
        # resource give-up children, which a single scan can miss. Repeat
        # until a scan finds nothing, in case a process was forking.
        for _ in range(10):
            pids = self.pids("n1") + self.pids("n2")
            if not pids:
                break
            kill_pids(pids)
            time.sleep(0.05)
        lab_down(self.name)
        for log in self.logs.values():
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def ensure_heartbeat():
    if os.access(HB_DAEMON, os.X_OK):
        return
    print("bench: installing heartbeat with apt-get", file=sys.stderr, flush=True)
    sh("sh", "-c", "apt-get update -qq && apt-get install -y -qq heartbeat",
       stdout=sys.stderr, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not os.access(HB_DAEMON, os.X_OK):
        raise SystemExit(f"bench: {HB_DAEMON} missing after installing heartbeat")


def heartbeat_version():
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "heartbeat"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "(version unknown)"


# ---------------------------------------------------------------- the VIP group

VIP = "192.0.2.50"  # never .100: that is the lab's client
ECHO_PORT = 7777
PROBE_INTERVAL = 0.01

# Answers every datagram with "NODE SEQ", from the VIP (IP_FREEBIND: bound
# to it before the node holds it), so only the VIP's holder answers.
ECHO_PY = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 15, 1)  # IP_FREEBIND
s.bind((sys.argv[2], int(sys.argv[3])))
me = sys.argv[1].encode()
while True:
    d, a = s.recvfrom(64)
    try:
        s.sendto(me + b" " + d, a)
    except OSError:  # ENETUNREACH: the VIP went away since the datagram came
        pass
"""

# Sends its sequence number to the VIP every interval; prints
# "RECV_TIME NODE SEQ" per answer (wall clock: the same in every namespace).
PROBE_PY = r"""
import select, socket, sys, time
vip, port, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
seq, nxt = 0, time.time()
while True:
    now = time.time()
    if now >= nxt:
        try:
            s.sendto(str(seq).encode(), (vip, port))
        except OSError:
            pass
        seq, nxt = seq + 1, nxt + interval
        if nxt < now:
            nxt = now + interval
    r, _, _ = select.select([s], [], [], max(0.0, nxt - time.time()))
    while r:
        try:
            d, a = s.recvfrom(64)
        except BlockingIOError:
            break
        if a[0] == vip:
            sys.stdout.write(f"{time.time():.6f} {d.decode(errors='replace')}\n")
            sys.stdout.flush()
"""


class Probe:
    """The client namespace probes the VIP every 10 ms; a thread collects
    (arrival time, node) of every answer."""

    def __init__(self, lab):
        self.answers, self.cond = [], threading.Condition()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", f"{lab}-c", sys.executable, "-c", PROBE_PY, VIP,
             str(ECHO_PORT), str(PROBE_INTERVAL)], stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for line in self.proc.stdout:
            f = line.split()
            if len(f) >= 2:
                with self.cond:
                    self.answers.append((float(f[0]), f[1]))
                    self.cond.notify_all()

    def first(self, node, since, timeout):
        """Arrival of the first answer from node at or after `since`."""
        end = time.time() + timeout
        with self.cond:
            while True:
                for t, n in self.answers:
                    if n == node and t >= since:
                        return t
                if time.time() >= end:
                    return None
                self.cond.wait(max(0.0, min(0.5, end - time.time())))

    def last_before(self, node, until):
        with self.cond:
            ts = [t for t, n in self.answers if n == node and t < until]
        return ts[-1] if ts else None

    def others(self, node, since, until):
        """Answers from any node but `node` in [since, until)."""
        with self.cond:
            return [(t, n) for t, n in self.answers if n != node and since <= t < until]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def start_echo(lab, n):
    return subprocess.Popen(["ip", "netns", "exec", f"{lab}-{n}", sys.executable, "-c",
                             ECHO_PY, n, VIP, str(ECHO_PORT)])


HARESOURCES = f"n1 IPaddr2::{VIP}/24/eth0:0\n"


class HbdGroupCluster(HbdCluster):
    """HbdCluster with the VIP group, auto_failback on, and echo servers."""

    def __init__(self, name, keepalive, deadtime, arp_probe=None):
        self.arp_probe = arp_probe
        super().__init__(name, keepalive, deadtime)

    def _setup(self, keepalive, deadtime):
        super()._setup(keepalive, deadtime)
        for n in ("n1", "n2"):
            d = os.path.join(self.dir, n, "ha.d")
            # initdead 5 as heartbeat's: with initdead = deadtime (50ms) a
            # node started a few ms before its peer may start the group
            # alone, and the other's ARP probe then finds the VIP taken.
            with open(os.path.join(d, "ha.cf")) as f:
                cf = re.sub(r"(?m)^initdead .*$", "initdead 5", f.read())
            with open(os.path.join(d, "ha.cf"), "w") as f:
                f.write(cf + "auto_failback on\n")
            with open(os.path.join(d, "haresources"), "w") as f:
                f.write(HARESOURCES)
            if self.arp_probe is not None:
                with open(os.path.join(d, "cluster.toml"), "w") as f:
                    f.write(f'[resource_defaults]\narp_probe = "{self.arp_probe}"\n')
            self.procs[f"echo-{n}"] = start_echo(self.name, n)
        self.probe = Probe(self.name)

    def hbctl(self, n, *args, **kw):
        return subprocess.run([HBCTL, "--run-dir", f"{self.dir}/{n}/run", *args],
                              capture_output=True, text=True, **kw)

    def owner(self, observer):
        import json
        r = self.hbctl(observer, "status", "--json")
        try:
            g = json.loads(r.stdout)["groups"][0]
            return g["owner"], g["state"]
        except (ValueError, KeyError, IndexError):
            return None

    def wait_owner(self, node, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if all(self.owner(o) == (node, "started") for o in ("n1", "n2")):
                return
            time.sleep(0.05)
        raise SystemExit(f"bench: hbd group never started on {node}; logs in {self.dir}")

    def close(self):
        if hasattr(self, "probe"):
            self.probe.close()
        super().close()


class HeartbeatGroupCluster(HeartbeatCluster):
    def _setup(self, keepalive, deadtime):
        super()._setup(keepalive, deadtime)
        self.echo = []
        for n in ("n1", "n2"):
            with open(f"{self.dir}/{n}/ha.d/haresources", "w") as f:
                f.write(HARESOURCES)
            self.echo.append(start_echo(self.name, n))
        self.probe = Probe(self.name)

    def master(self, n):
        """pid of the node's heartbeat master control process."""
        for p in self.pids(n):
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if b"master control process" in cmd:
                return p
        raise SystemExit(f"bench: no heartbeat master on {n}")

    def close(self):
        if hasattr(self, "probe"):
            self.probe.close()
        for p in getattr(self, "echo", []):
            if p.poll() is None:
                p.kill()
            p.wait()
        super().close()
