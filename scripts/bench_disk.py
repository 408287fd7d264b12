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
"""
import json, os, shutil, socket, statistics, struct, subprocess, sys, tempfile, time

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


def workloads(dev, runtime):
    seq = fio(dev, "seq", ["--rw=write", "--bs=1M", "--ioengine=libaio", "--iodepth=16"], runtime)
    rnd = fio(dev, "rand", ["--rw=randwrite", "--bs=4k", "--ioengine=libaio", "--iodepth=16"],
              runtime)
    syn = fio(dev, "fsync", ["--rw=write", "--bs=4k", "--ioengine=psync", "--fsync=1"], runtime)
    lat = syn["sync"]["lat_ns"]
    pct = lat.get("percentile", {})
    return {
        "seq_mib_s": seq["write"]["bw_bytes"] / MIB,
        "rand_iops": rnd["write"]["iops"],
        "fsync_ms": lat["mean"] / 1e6,
        "fsync_p99_ms": float(pct.get("99.000000", lat["mean"])) / 1e6,
        "fsync_ops": syn["write"]["iops"],
    }


class Pair:
    """Two hbd-disk processes in a two-node lab."""

    def __init__(self, lab, hbctl, hbd_disk, size, lab_up, lab_down, tls=True):
        self.lab, self.hbctl, self.bin, self.size = lab, hbctl, hbd_disk, size
        self.lab_down = lab_down
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
            subprocess.run([hbctl, "disk", "--config", d, "--node", f"n{i}", "create-md", "r0"],
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
        self.lab_down(self.lab)
        shutil.rmtree(self.dir, ignore_errors=True)


def plain_loop(path):
    return subprocess.run(["losetup", "--direct-io=on", "-f", "--show", path], check=True,
                          capture_output=True, text=True).stdout.strip()


def disk_tables(args, lab, hbctl, hbd_disk, lab_up, lab_down):
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

    p = Pair(lab, hbctl, hbd_disk, size, lab_up, lab_down)
    try:
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
    finally:
        p.close()

    # The same replicated device with the link left plain (tls no): the
    # cost of sealing every frame (AES-256-GCM) in one run.
    p = Pair(lab, hbctl, hbd_disk, size, lab_up, lab_down, tls=False)
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
