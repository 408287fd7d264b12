"""Part 5 of the benchmark (see cli.py), hbd only: service failover by a
process check, and the CPU of tcp checks."""
import os, subprocess, sys, time

from .clusters import VIP, HbdGroupCluster
from .common import PREFIX, footprint, hbd_log_times, kill_pids, med_range


class HbdMonCluster(HbdGroupCluster):
    """The VIP group with `mon` and a process check on each node's echo
    server (its pid file), interval 1 s, fall 2, action move; `checks` extra
    tcp checks of a local listener for the CPU figure."""

    def __init__(self, name, checks=0, tcp_checks=0):
        self.checks, self.tcp_checks = checks, tcp_checks
        super().__init__(name, "1", "3")

    def _setup(self, keepalive, deadtime):
        super()._setup(keepalive, deadtime)
        for n in ("n1", "n2"):
            d = os.path.join(self.dir, n, "ha.d")
            with open(os.path.join(d, "haresources"), "w") as f:
                f.write(f"n1 IPaddr2::{VIP}/24/eth0:0 mon\n")
            pidfile = os.path.join(self.dir, n, "echo.pid")
            with open(pidfile, "w") as f:
                f.write(str(self.procs[f"echo-{n}"].pid))
            toml = ""
            if self.checks:
                toml += ('[[check]]\nname = "echo"\ntype = "process"\n'
                         f'pidfile = "{pidfile}"\ninterval = "1s"\nfall = 2\n\n')
            for i in range(self.tcp_checks):
                toml += (f'[[check]]\nname = "tcp{i}"\ntype = "tcp"\nport = {LISTEN_PORT}\n'
                         'interval = "1s"\n\n')
            with open(os.path.join(d, "cluster.toml"), "w") as f:
                f.write(toml)
            if self.tcp_checks:
                self.procs[f"listen-{n}"] = subprocess.Popen(
                    ["ip", "netns", "exec", f"{self.name}-{n}", sys.executable, "-c",
                     LISTEN_PY, str(LISTEN_PORT)])


LISTEN_PORT = 7788
LISTEN_PY = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(512)
while True:
    c, _ = s.accept(); c.close()
"""


def hbd_service_failover(trials):
    """[(kill of n1's service → VIP answers from n2, kill → check failed,
    failed → VIP added on n2)]: interval 1 s, fall 2."""
    out = []
    for t in range(trials):
        c = HbdMonCluster(f"{PREFIX}hbd-m{t}", checks=1)
        try:
            c.start("n1"); c.start("n2")
            c.wait("n1", "n2", "up"); c.wait("n2", "n1", "up")
            c.wait_owner("n1")
            if c.probe.first("n1", 0, 10) is None:
                raise SystemExit(f"bench: hbd: the VIP never answered from n1; logs in {c.dir}")
            # Spread the kill over the 1 s check interval.
            time.sleep(2.0 + (t + 0.5) / trials)
            t0 = time.time()
            kill_pids([c.procs["echo-n1"].pid])
            ta = c.probe.first("n2", t0, 30)
            if ta is None:
                raise SystemExit(f"bench: hbd: the VIP never answered from n2; logs in {c.dir}")
            time.sleep(0.1)
            l1 = hbd_log_times(c.log("n1"), t0 - 0.001)
            l2 = hbd_log_times(c.log("n2"), t0 - 0.001)
            failed = next((ts for ts, l in l1 if "group unhealthy here" in l), None)
            added = next((ts for ts, l in l2 if "address added" in l), None)
            out.append((ta - t0, failed - t0 if failed else None,
                        added - failed if failed and added else None))
        finally:
            c.close()
    return out


def hbd_check_cpu(tcp_checks, seconds):
    """CPU (% of one core) of the holder's hbd with `tcp_checks` tcp checks at 1 s."""
    c = HbdMonCluster(f"{PREFIX}hbd-c{tcp_checks}", checks=0, tcp_checks=tcp_checks)
    try:
        c.start("n1"); c.start("n2")
        c.wait("n1", "n2", "up"); c.wait("n2", "n1", "up")
        c.wait_owner("n1")
        time.sleep(3)
        pid = c.procs["n1"].pid
        # `ip netns exec` execs hbd: the Popen pid is hbd's.
        return footprint([pid], seconds)["cpu"]
    finally:
        c.close()


def monitor_table(args):
    print("\nService failover: the holder's service dies (its echo server killed), a "
          "process check (interval 1s, fall 2, action move) moves the group; kill → the "
          "VIP answers from the peer (median, min – max):\n")
    r = hbd_service_failover(args.trials)
    m, rng, _ = med_range([x[0] for x in r])
    f, frng, _ = med_range([x[1] for x in r])
    a, _, _ = med_range([x[2] for x in r])
    print("| check | VIP answers from the peer | min – max | kill → check failed (min – max) "
          "| failed → VIP added on the peer | trials |")
    print("|---|---|---|---|---|---|")
    print(f"| process, interval 1s, fall 2 | {m} | {rng} | {f} ({frng}) | {a} | {args.trials} |")
    monitor_cpu_table(args)


def monitor_cpu_table(args):
    seconds = max(10, args.idle_seconds)
    print(f"\nCPU of the holder's hbd with N tcp checks at 1 s intervals ({seconds} s, "
          "% of one core):\n")
    print("| tcp checks | hbd CPU | per check and run |")
    print("|---|---|---|")
    base = None
    for n in (0, 100):
        cpu = hbd_check_cpu(n, seconds)
        if n == 0:
            base = cpu
            per = "—"
        else:
            per = f"{(cpu - base) / 100 * 1e6 / n:.0f} µs"
        print(f"| {n} | {cpu:.2f} % | {per} |", flush=True)
