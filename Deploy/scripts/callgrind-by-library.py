#!/usr/bin/env python3
"""Where a phase's instructions went, by library (and by Swift module inside our binary): a callgrind dump kept by
`ORCHARD_BENCH_CALLGRIND_KEEP=<folder> ./Deploy/bench-enrollment.sh instructions`, read with callgrind_annotate.
    Deploy/scripts/callgrind-by-library.py <folder>/Idlenocommand.checkin-gateway.out 200   (200: the phase's requests)
Self cost only. Lines callgrind charges to `clone`/`start_thread` are left out: they are what ran in frames entered
before the counters were zeroed, which callgrind cannot place (their sum is about the idle work the benchmark
subtracts)."""
import collections, re, signal, subprocess, sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # piped into head: stop quietly

dump, requests = sys.argv[1], float(sys.argv[2])
out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", dump],
                     capture_output=True, text=True, check=True).stdout
binary = sys.argv[3] if len(sys.argv) > 3 else "checkin-gateway"
total, cost = 0, collections.Counter()
for line in out.splitlines():
    m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?):(.*) \[(.*)\]$", line)
    if not m or m.group(3) in ("clone", "start_thread"):
        continue
    ir, symbol, obj = int(m.group(1).replace(",", "")), m.group(3), m.group(4).split("/")[-1]
    total += ir
    if obj == binary:
        mangled = re.match(r"\$s(\d+)(\w+)", symbol)
        cost[f"{binary}: " + (mangled.group(2)[: int(mangled.group(1))] if mangled else "other")] += ir
    else:
        cost[obj] += ir
print(f"{dump}: {total / requests / 1000:.0f}k instructions per request")
for name, ir in cost.most_common(20):
    print(f"  {ir / requests / 1000:8.0f}k  {100 * ir / total:5.1f}%  {name}")
