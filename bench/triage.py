"""Alert triage: throughput and noise reduction on a seeded alert storm with ground-truth groups.

Every notification of the storm (aiops.alert_storm: OOM crash loops,
slow callees with timing-out callers, CPU saturation, certificate and disk
warnings, each re-sent every 60 s while it fires) goes through intake, dedup,
classification and correlation. Compared in the same run with the naive peer
Alertmanager's own grouping: by (alertname, service), a group ending after
5 minutes of silence.

Grouping quality is pairwise precision/recall over notifications: of the pairs
put in one group, how many share a root-cause episode (precision), and of the
pairs that share an episode, how many were put together (recall).

    .venv/bin/python bench/triage.py [--seeds 3] [--episodes 200] [--batch 50]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from aiops.testing.alert_storm import naive_groups, pair_scores, storm  # noqa: E402
from aiops.triage.correlate import TriageConfig, triage  # noqa: E402
from aiops.triage.store import TriageStore  # noqa: E402


def run_pure(s, batch: int):
    """In memory: the algorithms alone. Returns (group of each notification, groups, records, seconds)."""
    records, groups, n = {}, {}, [0]

    def new_id(kind):
        n[0] += 1
        return f"{kind}-{n[0]}"
    group_of = []
    started = time.perf_counter()
    for i in range(0, len(s.alerts), batch):
        chunk = s.alerts[i:i + batch]
        result = triage(chunk, [r for r in records.values() if r.status == "firing" or r.group_id in groups],
                        [g for g in groups.values() if g.status == "open"], TriageConfig(), chunk[-1].at, new_id,
                        edges=s.edges)
        records.update({r.id: r for r in result.records})
        for g in result.groups:
            groups[g.id] = g
        for o in result.outcomes:
            group_of.append(o.get("group_id"))
        # drop closed groups from the working set, as the store does (only open groups are loaded)
        for gid in [g for g, v in groups.items() if v.status != "open"]:
            groups.pop(gid)
    elapsed = time.perf_counter() - started
    return group_of, len({g for g in group_of if g}), len(records), elapsed


def canonical(labels: list) -> list:
    """Group labels renamed by first appearance (so two runs with different ids compare equal)."""
    names: dict = {}
    return [names.setdefault(x, len(names)) if x is not None else None for x in labels]


def run_store(s, batch: int, path: str):
    """Through the SQLite store, one transaction per batch, as the API does."""
    store = TriageStore(path)
    group_of = []
    started = time.perf_counter()
    for i in range(0, len(s.alerts), batch):
        chunk = s.alerts[i:i + batch]
        with store.transaction():
            records, groups = store.open_state()
            result = triage(chunk, records, groups, TriageConfig(), chunk[-1].at, store.next_id, edges=s.edges)
            store.save(result.records, result.groups)
        group_of += [o.get("group_id") for o in result.outcomes]
    elapsed = time.perf_counter() - started
    store.db.close()
    return group_of, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=200, help="root-cause episodes per storm (over 24 h)")
    parser.add_argument("--batch", type=int, default=50, help="notifications per intake call")
    args = parser.parse_args()
    rows = []
    for seed in range(args.seeds):
        s = storm(seed, episodes=args.episodes, duration_s=24 * 3600.0)
        ours, n_groups, n_records, pure_s = run_pure(s, args.batch)
        with tempfile.TemporaryDirectory() as tmp:
            stored, store_s = run_store(s, args.batch, os.path.join(tmp, "triage.db"))
        assert canonical(stored) == canonical(ours), "the store-backed run must group exactly like the in-memory run"
        naive = naive_groups(s.alerts)
        q_ours, q_naive = pair_scores(ours, s.episode_of), pair_scores(naive, s.episode_of)
        rows.append({"seed": seed, "notifications": len(s.alerts), "episodes": len(s.episodes),
                     "records": n_records, "groups": n_groups, "naive_groups": len(set(naive)),
                     "pure_per_s": len(s.alerts) / pure_s, "store_per_s": len(s.alerts) / store_s,
                     "ours": q_ours, "naive": q_naive})
    print(f"alert storm: {args.episodes} root-cause episodes over 24 h per seed, batches of {args.batch}\n")
    print(f"{'seed':>4} {'notif':>6} {'after dedup':>11} {'groups':>6} {'naive groups':>12} "
          f"{'noise red.':>10} {'naive red.':>10} {'P':>5} {'R':>5} {'naive P':>7} {'naive R':>7} "
          f"{'alerts/s mem':>12} {'alerts/s sqlite':>15}")
    for r in rows:
        print(f"{r['seed']:>4} {r['notifications']:>6} {r['records']:>11} {r['groups']:>6} {r['naive_groups']:>12} "
              f"{1 - r['groups'] / r['notifications']:>10.3f} {1 - r['naive_groups'] / r['notifications']:>10.3f} "
              f"{r['ours']['precision']:>5.3f} {r['ours']['recall']:>5.3f} {r['naive']['precision']:>7.3f} "
              f"{r['naive']['recall']:>7.3f} {r['pure_per_s']:>12,.0f} {r['store_per_s']:>15,.0f}")

    def mean(f):
        return statistics.mean(f(r) for r in rows)
    print(f"\nmean: groups per episode ours {mean(lambda r: r['groups'] / r['episodes']):.2f}, "
          f"naive {mean(lambda r: r['naive_groups'] / r['episodes']):.2f}; "
          f"pairwise F1 ours {mean(lambda r: r['ours']['f1']):.3f}, naive {mean(lambda r: r['naive']['f1']):.3f}; "
          f"recall ours/naive {mean(lambda r: r['ours']['recall']) / mean(lambda r: r['naive']['recall']):.2f}x; "
          f"throughput {mean(lambda r: r['pure_per_s']):,.0f} alerts/s in memory, "
          f"{mean(lambda r: r['store_per_s']):,.0f} alerts/s through SQLite")


if __name__ == "__main__":
    main()
