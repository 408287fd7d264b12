"""hbd benchmarks, side by side with heartbeat 3.0.6, in the netns
lab (as root):

    scripts/bench [--trials N] [--idle-seconds S] [--stack-trials N] [--skip-heartbeat]
                  [--only detection|idle|failover|crash|switchover|monitor ...]

--only PART runs one part (repeatable; default: all): detection (1),
idle (2), crash (3), switchover (4), monitor (5), disk (6), vrrp (7),
falsefail and stack (scripts/hbdbench/falsefail.py and stack.py: false
failovers under load vs heartbeat, scenario 1's full-stack takeover split by
resource), corosync (scripts/hbdbench/corosync.py: crash failover with hbd on
Corosync at several token timeouts beside hbd's own membership), pacemaker
(scripts/hbdbench/pacemaker.py: the same crash failover with Pacemaker 2.1
running the VIP as ocf:heartbeat:IPaddr2 on Corosync, token 3000 and 1000 ms);
failover =
crash and switchover, e.g.
`scripts/bench --only failover --trials 10`.

Both programs run in the same topology (scripts/lab: two nodes on one bridge,
`bcast eth0`) with the same keepalive/deadtime settings, one program at a time.

1. Crash detection: SIGKILL every process of one node's daemon and measure the
   time until the other node declares it dead, for several keepalive/deadtime
   settings. t0 is taken right before the kill. Trial i of N starts n2 a
   fraction of a keepalive after n1 and kills (i + 0.5)/N keepalives later
   than the earliest kill, so both timer phases are spread over a keepalive.
   heartbeat's n2 runs >= 10 s before the kill (a node started < ~5 s ago
   advertises deadtime + 2 s).
   - hbd: the "node dead" log line's own (microsecond) timestamp.
   - heartbeat: its logfile is a FIFO read by a thread of this script; the
     time is when the master's "node n2: is dead" line arrives in the pipe.
     With use_logd no the master writes it itself as it marks the node dead,
     so the resolution is the reader's wake-up latency (well under 1 ms;
     `cl_status nodestatus n2` turned "dead" within ~2 ms of it). heartbeat's
     own log timestamps have 1 s resolution and are not used.
2. Idle footprint of n1 in an idle two-node cluster: CPU (% of one core, from
   /proc/PID/task/*/schedstat, nanoseconds) and RSS/PSS, summed over all of
   the node's daemon processes (hbd: 1, heartbeat: 4).
3. Crash failover: the VIP group `n1 IPaddr2::192.0.2.50/24/eth0:0` runs on
   n1 (auto_failback on); n1's machine dies: SIGKILL of its daemon's
   processes and of its echo server, then its link is cut at the switch
   (`scripts/lab link NAME n1 0 down`). t0 is taken right before the kill;
   the time runs until the VIP answers the client from n2. Each node runs a
   UDP echo server bound to the VIP (IP_FREEBIND) that answers "NODE SEQ";
   the client namespace (192.0.2.100) sends to the VIP every 10 ms and
   stamps each answer on arrival (the resolution is the 10 ms probe
   interval). Phases are spread as in 1; initdead 5 for both programs
   (heartbeat's value; initdead = deadtime lets a node start the group
   alone a few ms before its peer appears). hbd with its default
   duplicate-address probe (arp_probe = "30ms": probing begins when the
   holder's heartbeats are late, warntime, so that the answer is in when
   it is declared dead) and, at 10ms/50ms, also with arp_probe = "200ms"
   (the default before issue 15), "rfc5227" (RFC 5227's own timing, 2-7 s)
   and "0s" (no probe) (cluster.toml [resource_defaults]), and hbd's
   breakdown from n2's log:
   kill → "node dead", "node dead" → IPaddr2's "address added", added →
   first answer.
4. Planned switchover at keepalive 1 / deadtime 3: `hbctl standby all` /
   heartbeat's `hb_standby all` (run in n1's namespaces with nsenter) on
   the holder n1, N times in one cluster; between trials (not timed)
   `hbctl takeover all` / `hb_takeover all` on n1 brings the VIP back.
   Outage: last answer from n1 (or the command, if later) → first answer
   from n2. And command → first answer from n2. hbctl standby returns when
   the group runs on n2; hb_standby returns at once. hbd adds the address
   without a duplicate-address probe when the holder reported the group
   stopped (it released the address), whatever arp_probe says: the rows
   with "200ms" and "rfc5227" show it.
5. Monitoring (hbd only; heartbeat needs mon for it): the VIP group ends in
   `mon` with a process check of each node's echo server (pid file,
   interval 1 s, fall 2, action move); the holder's echo server is killed
   (spread over the check interval) → the VIP answers from the peer. And the
   CPU of the holder's hbd with 0 and 100 tcp checks (a local listener) at
   1 s intervals, over max(10, --idle-seconds) seconds.
6. The replicated disk (scripts/hbdbench/disk.py): fio throughput and fsync
   latency through hbd-disk (replicated and with the peer down) vs a plain
   kernel loop device on the same disk; full resync throughput; promote and
   promote + mount ext4 times.

heartbeat is installed with apt-get when missing (Debian), unless
--skip-heartbeat. Prints Markdown tables for docs/BENCHMARKS.md. Never run
from CI.
"""
import argparse, os, platform, signal, subprocess, sys, time

from . import disk, falsefail, stack, summary, vrrp
from .clusters import ensure_heartbeat, heartbeat_version
from .common import LAB, PREFIX, REPO, sh
from .corosync import corosync_table
from .detection import detection_table, idle_table
from .failover import failover_table, switchover_table
from .monitor import monitor_table
from .pacemaker import pacemaker_table


def check_clean():
    """Nothing of this run may survive it: no lab, no heartbeat mount."""
    left = [l.split()[0] for l in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                 text=True).stdout.splitlines()
            if l.startswith(PREFIX)]
    with open("/proc/mounts") as f:
        mounts = sum("heartbeat" in l for l in f)
    if left or mounts:
        print(f"bench: leftovers: namespaces {left}, {mounts} heartbeat mounts", file=sys.stderr)


PARTS = ("detection", "idle", "failover", "crash", "switchover", "monitor", "disk", "vrrp",
         "falsefail", "stack", "corosync", "pacemaker")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--idle-seconds", type=int, default=30)
    ap.add_argument("--stack-trials", type=int, default=3,
                    help="trials of the stack part (each a whole scripts/demo)")
    ap.add_argument("--skip-heartbeat", action="store_true",
                    help="measure hbd only (and don't install heartbeat)")
    ap.add_argument("--only", action="append", choices=PARTS,
                    help="run only this part (repeatable; default: all). failover = "
                         "crash failover and planned switchover")
    args = ap.parse_args()
    parts = [p for p in PARTS if p in (args.only or PARTS)
             or (p in ("crash", "switchover") and "failover" in (args.only or ()))]
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (network namespaces)")
    # Ctrl-C and SIGTERM unwind, so every cluster's finally: cleans up
    # (SIGINT too, even when started in the background with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sh("cargo", "build", "--release", "--quiet", "--bins", cwd=REPO)
    if not args.skip_heartbeat:
        ensure_heartbeat()
    sh(LAB, "gc")

    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"kernel {platform.release()}, {time.strftime('%Y-%m-%d')}")
    print(f"command: scripts/bench --trials {args.trials}"
          + (f" --idle-seconds {args.idle_seconds}" if "idle" in parts or "vrrp" in parts
             or "falsefail" in parts else "")
          + (f" --stack-trials {args.stack_trials}" if "stack" in parts else "")
          + "".join(f" --only {o}" for o in (args.only or ()))
          + (" --skip-heartbeat" if args.skip_heartbeat else "")
          + ("" if args.skip_heartbeat else "; heartbeat " + heartbeat_version()) + "\n")
    try:
        if "detection" in parts:
            detection_table(args)
        if "idle" in parts:
            idle_table(args)
        if "crash" in parts:
            failover_table(args)
        if "switchover" in parts:
            switchover_table(args)
        if "monitor" in parts:
            monitor_table(args)
        if "disk" in parts:
            disk.disk_tables(args, PREFIX + "disk")
        if "vrrp" in parts:
            vrrp.vrrp_tables(args, PREFIX + "vrrp")
        if "falsefail" in parts:
            falsefail.falsefail_table(args, PREFIX)
        if "stack" in parts:
            stack.stack_table(args)
        if "corosync" in parts:
            corosync_table(args)
        if "pacemaker" in parts:
            pacemaker_table(args)
        summary.table()
    finally:
        check_clean()
