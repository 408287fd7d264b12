"""Part `pacemaker` of the benchmark (see cli.py): crash failover of the
same VIP with Pacemaker 2.1 on Corosync 3.1, in the same lab with the same
client probe as the other parts, at Corosync's default token (3000 ms) and
at 1000 ms, beside hbd on Corosync (part `corosync`).

Each node runs corosync (configured as corosync.py does: knet, `two_node:
1`, token T) and pacemakerd (which starts pacemaker-based, -fenced, -execd,
-attrd, -schedulerd and -controld) in its own network namespace and in a
private mount and UTS namespace: tmpfs on /run and /dev/shm (libqb's ring
buffers), and per-node directories bind-mounted over /var/lib/pacemaker
(cib, pengine, blackbox, cores) and /var/log/pacemaker, owned by
hacluster:haclient. Pacemaker's and Corosync's IPC are libqb's, on abstract
sockets (per network namespace) with shared memory in /dev/shm, so the
command-line tools run inside the node's namespaces (nsenter).

The CIB: stonith-enabled=false, no-quorum-policy left at its default
(stop: `two_node` keeps the survivor quorate), resource-stickiness=100, the
VIP as ocf:heartbeat:IPaddr2 (ip=192.0.2.50 cidr_netmask=24 nic=eth0,
monitor every 1 s) with a location preference (score 50) for n1. The echo
servers run outside Pacemaker, as in the hbd runs. The trial: the VIP runs
on n1 and answers the probe; then every process of n1's namespace (corosync,
the Pacemaker daemons, the echo server) is SIGKILLed and its link cut; t0
right before. Measured: the first probe answer from n2, and from n2's
pacemaker.log (millisecond timestamps) the controller's "Node n1 state is
now lost" and the IPaddr2 start's result."""
import datetime, os, shutil, subprocess, sys, tempfile, time

from .clusters import Probe, VIP, start_echo
from .common import LAB, PREFIX, kill_pids, lab_down, lab_up, ms, ns_pids, sh
from .corosync import span

TOKENS = (3000, 1000)

PCMK_NODE_SH = r"""
set -e
hostname "$1"
base=$2
mount -t tmpfs pcmk-bench-run /run
mount -t tmpfs pcmk-bench-shm /dev/shm
mount --bind "$base/lib" /var/lib/pacemaker
mount --bind "$base/log" /var/log/pacemaker
mkdir -p /run/crm
chown hacluster:haclient /run/crm
corosync -f -c "$base/corosync.conf" &
echo $! > "$base/cs.pid"
i=0
until corosync-cmapctl -g totem.token >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "corosync did not come up" >&2; exit 1; }
  sleep 0.1
done
PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none PCMK_blackbox=no \
  pacemakerd -f &
echo $! > "$base/pcmk.pid"
wait
"""

CIB_RESOURCE = (f'<primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">'
                f'<instance_attributes id="vip-ia">'
                f'<nvpair id="vip-ip" name="ip" value="{VIP}"/>'
                f'<nvpair id="vip-mask" name="cidr_netmask" value="24"/>'
                f'<nvpair id="vip-nic" name="nic" value="eth0"/>'
                f'</instance_attributes><operations>'
                f'<op id="vip-monitor" name="monitor" interval="1s" timeout="20s"/>'
                f'<op id="vip-start" name="start" interval="0s" timeout="20s"/>'
                f'<op id="vip-stop" name="stop" interval="0s" timeout="20s"/>'
                f'</operations></primitive>')
CIB_LOCATION = '<rsc_location id="vip-prefers-n1" rsc="vip" node="n1" score="50"/>'


def pcmk_version():
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "pacemaker"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "(version unknown)"


def alive(pid):
    """pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return not f.read().rsplit(") ", 1)[-1].startswith("Z")
    except OSError:
        return False


class PacemakerGroupCluster:
    def __init__(self, name, token_ms):
        self.name, self.token_ms = name, token_ms
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        self.nodes, self.echo = {}, {}
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self):
        lab_up(self.name)
        nodes = "".join(f"  node {{\n    ring0_addr: 192.0.2.{10 + k}\n    name: n{k}\n"
                        f"    nodeid: {k}\n  }}\n" for k in (1, 2))
        for n in ("n1", "n2"):
            base = os.path.join(self.dir, n)
            os.makedirs(os.path.join(base, "cs-state"))
            for d in ("lib/cib", "lib/pengine", "lib/blackbox", "lib/cores", "log"):
                os.makedirs(os.path.join(base, d))
            sh("chown", "-R", "hacluster:haclient", f"{base}/lib", f"{base}/log")
            sh("chmod", "0750", f"{base}/lib/cib", f"{base}/lib/pengine", f"{base}/lib/blackbox",
               f"{base}/lib/cores")
            sh("chmod", "0770", f"{base}/log")
            os.chmod(self.dir, 0o755)
            with open(os.path.join(base, "corosync.conf"), "w") as f:
                f.write(f"totem {{\n  version: 2\n  cluster_name: bench\n  transport: knet\n"
                        f"  token: {self.token_ms}\n  crypto_cipher: none\n  crypto_hash: none\n}}\n"
                        f"nodelist {{\n{nodes}}}\n"
                        "quorum {\n  provider: corosync_votequorum\n  two_node: 1\n}\n"
                        f"logging {{\n  to_logfile: yes\n  logfile: {base}/corosync.log\n"
                        "  to_syslog: no\n  to_stderr: no\n  timestamp: on\n}\n"
                        f"system {{\n  state_dir: {base}/cs-state\n}}\n")
            self.echo[n] = start_echo(self.name, n)
        for n in ("n1", "n2"):
            base = os.path.join(self.dir, n)
            log = open(os.path.join(base, "node.out"), "a")
            self.nodes[n] = subprocess.Popen(
                ["ip", "netns", "exec", f"{self.name}-{n}", "unshare", "--mount", "--uts",
                 "--propagation", "private", "sh", "-c", PCMK_NODE_SH, "sh", n, base],
                stdout=log, stderr=log)
        self.probe = Probe(self.name)

    def tool(self, n, *args, check=False):
        """A Pacemaker or Corosync command-line tool in node n's namespaces."""
        return subprocess.run(["nsenter", "-t", str(self.nodes[n].pid), "-n", "-m", "-u", *args],
                              capture_output=True, text=True, check=check)

    def wait_ready(self, timeout=60):
        """Both nodes online in Pacemaker with a DC elected."""
        end = time.time() + timeout
        while time.time() < end:
            for n, p in self.nodes.items():
                if p.poll() is not None:
                    raise SystemExit(f"bench: pacemaker: {n}'s node script exited; "
                                     f"logs in {self.dir}")
            r = self.tool("n1", "crm_mon", "-1", "--output-as", "text")
            if "Online: [ n1 n2 ]" in r.stdout and "Current DC: n" in r.stdout \
                    and "NONE" not in r.stdout:
                return
            time.sleep(0.2)
        raise SystemExit(f"bench: pacemaker never formed the cluster; logs in {self.dir}")

    def configure(self):
        self.tool("n1", "crm_attribute", "--type", "crm_config", "--name", "stonith-enabled",
                  "--update", "false", check=True)
        self.tool("n1", "crm_attribute", "--type", "rsc_defaults", "--name",
                  "resource-stickiness", "--update", "100", check=True)
        self.tool("n1", "cibadmin", "--create", "-o", "resources", "--xml-text", CIB_RESOURCE,
                  check=True)
        self.tool("n1", "cibadmin", "--create", "-o", "constraints", "--xml-text", CIB_LOCATION,
                  check=True)
        r = self.tool("n1", "crm_verify", "--live-check")
        if r.returncode != 0:
            raise SystemExit(f"bench: pacemaker: crm_verify: {r.stdout}{r.stderr}")

    def dc(self):
        r = self.tool("n2", "crmadmin", "-D", "-q")
        return (r.stdout.strip() or r.stderr.strip()).split()[-1] if r.returncode == 0 else None

    def log(self, n):
        try:
            with open(os.path.join(self.dir, n, "log", "pacemaker.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill_node(self, n):
        """SIGKILL every process of n's network namespace (corosync, pacemakerd
        and its daemons, IPaddr2's children, the echo server, the node script)."""
        killed = set()
        for _ in range(10):
            pids = ns_pids(f"{self.name}-{n}")
            if not pids:
                break
            kill_pids(pids)
            killed.update(pids)
            time.sleep(0.02)
        return killed

    @staticmethod
    def wait_gone(pids, timeout=10):
        """Until none of pids is left in /proc (a SIGKILLed process leaves the
        network namespace before it is gone)."""
        end = time.time() + timeout
        while time.time() < end:
            pids = [p for p in pids if alive(p)]
            if not pids:
                return
            time.sleep(0.05)
        print(f"bench: pacemaker: still alive after SIGKILL: {pids}", file=sys.stderr)

    def close(self):
        if hasattr(self, "probe"):
            self.probe.close()
        killed = set()
        for n in ("n1", "n2"):
            killed |= self.kill_node(n)
        for p in list(self.nodes.values()) + list(self.echo.values()):
            if p.poll() is None:
                p.kill()
            p.wait()
        lab_down(self.name)
        self.wait_gone(killed)
        shutil.rmtree(self.dir, ignore_errors=True)


def pcmk_log_times(log, since):
    """[(UTC s, line)] of pacemaker.log's lines stamped at or after `since`
    ("Dec 06 21:50:01.123 n2 pacemaker-controld [pid] ...", local time, no
    year)."""
    out, year = [], time.localtime(since).tm_year
    for line in log.splitlines():
        try:
            t = datetime.datetime.strptime(f"{year} {line[:19]}", "%Y %b %d %H:%M:%S.%f")
        except ValueError:
            continue
        ts = t.timestamp()  # naive: local time, as pacemaker writes it
        if ts >= since:
            out.append((ts, line))
    return out


def fmt(x):
    return ms(x) if x is not None else "—"


def pacemaker_failover(token_ms, trials, keep=False):
    """[(kill → VIP answers from n2, kill → n2's controller: n1 lost,
    kill → IPaddr2 started on n2, DC before the kill)]."""
    out = []
    for t in range(trials):
        c = PacemakerGroupCluster(f"{PREFIX}pm-f{t}", token_ms)
        try:
            c.wait_ready()
            c.configure()
            if c.probe.first("n1", 0, 60) is None:
                raise SystemExit(f"bench: pacemaker: the VIP never answered from n1; "
                                 f"logs in {c.dir}")
            # a few monitor rounds; spread the kill over the 1 s monitor interval
            time.sleep(2.0 + (t + 0.5) / trials)
            dc = c.dc()
            t0 = time.time()
            c.kill_node("n1")
            sh(LAB, "link", c.name, "n1", "0", "down")
            ta = c.probe.first("n2", t0, token_ms / 1000 * 3 + 60)
            if ta is None:
                raise SystemExit(f"bench: pacemaker: the VIP never answered from n2; "
                                 f"logs in {c.dir}")
            time.sleep(0.3)
            lines = pcmk_log_times(c.log("n2"), t0 - 1.0)
            lost = next((ts for ts, l in lines if "pacemaker-controld" in l
                         and "n1 state is now lost" in l), None)
            started = next((ts for ts, l in lines if "Result of start operation for vip on n2"
                            in l), None)
            out.append((ta - t0, lost - t0 if lost else None,
                        started - t0 if started else None, dc))
            r = out[-1]
            print(f"bench: pacemaker token {token_ms} trial {t}: DC {dc}, n1 lost "
                  f"{fmt(r[1])}, IPaddr2 started {fmt(r[2])}, VIP answers from n2 {fmt(r[0])}"
                  + (f"; logs in {c.dir}" if keep else ""), file=sys.stderr, flush=True)
        finally:
            if not keep:
                c.close()
            else:
                d, c.dir = c.dir, tempfile.mkdtemp()
                c.close()
                c.dir = d
    return out


def pacemaker_table(args):
    print(f"## Pacemaker {pcmk_version()} on Corosync: crash failover "
          "(kill all of n1 and cut its link)\n")
    print("| stack | setting | kill → n2's controller: n1 lost | kill → IPaddr2 started on n2 "
          "| kill → VIP answers from n2 (median, min–max) | DC at the kill |")
    print("|---|---|---|---|---|---|")
    for token in TOKENS:
        rows = pacemaker_failover(token, args.trials)
        label = "corosync default" if token == 3000 else "corosync tuned"
        dcs = [d for _, _, _, d in rows]
        dc_s = ", ".join(f"{n}×{dcs.count(n)}" for n in sorted(set(map(str, dcs))))
        print(f"| Pacemaker, {label} | token {token} ms | {span([r[1] for r in rows])} "
              f"| {span([r[2] for r in rows])} | {span([r[0] for r in rows])} | {dc_s} |",
              flush=True)
    print("\nhbd on Corosync with the same tokens: part `corosync` "
          "(docs/BENCHMARKS.md, \"hbd on Corosync\").\n")


if __name__ == "__main__":
    import argparse, signal
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--token", type=int, action="append")
    ap.add_argument("--keep", action="store_true", help="print each trial, keep the logs")
    a = ap.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.token:
        TOKENS = tuple(a.token)
    if a.keep:
        for tok in TOKENS:
            pacemaker_failover(tok, a.trials, keep=True)
    else:
        pacemaker_table(a)
