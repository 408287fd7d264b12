"""hbd's benchmarks, run as `scripts/bench` (see cli.py for what each part
measures, or `scripts/bench --help`).

Modules:

- cli: the options, main(), the order of the parts, the leftovers check;
- common: paths, this run's lab prefix and key, the lab, processes, timing
  offsets, CPU and memory, hbd's log lines, number formats;
- clusters: hbd's and heartbeat's two-node clusters, with and without the
  VIP group (echo servers, the client's probe);
- detection (parts 1, 2), failover (3, 4), monitor (5), disk (6), vrrp (7),
  falsefail, stack: one part each;
- summary: issue 15's table, fed by the parts, printed at the end.
"""
