"""The replicated disk's benchmark (scripts/bench --only disk).

In one run, on the same backing files (a file on the machine's disk):

- plain: a kernel loop device on the backing file (direct I/O), no FUSE,
  no replication: what the machine gives;
- hbd standalone: hbd-disk Primary with its peer down (FUSE file behind a
  loop device, activity log and bitmap, no replication);
- hbd replicated: hbd-disk Primary, Connected to its peer in the netns lab
  (protocol C: every write on both backing files before it completes).

Workloads (fio, direct I/O on the block device): sequential 1 MiB writes
(libaio, iodepth 16), random 4 KiB writes (libaio, iodepth 16), and 4 KiB
writes each followed by fsync (psync): the fsync latency. Then the resync
throughput (a full initial sync of the device, rate limit out of the way),
and the time to promote and mount ext4 on the peer (the failover path of
the drbddisk + Filesystem agents), several runs.

Issue 15's rows, in the same run:

- one TCP stream between the two lab namespaces (192.0.2.11 -> 192.0.2.12,
  the link the device replicates over; iperf3, installed with apt-get when
  missing, else a Python sender/receiver), measured before the devices
  start, and the full initial sync's MiB/s as a ratio of it;
- MariaDB commits/s with innodb_flush_log_at_trx_commit=1: mariadbd
  (--no-defaults --skip-grant-tables, binary log off as Debian ships it,
  so sync_binlog plays no part) in the Primary's network namespace, its
  datadir on the device's ext4 (mounted in a private mount namespace that
  only mariadbd holds: it goes away with the process), driven from the
  client namespace over TCP by `sysbench oltp_write_only` (one thread),
  else by an insert loop (one client, autocommit INSERTs); the device
  Connected (protocol C), then the same server and device with the peer
  disconnected (StandAlone), the same duration each;
- the "issue 15 targets" table: each ratio with its target, met or not; and
  one JSON line ("issue15-json: {...}" on stdout, and appended to the file
  named by $HBD_BENCH_JSON when set) for a summary of every row.

Environment: HBD_BENCH_MARIADB_SECONDS (default 20) per MariaDB run,
HBD_BENCH_TCP_SECONDS (default 6) for the TCP stream.
"""
import json, os, re, shutil, socket, statistics, struct, subprocess, sys, tempfile, time

from .common import HBCTL, HBD_DISK, lab_down, lab_up
from .summary import record

MIB = 1 << 20


def call(run, res, req, timeout=120):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(f"{run}/disk/{res}.sock")
    b = json.dumps(req).encode()
    s.sendall(struct.pack(">I", len(b)) + b)
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    d = b""
    while len(d) < n:
        chunk = s.recv(n - len(d))
        if not chunk:
            break
        d += chunk
    s.close()
    return json.loads(d)


def ok(run, res, req):
    r = call(run, res, req)
    if r["result"] != "done":
        raise RuntimeError(f"{req}: {r}")
    return r["status"]


def fio(dev, name, args, runtime):
    out = subprocess.run(
        ["fio", "--name", name, "--filename", dev, "--direct=1", "--output-format=json",
         f"--runtime={runtime}", "--time_based", "--size=256M"] + args,
        check=True, capture_output=True, text=True).stdout
    j = json.loads(out[out.index("{"):])["jobs"][0]
    return j


def machine_cpu():
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat)."""
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(v) - v[3] - v[4]) / hz, sum(v) / hz


def measured(dev, name, args, runtime):
    """fio's job, plus the machine's busy share and busy CPU µs per write
    over it (both lab nodes, fio and the kernel share this machine)."""
    b0, t0 = machine_cpu()
    j = fio(dev, name, args, runtime)
    b1, t1 = machine_cpu()
    writes = j["write"]["total_ios"] or 1
    j["cpu_busy"] = (b1 - b0) / max(t1 - t0, 1e-9)
    j["cpu_us_per_write"] = (b1 - b0) * 1e6 / writes
    return j


def workloads(dev, runtime):
    seq = measured(dev, "seq", ["--rw=write", "--bs=1M", "--ioengine=libaio", "--iodepth=16"],
                   runtime)
    rnd = measured(dev, "rand", ["--rw=randwrite", "--bs=4k", "--ioengine=libaio",
                                 "--iodepth=16"], runtime)
    syn = measured(dev, "fsync", ["--rw=write", "--bs=4k", "--ioengine=psync", "--fsync=1"],
                   runtime)
    lat = syn["sync"]["lat_ns"]
    pct = lat.get("percentile", {})
    return {
        "seq_mib_s": seq["write"]["bw_bytes"] / MIB,
        "rand_iops": rnd["write"]["iops"],
        "fsync_ms": lat["mean"] / 1e6,
        "fsync_p99_ms": float(pct.get("99.000000", lat["mean"])) / 1e6,
        "fsync_ops": syn["write"]["iops"],
        "cpu_us_per_write": {"seq": seq["cpu_us_per_write"], "rand": rnd["cpu_us_per_write"],
                             "fsync": syn["cpu_us_per_write"]},
        "cpu_busy": {"seq": seq["cpu_busy"], "rand": rnd["cpu_busy"],
                     "fsync": syn["cpu_busy"]},
    }


class Pair:
    """Two hbd-disk processes in a two-node lab."""

    def __init__(self, lab, size, tls=True):
        self.lab, self.hbctl, self.bin, self.size = lab, HBCTL, HBD_DISK, size
        self.dir = tempfile.mkdtemp(prefix=lab + "-", dir="/var/tmp")
        self.procs = {}
        lab_up(lab)
        key = "auth 1\n1 sha256 " + os.urandom(16).hex() + "\n"
        hosts = "".join(
            f"  on n{i} {{ device {self.dir}/n{i}/drbd0; disk {self.dir}/n{i}/backing.img; "
            f"address 192.0.2.{10 + i}:7788; meta-disk internal; }}\n" for i in (1, 2))
        for i in (1, 2):
            d = f"{self.dir}/n{i}/ha.d"
            os.makedirs(d)
            os.makedirs(f"{self.dir}/n{i}/run")
            for name, text in (("ha.cf", "keepalive 1\ndeadtime 3\nbcast eth0\nnode n1 n2\n"),
                               ("authkeys", key), ("haresources", ""),
                               ("drbd.conf", "resource r0 {\n  protocol C;\n"
                                             "  syncer { rate 4000M; }\n"
                                             + ("" if tls else "  net { tls no; }\n")
                                             + hosts + "}\n")):
                with open(f"{d}/{name}", "w") as f:
                    f.write(text)
            os.chmod(f"{d}/authkeys", 0o600)
            with open(f"{self.dir}/n{i}/backing.img", "wb") as f:
                f.truncate(size)
            subprocess.run([HBCTL, "disk", "--config", d, "--node", f"n{i}", "create-md", "r0"],
                           check=True, capture_output=True)

    def run(self, i):
        return f"{self.dir}/n{i}/run"

    def start(self, i):
        log = open(f"{self.dir}/n{i}/disk.log", "a")
        self.procs[i] = subprocess.Popen(
            ["ip", "netns", "exec", f"{self.lab}-n{i}", self.bin, "--config",
             f"{self.dir}/n{i}/ha.d", "--node", f"n{i}", "--run-dir", self.run(i), "r0"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        for _ in range(200):
            try:
                return ok(self.run(i), "r0", {"request": "status"})
            except (OSError, RuntimeError, ValueError, struct.error):
                time.sleep(0.05)
        raise RuntimeError(f"n{i}'s device did not start")

    def status(self, i):
        return ok(self.run(i), "r0", {"request": "status"})

    def full_sync(self):
        """Start n2 (fresh metadata): connecting starts a full sync from n1,
        the Primary. Its duration in seconds."""
        t0 = time.time()
        self.start(2)
        self.wait(lambda: self.status(2)["disk"] == "UpToDate"
                  and self.status(2)["connection"] == "Connected")
        return time.time() - t0

    def wait(self, pred, timeout=600):
        t = time.time()
        while time.time() - t < timeout:
            if pred():
                return
            time.sleep(0.05)
        raise RuntimeError("timed out")

    def close(self):
        for i in (1, 2):
            try:
                call(self.run(i), "r0", {"request": "down"}, timeout=20)
            except Exception:
                pass
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        lab_down(self.lab)
        # A device process that had to be killed leaves its loop device
        # behind (its FUSE mount lived in the process's own mount namespace).
        for blk in os.listdir("/sys/block"):
            try:
                with open(f"/sys/block/{blk}/loop/backing_file") as f:
                    backing = f.read().strip()
            except OSError:
                continue
            if backing.startswith(self.dir + "/"):
                print(f"(left behind: /dev/{blk} on {backing}; detaching it)")
                subprocess.run(["losetup", "-d", f"/dev/{blk}"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def ensure_pkg(prog, pkg):
    """Whether PROG is there, installing Debian's PKG with apt-get if not."""
    if shutil.which(prog) is None:
        subprocess.run(["apt-get", "install", "-y", pkg], capture_output=True)
    return shutil.which(prog) is not None


def stop_pid(proc, grace=30):
    """Ends a process this script started, by its PID: TERM, then KILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def in_ns(ns, *cmd):
    return ["ip", "netns", "exec", ns] + list(cmd)


# A receiver and a sender for when iperf3 is not to be had: one TCP stream,
# 1 MiB sends, the receiver's byte count over its own time.
PY_RECV = r"""
import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2]))); l.listen(1); print("ready", flush=True)
c, _ = l.accept(); b = bytearray(1 << 20); n = 0; t0 = t1 = None
while True:
    k = c.recv_into(b)
    if not k: break
    t1 = time.monotonic()
    if t0 is None: t0 = t1
    n += k
print(n, t1 - t0, flush=True)
"""
PY_SEND = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
b = b"\0" * (1 << 20); end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end: s.sendall(b)
s.close()
"""


def tcp_stream(lab, seconds):
    """MiB/s of one TCP stream n1 -> n2 (192.0.2.11 -> 192.0.2.12), the link
    the replicated device uses. (MiB/s, tool)."""
    src, dst, port = "192.0.2.11", "192.0.2.12", "5201"
    if ensure_pkg("iperf3", "iperf3"):
        srv = subprocess.Popen(in_ns(f"{lab}-n2", "iperf3", "-s", "-1", "-B", dst, "-p", port),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
        try:
            for _ in range(50):  # until the server listens
                time.sleep(0.1)
                r = subprocess.run(in_ns(f"{lab}-n1", "iperf3", "-c", dst, "-B", src, "-p", port,
                                         "-t", str(seconds), "-O", "1", "-l", "1M", "-J"),
                                   capture_output=True, text=True, timeout=seconds + 60)
                if r.returncode == 0:
                    j = json.loads(r.stdout)["end"]["sum_received"]
                    return j["bytes"] / j["seconds"] / MIB, "iperf3, 1 stream, 1 MiB writes, first s omitted"
                if srv.poll() is not None:
                    break
            raise RuntimeError(f"iperf3 failed: {r.stdout[-300:]} {r.stderr[-300:]}")
        finally:
            stop_pid(srv, 5)
    srv = subprocess.Popen(in_ns(f"{lab}-n2", sys.executable, "-c", PY_RECV, dst, port),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL, text=True)
    try:
        if srv.stdout.readline().strip() != "ready":
            raise RuntimeError("the TCP receiver did not start")
        subprocess.run(in_ns(f"{lab}-n1", sys.executable, "-c", PY_SEND, dst, port, str(seconds)),
                       check=True, timeout=seconds + 60)
        n, t = srv.stdout.readline().split()
        return int(n) / float(t) / MIB, "Python sender/receiver, 1 stream"
    finally:
        stop_pid(srv, 5)


def disk_stream(size):
    """MiB/s the machine's disk takes a fresh file of SIZE bytes at, written
    as the resync target writes (1 MiB writes into the page cache, an
    fdatasync every 8 MiB: `resync::RS_ACK_BATCH`), in /var/tmp where the
    backing files live: the disk half of DRBD's "the slower of disk and
    network"."""
    tmp = tempfile.mkdtemp(prefix="hbdb-disk-", dir="/var/tmp")
    path = f"{tmp}/stream.img"
    buf = os.urandom(MIB)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            t0 = time.time()
            for i in range(size // MIB):
                os.pwrite(fd, buf, i * MIB)
                if (i + 1) % 8 == 0:
                    os.fdatasync(fd)
            os.fdatasync(fd)
            return size / MIB / (time.time() - t0)
        finally:
            os.close(fd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# The insert loop (when sysbench is not usable): one connection, autocommit,
# one INSERT after another for SECONDS; prints the commits.
PY_INSERTS = r"""
import sys, time, pymysql
c = pymysql.connect(host=sys.argv[1], port=3306, user="root", autocommit=True)
k = c.cursor()
k.execute("CREATE DATABASE IF NOT EXISTS bench")
k.execute("CREATE TABLE IF NOT EXISTS bench.t (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
          " v VARCHAR(64)) ENGINE=InnoDB")
n, t0 = 0, time.monotonic()
end = t0 + float(sys.argv[2])
while time.monotonic() < end:
    k.execute("INSERT INTO bench.t (v) VALUES ('hbd bench row')")
    n += 1
print(n, time.monotonic() - t0)
"""


class MariaDB:
    """mariadbd in node I's network namespace, its datadir on the device's
    ext4, mounted in a mount namespace of its own that only the server
    holds; clients from the lab's client namespace over TCP."""

    def __init__(self, lab, dev, workdir, i):
        self.lab, self.ip = lab, f"192.0.2.{10 + i}"
        self.mnt = f"{workdir}/mysql-mnt"
        os.makedirs(self.mnt, exist_ok=True)
        self.log = f"{workdir}/mariadbd.log"
        d = f"{self.mnt}/data"
        server = ["mariadbd", "--no-defaults", f"--datadir={d}", "--user=root",
                  f"--socket={self.mnt}/mysqld.sock", f"--pid-file={self.mnt}/mysqld.pid",
                  f"--bind-address={self.ip}", "--port=3306", "--skip-grant-tables",
                  "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=1",
                  f"--log-error={self.mnt}/mysqld.err"]
        # unshare, sh, nsenter and mariadbd are one process (each execs the
        # next): the Popen's pid is the server's, and its mount namespace
        # (with the ext4 in it) ends with it.
        script = (f"mount {dev} {self.mnt}; mkdir -p {d}; "
                  f"exec nsenter --net=/run/netns/{lab}-n{i} "
                  + " ".join(f"'{a}'" for a in server))
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def wait_ready(self):
        t = time.time()
        while True:
            if self.client("mariadb-admin", "--connect-timeout=2", "ping",
                           check=False).returncode == 0:
                return
            if self.proc.poll() is not None or time.time() - t > 120:
                raise RuntimeError(f"mariadbd did not start; see {self.log}")
            time.sleep(0.2)

    def client(self, prog, *args, check=True, timeout=60):
        return subprocess.run(in_ns(f"{self.lab}-c", prog, "--no-defaults", "-h", self.ip,
                                    "-P", "3306", "-u", "root", *args),
                              capture_output=True, text=True, check=check, timeout=timeout)

    def sysbench(self, *args, timeout=120):
        return subprocess.run(in_ns(f"{self.lab}-c", "sysbench", "oltp_write_only",
                                    "--db-driver=mysql", f"--mysql-host={self.ip}",
                                    "--mysql-port=3306", "--mysql-user=root",
                                    "--mysql-db=sbtest", "--tables=1", "--table-size=10000",
                                    "--threads=1", *args),
                              capture_output=True, text=True, check=True, timeout=timeout)

    def prepare(self):
        """The workload's tool: sysbench if it runs here, else the insert loop."""
        if ensure_pkg("sysbench", "sysbench"):
            try:
                self.client("mariadb", "-e", "CREATE DATABASE IF NOT EXISTS sbtest")
                self.sysbench("prepare")
                self.sysbench("--time=3", "run")  # warm-up, not counted
                self.tool = "sysbench 1.0 oltp_write_only, 1 thread, 1 table of 10000 rows"
                return
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                print(f"(sysbench did not work here: {str(e.stderr)[-300:]}; "
                      "the insert loop instead)")
        # Debian's python3 with its python3-pymysql (as tests/fixtures/app.py)
        if subprocess.run(["/usr/bin/python3", "-c", "import pymysql"],
                          capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "install", "-y", "python3-pymysql"], capture_output=True)
        self.tool = "insert loop, 1 client, autocommit INSERTs (PyMySQL)"
        self.inserts(3)  # warm-up

    def inserts(self, seconds):
        r = subprocess.run(in_ns(f"{self.lab}-c", "/usr/bin/python3", "-c", PY_INSERTS, self.ip,
                                 str(seconds)),
                           capture_output=True, text=True, check=True, timeout=seconds + 60)
        n, t = r.stdout.split()
        return int(n) / float(t)

    def commits_per_s(self, seconds):
        if self.tool.startswith("sysbench"):
            out = self.sysbench(f"--time={seconds}", "--report-interval=0", "run",
                                timeout=seconds + 60).stdout
            m = re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", out)
            if not m:
                raise RuntimeError(f"sysbench output not understood: {out[-500:]}")
            return float(m.group(1))
        return self.inserts(seconds)

    def stop(self):
        # TERM is a clean shutdown for mariadbd; then the mount namespace and
        # its ext4 go with the process.
        stop_pid(self.proc, 60)


def mariadb_rows(p, lab, primary, seconds):
    """Commits/s on the replicated device (Connected, protocol C) and then on
    the same device and server with the peer disconnected (StandAlone)."""
    st = p.status(primary)
    if st["connection"] != "Connected" or st["role"] != "Primary":
        raise RuntimeError(f"n{primary} is not a connected Primary: {st}")
    db = MariaDB(lab, f"{p.dir}/n{primary}/drbd0", p.dir, primary)
    try:
        db.wait_ready()
        db.prepare()
        repl = db.commits_per_s(seconds)
        ok(p.run(primary), "r0", {"request": "disconnect"})
        st = p.status(primary)
        if st["connection"] != "StandAlone":
            raise RuntimeError(f"n{primary} did not go StandAlone: {st}")
        alone = db.commits_per_s(seconds)
    finally:
        db.stop()
    return {"replicated": repl, "peer_down": alone, "tool": db.tool, "seconds": seconds}


def plain_loop(path):
    return subprocess.run(["losetup", "--direct-io=on", "-f", "--show", path], check=True,
                          capture_output=True, text=True).stdout.strip()


def disk_tables(args, lab):
    if shutil.which("fio") is None:
        subprocess.run(["apt-get", "install", "-y", "fio"], check=True, capture_output=True)
    size = 1024 * MIB
    runtime = max(5, min(30, args.idle_seconds // 3))
    rows = {}
    # plain loop on a backing file of the same size, same disk
    tmp = tempfile.mkdtemp(prefix=lab + "-plain-", dir="/var/tmp")
    img = f"{tmp}/plain.img"
    with open(img, "wb") as f:
        f.truncate(size)
    dev = plain_loop(img)
    try:
        rows["plain loop (kernel, no FUSE)"] = workloads(dev, runtime)
    finally:
        subprocess.run(["losetup", "-d", dev])
        shutil.rmtree(tmp, ignore_errors=True)

    tcp_s = int(os.environ.get("HBD_BENCH_TCP_SECONDS", "6"))
    db_s = int(os.environ.get("HBD_BENCH_MARIADB_SECONDS", "20"))
    tcp = db = disk = None
    p = Pair(lab, size)
    try:
        # One TCP stream on the link the device replicates over, before any
        # device runs (nothing else on the link or the CPUs of this run).
        try:
            tcp = tcp_stream(lab, tcp_s)
        except Exception as e:  # the other rows still count
            print(f"(the TCP stream was not measured: {e})")
        disk = disk_stream(size)
        p.start(1)
        ok(p.run(1), "r0", {"request": "disconnect"})
        st = ok(p.run(1), "r0", {"request": "primary", "force": True})
        rows["hbd-disk, peer down (FUSE + loop)"] = workloads(st["loop_device"], runtime)
        ok(p.run(1), "r0", {"request": "connect", "discard_my_data": False})
        resync_s = p.full_sync()
        st = p.status(1)
        rows["hbd-disk, replicated (protocol C, sealed: tls yes, the default)"] = workloads(
            st["loop_device"], runtime)

        # failover path: demote here, promote + mount ext4 there
        subprocess.run(["mkfs.ext4", "-q", "-F", st["loop_device"]], check=True)
        times = []
        src, dst = 1, 2
        for _ in range(args.trials):
            ok(p.run(src), "r0", {"request": "secondary"})
            t0 = time.time()
            ok(p.run(dst), "r0", {"request": "primary", "force": False})
            t1 = time.time()
            m = f"{p.dir}/mnt{dst}"
            os.makedirs(m, exist_ok=True)
            subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                            f"mount {p.dir}/n{dst}/drbd0 {m}; touch {m}/x; umount {m}"],
                           check=True)
            t2 = time.time()
            times.append((t1 - t0, t2 - t0))
            src, dst = dst, src
        # MariaDB on the ext4 of the device, on the Primary (src now).
        try:
            db = mariadb_rows(p, lab, src, db_s)
        except Exception as e:  # the other rows still count
            print(f"(MariaDB was not measured: {e})")
    finally:
        p.close()

    # The same replicated device with the link left plain (tls no): the
    # cost of sealing every frame (AES-256-GCM) in one run.
    p = Pair(lab, size, tls=False)
    try:
        p.start(1)
        ok(p.run(1), "r0", {"request": "primary", "force": True})
        resync_plain_s = p.full_sync()
        st = p.status(1)
        rows["hbd-disk, replicated (protocol C, plain: tls no)"] = workloads(
            st["loop_device"], runtime)
    finally:
        p.close()

    print("### Replicated disk (hbd-disk) vs the plain loop device\n")
    print(f"1 GiB backing files on the machine's disk; fio, direct I/O on the block device, "
          f"{runtime} s per workload.\n")
    print("| setup | seq 1 MiB write MiB/s | rand 4 KiB write IOPS | 4 KiB write+fsync ms (mean / p99) |")
    print("|---|---|---|---|")
    base = rows["plain loop (kernel, no FUSE)"]
    for k, r in rows.items():
        print(f"| {k} | {r['seq_mib_s']:.0f} ({r['seq_mib_s'] / base['seq_mib_s']:.2f}×) | "
              f"{r['rand_iops']:.0f} ({r['rand_iops'] / base['rand_iops']:.2f}×) | "
              f"{r['fsync_ms']:.2f} / {r['fsync_p99_ms']:.2f} |")
    print("\nThe whole machine's CPU per write (busy µs of both cores ÷ writes; both lab "
          "nodes, fio and the kernel share them) and how busy the two cores were:\n")
    print("| setup | seq 1 MiB | rand 4 KiB | 4 KiB write+fsync |")
    print("|---|---|---|---|")
    for k, r in rows.items():
        c, b = r["cpu_us_per_write"], r["cpu_busy"]
        print(f"| {k} | " + " | ".join(f"{c[w]:.0f} µs, {100 * b[w]:.0f} % busy"
                                       for w in ("seq", "rand", "fsync")) + " |")
    print(f"\nFull initial sync of {size // MIB} MiB (fresh peer, rate limit 4000M): "
          f"{resync_s:.1f} s = {size / MIB / resync_s:.0f} MiB/s sealed, "
          f"{resync_plain_s:.1f} s = {size / MIB / resync_plain_s:.0f} MiB/s plain\n")
    sealed = rows["hbd-disk, replicated (protocol C, sealed: tls yes, the default)"]
    plain = rows["hbd-disk, replicated (protocol C, plain: tls no)"]
    print(f"Sealing's cost (sealed ÷ plain, same run): seq writes "
          f"{sealed['seq_mib_s'] / plain['seq_mib_s']:.2f}×, random writes "
          f"{sealed['rand_iops'] / plain['rand_iops']:.2f}×, write+fsync latency "
          f"{sealed['fsync_ms'] / plain['fsync_ms']:.2f}×, full sync "
          f"{resync_plain_s / resync_s:.2f}×\n")
    pro = [a * 1000 for a, _ in times]
    mnt = [b * 1000 for _, b in times]
    print(f"Switch of Primary ({len(times)} runs): promote median {statistics.median(pro):.0f} ms "
          f"(worst {max(pro):.0f}); promote + mount ext4 median {statistics.median(mnt):.0f} ms "
          f"(worst {max(mnt):.0f})\n")

    issue15_table(rows, size, resync_s, resync_plain_s, tcp, db, disk)


# The rows of issue 15 this part measures: (key, what, target, higher is better).
TARGETS = (
    ("seq_repl_vs_down", "seq 1 MiB writes, replicated ÷ peer down", 0.70, True),
    ("down_vs_plain", "seq 1 MiB writes, peer down ÷ plain loop device", 0.80, True),
    ("rand_repl_vs_down", "random 4 KiB write IOPS, replicated ÷ peer down", 0.60, True),
    ("fsync_mean_repl_vs_down", "4 KiB write+fsync latency (mean), replicated ÷ peer down",
     1.5, False),
    ("fsync_p99_repl_vs_down", "4 KiB write+fsync latency (p99), replicated ÷ peer down",
     1.5, False),
    ("sync_vs_tcp", "full initial sync ÷ one TCP stream between the namespaces", 0.80, True),
    ("mariadb_repl_vs_down", "MariaDB commits/s (innodb_flush_log_at_trx_commit=1), "
                             "replicated ÷ peer down", 0.70, True),
)


def summary(out, fig):
    """This run's disk rows into the whole bench's table (summary.py)."""
    by = {r["row"]: r for r in out}

    def shown(key):
        r = by[key]
        if r["ratio"] is None:
            return "not measured", ""
        num, den, unit, f = fig[key]
        return f"{r['ratio']:.2f}×", f"{f.format(num)} ÷ {f.format(den)} {unit}"

    for key, row in (("seq_repl_vs_down", "seq"), ("down_vs_plain", "fuse"),
                     ("rand_repl_vs_down", "rand"), ("sync_vs_tcp", "sync"),
                     ("mariadb_repl_vs_down", "mariadb")):
        now, detail = shown(key)
        record(row, now, by[key]["met"] is True, detail)
    (m, md), (p, pd) = shown("fsync_mean_repl_vs_down"), shown("fsync_p99_repl_vs_down")
    record("fsync", f"{m} / {p}",
           by["fsync_mean_repl_vs_down"]["met"] is True
           and by["fsync_p99_repl_vs_down"]["met"] is True,
           f"mean {md}; p99 {pd}")


def issue15_table(rows, size, resync_s, resync_plain_s, tcp, db, disk=None):
    """Issue 15's rows: the ratios with their targets, met or not, and one
    JSON line with every figure."""
    plain = rows["plain loop (kernel, no FUSE)"]
    down = rows["hbd-disk, peer down (FUSE + loop)"]
    repl = rows["hbd-disk, replicated (protocol C, sealed: tls yes, the default)"]
    sync = size / MIB / resync_s
    sync_plain = size / MIB / resync_plain_s
    # key: (numerator, denominator, unit, how to print a figure)
    f0, f2 = "{:.0f}", "{:.2f}"
    fig = {
        "seq_repl_vs_down": (repl["seq_mib_s"], down["seq_mib_s"], "MiB/s", f0),
        "down_vs_plain": (down["seq_mib_s"], plain["seq_mib_s"], "MiB/s", f0),
        "rand_repl_vs_down": (repl["rand_iops"], down["rand_iops"], "IOPS", f0),
        "fsync_mean_repl_vs_down": (repl["fsync_ms"], down["fsync_ms"], "ms", f2),
        "fsync_p99_repl_vs_down": (repl["fsync_p99_ms"], down["fsync_p99_ms"], "ms", f2),
        "sync_vs_tcp": (sync, tcp[0] if tcp else None, "MiB/s", f0),
        "mariadb_repl_vs_down": (db["replicated"] if db else None,
                                 db["peer_down"] if db else None, "commits/s", f0),
    }
    print("### Issue 15 targets (this run)\n")
    print("| row | this run | ratio | target | met |")
    print("|---|---|---|---|---|")
    out = []
    for key, what, target, higher in TARGETS:
        num, den, unit, f = fig[key]
        if num is None or den is None or den == 0:
            ratio = met = None
            shown = "not measured"
        else:
            ratio = num / den
            met = ratio >= target if higher else ratio <= target
            shown = f"{f.format(num)} ÷ {f.format(den)} {unit}"
        print(f"| {what} | {shown} | "
              + ("—" if ratio is None else f"{ratio:.2f}×") + " | "
              + ("≥ " if higher else "≤ ") + f"{target:.2f}× | "
              + ("—" if met is None else "met" if met else "not met") + " |")
        out.append({"row": key, "what": what, "num": num, "den": den, "unit": unit,
                    "ratio": ratio, "target": target,
                    "target_is": "min" if higher else "max", "met": met})
    print()
    summary(out, fig)
    if tcp:
        print(f"TCP stream 192.0.2.11 → 192.0.2.12 ({tcp[1]}): {tcp[0]:.0f} MiB/s; "
              f"full sync sealed {sync:.0f} MiB/s = {sync / tcp[0]:.2f}× of it, "
              f"plain {sync_plain:.0f} MiB/s = {sync_plain / tcp[0]:.2f}×.")
    if disk:
        slower = min(disk, tcp[0]) if tcp else disk
        print(f"The disk (/var/tmp, a fresh {size // MIB} MiB file in 1 MiB writes, fdatasync "
              f"every 8 MiB, as the resync target writes): {disk:.0f} MiB/s; full sync sealed "
              f"= {sync / slower:.2f}× the slower of disk and network (DRBD's measure).")
    if db:
        print(f"MariaDB 10.11, datadir on the device's ext4, innodb_flush_log_at_trx_commit=1, "
              f"binary log off; {db['tool']}, from the client namespace, {db['seconds']} s each: "
              f"{db['replicated']:.0f} commits/s Connected (protocol C), "
              f"{db['peer_down']:.0f} StandAlone.")
    print()
    line = json.dumps({
        "part": "disk", "issue": 15, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": out,
        "figures": {"setups": rows, "full_sync_mib_s": {"sealed": sync, "plain": sync_plain},
                    "tcp_stream_mib_s": tcp[0] if tcp else None,
                    "tcp_tool": tcp[1] if tcp else None, "mariadb": db,
                    "disk_stream_mib_s": disk},
    }, ensure_ascii=False)
    print("issue15-json: " + line + "\n", flush=True)
    path = os.environ.get("HBD_BENCH_JSON")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
