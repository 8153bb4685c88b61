"""Runbook search: our TF-IDF (aiops.triage.tfidf, numpy) against scikit-learn's TfidfVectorizer.

Both index the shipped runbooks with the same settings (sublinear tf,
unigrams and bigrams, smooth idf, l2 rows); ours uses its own stop-word list.
The queries are ``aiops.testing.runbook_queries``: the README's alerts, the
triage tests' alert names and every group of bench/triage.py's alert storm
(seeds 0-2). Prints how often the top runbook (and the top 3 in order) agree,
the score differences, the same with scikit-learn's stop words (the
weighting alone), and the time per query. Needs scikit-learn (dev install).

    .venv/bin/python bench/runbook_search.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from aiops.testing.runbook_queries import runbook_queries  # noqa: E402
from aiops.triage.enrich import DEFAULT_RUNBOOKS_DIR, RunbookIndex, runbook_document  # noqa: E402
from aiops.triage.tfidf import STOP_WORDS, TfidfIndex  # noqa: E402


def top(scores, k: int, min_score: float = 0.05) -> list[int]:
    return [i for i in sorted(range(len(scores)), key=lambda i: -scores[i]) if scores[i] >= min_score][:k]


def compare(ours, theirs, queries) -> dict:
    top1 = top3 = found = 0
    diffs, top_diffs = [], []
    for _label, query in queries:
        a, b = ours(query), theirs(query)
        top1 += top(a, 1) == top(b, 1)
        top3 += top(a, 3) == top(b, 3)
        found += bool(top(b, 1))
        diffs.append(float(np.abs(a - b).max()))
        if top(b, 1):
            top_diffs.append(abs(float(a[top(b, 1)[0]] - b[top(b, 1)[0]])))
    return {"queries": len(queries), "found": found, "top1": top1, "top3": top3, "max_diff": max(diffs),
            "mean_diff": statistics.mean(diffs), "top_score_diff": max(top_diffs)}


def per_query_us(score, queries, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _label, query in queries:
            score(query)
        best = min(best, (time.perf_counter() - started) / len(queries) * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    queries = runbook_queries()
    documents = [runbook_document(r) for r in RunbookIndex.from_folder(DEFAULT_RUNBOOKS_DIR).runbooks]

    def sklearn(stop_words):
        started = time.perf_counter()
        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), stop_words=stop_words)
        matrix = vectorizer.fit_transform(documents)
        build_ms = (time.perf_counter() - started) * 1000
        return (lambda q: (matrix @ vectorizer.transform([q]).T).toarray().ravel()), build_ms

    started = time.perf_counter()
    ours = TfidfIndex(documents)
    ours_build_ms = (time.perf_counter() - started) * 1000
    theirs, theirs_build_ms = sklearn("english")
    print(f"{len(documents)} runbooks, {len(queries)} distinct queries; our stop words {len(STOP_WORDS)}, "
          f"scikit-learn's {len(ENGLISH_STOP_WORDS)} (shared {len(STOP_WORDS & ENGLISH_STOP_WORDS)})\n")
    rows = [("ours vs scikit-learn (each its own stop words)", compare(ours.scores, theirs, queries)),
            ("ours with scikit-learn's stop words vs scikit-learn",
             compare(TfidfIndex(documents, frozenset(ENGLISH_STOP_WORDS)).scores,
                     sklearn(sorted(ENGLISH_STOP_WORDS))[0], queries))]
    for name, r in rows:
        print(f"{name}:\n  same top runbook {r['top1']}/{r['queries']} (a runbook found for {r['found']}), "
              f"same top 3 in order {r['top3']}/{r['queries']}; cosine difference max {r['max_diff']:.4f}, "
              f"mean of per-query max {r['mean_diff']:.4f}, at the top runbook max {r['top_score_diff']:.4f}")
    print(f"\nindex build: ours {ours_build_ms:.1f} ms, scikit-learn {theirs_build_ms:.1f} ms; per query (best of "
          f"{args.repeat}): ours {per_query_us(ours.scores, queries, args.repeat):.0f} µs, scikit-learn "
          f"{per_query_us(theirs, queries, args.repeat):.0f} µs")


if __name__ == "__main__":
    main()
