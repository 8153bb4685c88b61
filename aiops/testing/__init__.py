"""Seeded generators that return their ground truth, for tests and benchmarks: synthetic spans with
faults, alert storms, the replay sample, runbook queries."""
