"""Issue 15's table: every performance target in one place, filled in by the
parts of `scripts/bench` that measure it, printed at the end of the run.

Each part calls `record(key, now, target, met, detail)` for the rows it
measured; `table()` prints the rows of this run in the issue's order (rows
no part measured say so). Records also go, one JSON object per line, to the
file named by `HBD_BENCH_SUMMARY` when it is set, so a run's figures can be
collected by other tools.
"""
import json, os

# (key, what, target) in the order.
ROWS = (
    ("seq", "seq 1 MiB writes, replicated ÷ hbd-disk with the peer down", "≥ 0.70×"),
    ("fuse", "hbd-disk with the peer down ÷ plain loop device (seq 1 MiB)", "≥ 0.80×"),
    ("rand", "random 4 KiB write IOPS, replicated ÷ peer down", "≥ 0.60×"),
    ("fsync", "4 KiB write+fsync latency, replicated ÷ peer down (mean / p99)", "≤ 1.5×"),
    ("mariadb", "MariaDB commits/s (flush_log_at_trx_commit=1), replicated ÷ peer down", "≥ 0.70×"),
    ("sync", "full initial sync ÷ one TCP stream between the namespaces", "≥ 0.80×"),
    ("crash", "crash failover, kill → VIP answers, 10ms/50ms, default settings", "≤ deadtime + 30 ms"),
    ("switchover", "planned switchover outage (`hbctl standby`), default settings", "≤ 20 ms"),
    ("stack", "seed 002 full stack, crash → client served (deadtime 2 s)", "≤ deadtime + 0.5 s"),
    ("falsefail", "false deaths at 5ms/25ms, two CPU hogs", "0"),
    ("vrrp_idle", "idle CPU, VRRP master at advert 1 s, hbd ÷ keepalived", "≤ 1×"),
)

_records = {}


def record(key, now, met, detail="", heartbeat=""):
    """One row's figure of this run: `now` as printed, `met` True/False,
    `detail` the raw figures behind a ratio, `heartbeat` the comparable
    figure of heartbeat 3.0.6 / keepalived 2.2.7 where there is one."""
    targets = {k: t for k, _, t in ROWS}
    if key not in targets:
        raise KeyError(f"summary: unknown row {key!r}")
    rec = {"key": key, "now": now, "target": targets[key], "met": bool(met),
           "detail": detail, "baseline": heartbeat}
    _records[key] = rec
    path = os.environ.get("HBD_BENCH_SUMMARY")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(rec) + "\n")


def table():
    """Print the issue's table for the rows this run measured (nothing if
    none)."""
    if not _records:
        return
    print("\nIssue 15's targets, this run:\n")
    print("| what | this run | detail | heartbeat / keepalived | target | met |")
    print("|---|---|---|---|---|---|")
    for key, what, target in ROWS:
        r = _records.get(key)
        if r is None:
            print(f"| {what} | not measured in this run | | | {target} | |")
            continue
        print(f"| {what} | {r['now']} | {r['detail']} | {r['baseline']} | {target} | "
              f"{'yes' if r['met'] else '**no**'} |")
