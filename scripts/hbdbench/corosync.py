"""Part `corosync` of the benchmark (see cli.py): crash detection and
failover of the VIP group with hbd on Corosync (cluster.toml `[membership]
backend = "corosync"`), at Corosync's default token (3000 ms) and tuned
ones, side by side with hbd's own membership, in the same lab with the same
client probe.

Each node runs its own corosync 3.1 (knet, `two_node: 1` as a two-node
Corosync cluster is set up) in its own network namespace and, for its pid
file, a private mount namespace with tmpfs on /run. The trial: the group
runs on n1 and answers the probe; then every process of n1 (hbd, corosync,
the echo server) is killed and its link cut (power loss); t0 right before.
Measured on n2: "node dead" in hbd's log (detection: Corosync's token
timeout and consensus, then the stop margin) and the first probe answer
from n2 (the VIP moved)."""
import os, signal, subprocess, time

from .clusters import HbdGroupCluster
from .common import LAB, PREFIX, hbd_log_times, kill_offset, kill_pids, med_range, ms, sh
from .failover import hbd_failover

# (token ms, stop_margin as cluster.toml writes it or None = default: the token)
COROSYNC_SETTINGS = ((3000, None), (1000, None), (1000, "0s"), (300, None))
# hbd's own membership beside it: (keepalive, deadtime, keepalive s, deadtime s)
OWN_SETTINGS = (("1", "3", 1.0, 3.0), ("100ms", "500ms", 0.1, 0.5))

CS_NODE_SH = r"""
set -e
mount -t tmpfs hbd-bench-run /run
corosync -f -c "$1" &
echo $! > "$2"
wait
"""


class CorosyncGroupCluster(HbdGroupCluster):
    """HbdGroupCluster on Corosync: corosync on both nodes, hbd with
    `[membership] backend = "corosync"`."""

    def __init__(self, name, token_ms, stop_margin):
        self.token_ms, self.stop_margin = token_ms, stop_margin
        self.cs = {}
        super().__init__(name, "200ms", "2", None)

    def _setup(self, keepalive, deadtime):
        super()._setup(keepalive, deadtime)
        nodes = "".join(f"  node {{\n    ring0_addr: 192.0.2.{10 + k}\n    name: n{k}\n"
                        f"    nodeid: {k}\n  }}\n" for k in (1, 2))
        for n in ("n1", "n2"):
            base = os.path.join(self.dir, n)
            os.makedirs(os.path.join(base, "cs-state"))
            conf = os.path.join(base, "ha.d", "corosync.conf")
            with open(conf, "w") as f:
                f.write(f"totem {{\n  version: 2\n  cluster_name: bench\n  transport: knet\n"
                        f"  token: {self.token_ms}\n  crypto_cipher: none\n  crypto_hash: none\n}}\n"
                        f"nodelist {{\n{nodes}}}\n"
                        "quorum {\n  provider: corosync_votequorum\n  two_node: 1\n}\n"
                        f"logging {{\n  to_logfile: yes\n  logfile: {base}/corosync.log\n"
                        "  to_syslog: no\n  to_stderr: no\n  timestamp: on\n}\n"
                        f"system {{\n  state_dir: {base}/cs-state\n}}\n")
            margin = f'stop_margin = "{self.stop_margin}"\n' if self.stop_margin else ""
            with open(os.path.join(base, "ha.d", "cluster.toml"), "w") as f:
                f.write(f'[membership]\nbackend = "corosync"\ncorosync_conf = "{conf}"\n{margin}')
            log = open(os.path.join(base, "corosync.out"), "a")
            self.cs[n] = subprocess.Popen(
                ["ip", "netns", "exec", f"{self.name}-{n}", "unshare", "--mount",
                 "--propagation", "private", "sh", "-c", CS_NODE_SH, "sh", conf,
                 os.path.join(base, "cs.pid")], stdout=log, stderr=log)
        end = time.time() + 30
        while time.time() < end:
            r = subprocess.run(["ip", "netns", "exec", f"{self.name}-n1", "corosync-quorumtool",
                                "-s"], capture_output=True, text=True)
            if "Quorate:          Yes" in r.stdout and "n2" in r.stdout:
                return
            time.sleep(0.1)
        raise SystemExit(f"bench: corosync never formed the cluster; logs in {self.dir}")

    def cs_pid(self, n):
        with open(os.path.join(self.dir, n, "cs.pid")) as f:
            return int(f.read().strip())

    def close(self):
        for n in list(self.cs):
            try:
                os.kill(self.cs_pid(n), signal.SIGKILL)
            except (OSError, ValueError):
                pass
            p = self.cs[n]
            if p.poll() is None:
                p.kill()
                p.wait()
        super().close()


def corosync_failover(token_ms, stop_margin, trials):
    """[(kill → VIP answers from n2, kill → node dead)]."""
    out = []
    for t in range(trials):
        c = CorosyncGroupCluster(f"{PREFIX}cs-f{t}", token_ms, stop_margin)
        try:
            c.start("n1")
            c.start("n2")
            c.wait("n1", "n2", "up"); c.wait("n2", "n1", "up")
            c.wait_owner("n1")
            if c.probe.first("n1", 0, 10) is None:
                raise SystemExit(f"bench: corosync: the VIP never answered from n1; logs in {c.dir}")
            time.sleep(1.0 + kill_offset(t, trials, 0.2))
            t0 = time.time()
            kill_pids([c.procs["n1"].pid, c.procs["echo-n1"].pid, c.cs_pid("n1")])
            sh(LAB, "link", c.name, "n1", "0", "down")
            ta = c.probe.first("n2", t0, token_ms / 1000 * 3 + 20)
            if ta is None:
                raise SystemExit(f"bench: corosync: the VIP never answered from n2; logs in {c.dir}")
            time.sleep(0.1)
            lines = hbd_log_times(c.log("n2"), t0 - 0.001)
            dead = next((ts for ts, l in lines if "node dead" in l), None)
            out.append((ta - t0, dead - t0 if dead else None))
        finally:
            c.close()
    return out


def span(xs):
    m, r, _ = med_range(xs)
    return f"{m} ({r})"


def corosync_table(args):
    print("## hbd on Corosync: crash failover (kill all of n1 and cut its link)\n")
    print("| membership | setting | kill → n2 declares n1 dead (median, min–max) "
          "| kill → VIP answers from n2 (median, min–max) |")
    print("|---|---|---|---|")
    for token, margin in COROSYNC_SETTINGS:
        rows = corosync_failover(token, margin, args.trials)
        dead = [d for _, d in rows if d is not None]
        answer = [a for a, _ in rows]
        margin_s = margin if margin else f"{token} ms (default: the token)"
        label = "corosync default" if token == 3000 else "corosync tuned"
        print(f"| {label} | token {token} ms, stop_margin {margin_s} | {span(dead)} "
              f"| {span(answer)} |", flush=True)
    for keepalive, deadtime, ka_s, dt_s in OWN_SETTINGS:
        rows = hbd_failover(keepalive, deadtime, ka_s, dt_s, None, args.trials)
        dead = [d for _, d, _, _ in rows if d is not None]
        answer = [a for a, _, _, _ in rows]
        print(f"| hbd's own (bcast) | keepalive {keepalive}, deadtime {deadtime} "
              f"| {span(dead)} | {span(answer)} |", flush=True)
    print("\nPacemaker with the same resources is not in this table: see "
          "docs/BENCHMARKS.md (\"hbd on Corosync\").\n")
