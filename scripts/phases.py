#!/usr/bin/env python3
"""Where the time of one replicated operation goes, from a `palisade up` log.

Run the cluster with the phase events on, drive it one call at a time, then read the log:

    RUST_LOG=info,palisade::phase=trace palisade up --mode separate 2> phases.log
    palisade-bench suite --target sep=127.0.0.1:11111 --only latency --repeat 2 --out /tmp/l
    scripts/phases.py phases.log

The events (TRACE, target `palisade::phase`): the gateway's `submitted` and `agreed`
(request id, sequence), each agreement replica's `pre-prepare sent`, `commit sent` (it
prepared: TOCS §4.2) and `order pushed`, each execution replica's `execute` and
`committed` (synced: whether the commit was an fsynced one). For every batch that carried
exactly one request, the script takes the times of: the pre-prepare, the 2f+1-th commit
sent (the batch is then committed wherever those commits arrive), the first push, the
first and the (g+1)-th execution, the (g+1)-th commit, and the gateway's acceptance, each
measured from the request's submission; and prints their medians, separately for batches
that the execution replicas synced (writes) and those they did not (reads). The event
timestamps are the log lines' own, so tracing itself adds a little to every step.
"""

import re
import statistics
import sys
from collections import defaultdict

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LINE = re.compile(r"^(\S+?)Z\s+TRACE\s+(.*?)palisade::phase: (.+)$")
FIELD = re.compile(r"(\w+)=(\S+)")
EVENTS = ("submitted", "agreed", "pre-prepare sent", "commit sent", "order pushed",
          "execute", "committed")


def seconds(stamp):
    """Seconds since midnight of an RFC 3339 timestamp (one log never spans a day here)."""
    clock = stamp.split("T")[1]
    h, m, s = clock.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def parse(path):
    for raw in open(path, errors="replace"):
        m = LINE.match(ANSI.sub("", raw.rstrip("\n")))
        if not m:
            continue
        spans, rest = m.group(2), m.group(3)
        name = next((e for e in EVENTS if rest.startswith(e)), None)
        if name is None:
            continue
        fields = dict(FIELD.findall(rest[len(name):]))
        # Execution events name their node in the span (`execution{node=1 ...}`).
        if "node" not in fields:
            span = re.search(r"node=(\d+)", spans)
            if span:
                fields["node"] = span.group(1)
        yield seconds(m.group(1)), name, fields


def main(path):
    submitted, agreed = {}, {}
    per_seq = defaultdict(lambda: defaultdict(list))
    synced = {}
    agreement_nodes, execution_nodes = set(), set()
    for t, name, f in parse(path):
        if name == "submitted":
            submitted[f["request_id"]] = t
        elif name == "agreed":
            agreed[f["request_id"]] = (t, int(f["sequence"]))
        else:
            seq = int(f["sequence"])
            per_seq[seq][name].append(t)
            if name in ("pre-prepare sent", "commit sent", "order pushed"):
                agreement_nodes.add(f.get("node"))
            else:
                execution_nodes.add(f.get("node"))
            if name == "committed":
                synced[seq] = synced.get(seq, False) or f.get("synced") == "true"
    f = max((len(agreement_nodes) - 1) // 3, 0)
    g = max((len(execution_nodes) - 1) // 2, 0)
    by_seq = defaultdict(list)
    for rid, (_, seq) in agreed.items():
        by_seq[seq].append(rid)
    steps = [
        ("pre-prepare sent", lambda e: min(e["pre-prepare sent"])),
        (f"commit sent by {2 * f + 1}", lambda e: sorted(e["commit sent"])[2 * f]),
        ("first order pushed", lambda e: min(e["order pushed"])),
        ("first execute", lambda e: min(e["execute"])),
        (f"execute by {g + 1}", lambda e: sorted(e["execute"])[g]),
        (f"committed by {g + 1}", lambda e: sorted(e["committed"])[g]),
    ]
    rows = {True: defaultdict(list), False: defaultdict(list)}
    for seq, rids in by_seq.items():
        if len(rids) != 1 or rids[0] not in submitted or seq not in synced:
            continue
        t0 = submitted[rids[0]]
        e = per_seq[seq]
        try:
            offsets = [(label, step(e) - t0) for label, step in steps]
        except (ValueError, IndexError, KeyError):
            continue  # some event of this batch is missing from the log
        offsets.append(("agreed at the gateway", agreed[rids[0]][0] - t0))
        for label, dt in offsets:
            rows[synced[seq]][label].append(dt * 1e6)
    print(f"f = {f}, g = {g} (from the nodes in the log)")
    for kind, title in ((True, "synced batches (writes)"), (False, "unsynced batches (reads)")):
        r = rows[kind]
        n = len(next(iter(r.values()), []))
        print(f"\n{title}: {n} one-request batches; median µs after submission")
        previous = 0.0
        for label, _ in steps + [("agreed at the gateway", None)]:
            if not r[label]:
                continue
            med = statistics.median(r[label])
            print(f"  {label:24s} {med:8.0f}   (+{med - previous:.0f})")
            previous = med
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
