#!/usr/bin/env python3
"""Where a slow pod creation's time went: inside kube-apiserver or on the way to it.

Sets the apiserver bench's own record of each creation (VTW_APISERVER_CREATIONS,
benches/https_load.rs: pod name, condition, nanoseconds as the client saw them)
beside the apiserver's audit log (each creation's requestReceivedTimestamp and
ResponseComplete stageTimestamp, microseconds), per condition; then lists when
the slowest 3% of creations arrived, which shows a period if there is one.

    python3 docs/experiments/audit_split.py AUDIT_LOG CREATIONS_TSV

docs/performance.md, "Through the apiserver: the apiserver's 10-second stall",
says how the two files were made.
"""
import bisect
import collections
import datetime
import json
import sys


def seconds(stamp):
    when = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    return when.replace(tzinfo=datetime.timezone.utc).timestamp()


def quantile(values, q):
    values = sorted(values)
    rank = max(1, min(len(values), int(-(-q * len(values) // 1))))  # nearest rank
    return values[rank - 1]


def main(audit_path, creations_path):
    inside = {}  # pod name -> (arrival s, ms inside the apiserver)
    with open(audit_path) as audit:
        for line in audit:
            event = json.loads(line)
            name = event.get("objectRef", {}).get("name", "")
            if event.get("stage") != "ResponseComplete" or not name.startswith("bench-"):
                continue
            start = seconds(event["requestReceivedTimestamp"])
            inside[name] = (start, (seconds(event["stageTimestamp"]) - start) * 1e3)
    rows = collections.defaultdict(list)
    with open(creations_path) as creations:
        for line in creations:
            name, condition, ns = line.rstrip("\n").split("\t")
            if ns != "failed" and name in inside:
                client = int(ns) / 1e6
                rows[condition].append((client, inside[name][1]))
    print("| condition | creations | client p50 / p99 ms | inside the apiserver p50 / p99 ms "
          "| the rest p50 / p99 ms | inside, of the slowest 1% |")
    print("|---|---:|---|---|---|---:|")
    for condition, row in rows.items():
        client = [c for c, _ in row]
        apiserver = [a for _, a in row]
        rest = [c - a for c, a in row]
        slowest = [r for r in row if r[0] >= quantile(client, 0.99)]
        share = sum(a for _, a in slowest) / sum(c for c, _ in slowest)
        print(f"| {condition} | {len(row)} | {quantile(client, .5):.2f} / {quantile(client, .99):.2f} "
              f"| {quantile(apiserver, .5):.2f} / {quantile(apiserver, .99):.2f} "
              f"| {quantile(rest, .5):.2f} / {quantile(rest, .99):.2f} | {share:.0%} |")
    arrivals = sorted(inside.values())
    times = [t for t, _ in arrivals]
    threshold = quantile([ms for _, ms in arrivals], 0.97)
    slow = [i for i, (_, ms) in enumerate(arrivals) if ms >= threshold]

    def neighbours_slow(i, window):
        lo = bisect.bisect_left(times, times[i] - window)
        hi = bisect.bisect_right(times, times[i] + window)
        near = [j for j in range(lo, hi) if j != i]
        return sum(arrivals[j][1] >= threshold for j in near) / max(1, len(near))

    around_slow = sum(neighbours_slow(i, 0.15) for i in slow) / len(slow)
    around_any = sum(neighbours_slow(i, 0.15) for i in range(len(arrivals))) / len(arrivals)
    print(f"\nslowest 3% inside the apiserver: {threshold:.2f} ms or more; of the creations within "
          f"150 ms of one of them {around_slow:.1%} are too (of any creation's, {around_any:.1%})")
    print("when (s after the first creation) : ms inside the apiserver")
    print(" ".join(f"{times[i] - times[0]:.1f}:{arrivals[i][1]:.0f}" for i in slow))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
