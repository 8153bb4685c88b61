"""Trace-based root-cause analysis. Pure functions over span mappings.

1. Spans of the window become trace trees (parent/child span ids).
2. For each anomaly, the affected traces are those where its series failed,
   was slow, or timed out.
3. In each affected trace the culprit is found by walking down from the
   entry span: into the earliest failing child while there is one (the
   deepest failing span); for slowness into the child that explains at
   least half of its parent's excess latency (so a span whose own time
   explains the slowness stops the walk). A failing caller whose expected
   callee (per the dependency graph) is missing from the trace blames that
   callee: it never answered.
4. Anomalies whose culprits are the same series, or are linked through the
   dependency graph, form one finding; its confidence is the share of its
   affected traces whose culprit is the root cause.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from aiops.analysis.baseline import Baseline
from aiops.analysis.series import gave_up_waiting, is_timeout
from aiops.signals import Anomaly, SeriesKey

#: Share of a caller's traces that must contain a callee before its absence means "no response".
EXPECTED_CHILD_SHARE = 0.8
MAX_SAMPLE_TRACES = 5


@dataclass
class TraceNode:
    span: Mapping
    children: list["TraceNode"] = field(default_factory=list)

    @property
    def key(self) -> SeriesKey:
        return (self.span["service"], self.span["route"])

    @property
    def failing(self) -> bool:
        return bool(self.span["error"])

    def walk(self) -> Iterable["TraceNode"]:
        yield self
        for child in self.children:
            yield from child.walk()


def build_trees(spans: Iterable[Mapping]) -> dict[str, list[TraceNode]]:
    """trace_id -> its root nodes (spans whose parent is not in the set),
    children ordered by start time."""
    by_trace: dict[str, dict[str, TraceNode]] = {}
    for span in spans:
        by_trace.setdefault(span["trace_id"], {})[span["span_id"]] = TraceNode(span)
    trees: dict[str, list[TraceNode]] = {}
    for trace_id, nodes in by_trace.items():
        roots = []
        for node in nodes.values():
            parent = nodes.get(node.span["parent_span_id"]) if node.span["parent_span_id"] else None
            (parent.children if parent is not None else roots).append(node)
        for node in nodes.values():
            node.children.sort(key=lambda n: n.span["start_time"])
        roots.sort(key=lambda n: n.span["start_time"])
        trees[trace_id] = roots
    return trees


@dataclass
class DependencyGraph:
    """Caller -> callee edges between series, with call and error counts."""

    #: (caller, callee) -> [calls, calls with a failing callee, total ms from caller start to callee start]
    edges: dict[tuple[SeriesKey, SeriesKey], list[float]] = field(default_factory=dict)
    #: how many spans of each caller were seen (to tell how often it calls a callee)
    caller_spans: dict[SeriesKey, int] = field(default_factory=dict)

    def add_calls(self, node: TraceNode) -> None:
        """Count the calls ``node`` made (one per distinct callee)."""
        if not node.children:
            return
        self.caller_spans[node.key] = self.caller_spans.get(node.key, 0) + 1
        first_call: dict[SeriesKey, TraceNode] = {}
        for child in node.children:
            first_call.setdefault(child.key, child)
        for callee, child in first_call.items():
            counts = self.edges.setdefault((node.key, callee), [0, 0, 0.0])
            counts[0] += 1
            counts[1] += int(any(c.failing for c in node.children if c.key == callee))
            counts[2] += max(0.0, (child.span["start_time"] - node.span["start_time"]) * 1000.0)

    def add_tree(self, root: TraceNode) -> None:
        for node in root.walk():
            self.add_calls(node)

    def merge(self, other: "DependencyGraph") -> None:
        for edge, values in other.edges.items():
            counts = self.edges.setdefault(edge, [0, 0, 0.0])
            for i, value in enumerate(values):
                counts[i] += value
        for key, n in other.caller_spans.items():
            self.caller_spans[key] = self.caller_spans.get(key, 0) + n

    def callers_of(self, key: SeriesKey) -> set[SeriesKey]:
        return {caller for caller, callee in self.edges if callee == key}

    def callees_of(self, key: SeriesKey) -> set[SeriesKey]:
        return {callee for caller, callee in self.edges if caller == key}

    def ancestors(self, key: SeriesKey) -> list[SeriesKey]:
        """Transitive callers of ``key``, nearest first."""
        seen, order, frontier = {key}, [], [key]
        while frontier:
            nxt = []
            for k in frontier:
                for caller in sorted(self.callers_of(k)):
                    if caller not in seen:
                        seen.add(caller)
                        order.append(caller)
                        nxt.append(caller)
            frontier = nxt
        return order

    def expected_callees(self, key: SeriesKey) -> list[SeriesKey]:
        """Callees present in at least ``EXPECTED_CHILD_SHARE`` of the caller's
        calling spans, in the order the caller usually calls them."""
        total = self.caller_spans.get(key, 0)
        if not total:
            return []
        usual = [(offset / calls, callee) for (caller, callee), (calls, _, offset) in self.edges.items()
                 if caller == key and calls >= EXPECTED_CHILD_SHARE * total]
        return [callee for _, callee in sorted(usual)]

    def related(self, a: SeriesKey, b: SeriesKey) -> bool:
        """True when one is a transitive caller of the other."""
        return a == b or a in self.ancestors(b) or b in self.ancestors(a)

    def to_list(self) -> list[dict]:
        return [{"caller": {"service": c[0], "route": c[1]}, "callee": {"service": d[0], "route": d[1]},
                 "calls": int(calls), "errors": int(errors),
                 "error_ratio": round(errors / calls, 4) if calls else 0.0,
                 "mean_call_offset_ms": round(offset / calls, 2) if calls else 0.0}
                for (c, d), (calls, errors, offset) in sorted(self.edges.items())]


def graph_from_trees(trees: Mapping[str, list[TraceNode]]) -> DependencyGraph:
    graph = DependencyGraph()
    for roots in trees.values():
        for root in roots:
            graph.add_tree(root)
    return graph


@dataclass
class Culprit:
    """The series blamed in one trace, and why (``error``, ``latency``, ``no_response``)."""

    key: SeriesKey
    reason: str
    status: int | None
    node: TraceNode | None


def _excess_ms(node: TraceNode, baselines: Mapping[SeriesKey, Baseline]) -> float:
    baseline = baselines.get(node.key)
    expected = baseline.p50_ms if baseline is not None and baseline.requests else 0.0
    return node.span["duration_ms"] - expected


def missing_callees(node: TraceNode, graph: DependencyGraph) -> list[SeriesKey]:
    """Callees ``node`` nearly always calls that are absent from its trace."""
    present = {c.key for c in node.children}
    return [k for k in graph.expected_callees(node.key) if k not in present]


def find_culprit(root: TraceNode, baselines: Mapping[SeriesKey, Baseline], graph: DependencyGraph,
                 mode: str) -> Culprit:
    """The culprit of one trace, walking down from ``root``; ``mode`` is
    ``"error"`` (follow failures) or ``"latency"`` (follow excess time)."""
    node = root
    if mode == "error":
        while True:
            failing = [c for c in node.children if c.failing]
            if failing:
                node = failing[0]
                continue
            missing = missing_callees(node, graph)
            if missing and gave_up_waiting(node.span):
                return Culprit(missing[0], "no_response", None, None)
            return Culprit(node.key, "error", node.span["status_code"], node)
    while True:
        excess = _excess_ms(node, baselines)
        best, best_excess = None, 0.0
        for child in node.children:
            child_excess = _excess_ms(child, baselines)
            if child_excess > best_excess:
                best, best_excess = child, child_excess
        if best is None or excess <= 0 or best_excess < 0.5 * excess:
            missing = missing_callees(node, graph)
            if missing and excess > 0 and gave_up_waiting(node.span):  # it gave up on a callee that never answered
                return Culprit(missing[0], "no_response", None, None)
            return Culprit(node.key, "latency", node.span["status_code"], node)
        node = best


def chain_of(root: TraceNode) -> list[str]:
    """Routes of a trace in call order (depth first, by start time)."""
    return [n.span["route"] for n in root.walk()]


@dataclass
class Finding:
    """One root cause and the anomalies it explains."""

    root_cause: SeriesKey
    confidence: float
    reason: str
    anomalies: list[Anomaly]
    affected: list[SeriesKey]
    total_traces: int
    sample_traces: list[dict]
    description: str


def _affected_traces(anomaly: Anomaly, trees: Mapping[str, list[TraceNode]], graph: DependencyGraph,
                     slow_ms_of: Mapping[SeriesKey, float]):
    """(trace root, mode) of every trace in which ``anomaly``'s series misbehaved."""
    key = anomaly.key
    slow_ms = slow_ms_of.get(key, 0.0)
    callers = graph.callers_of(key)
    for roots in trees.values():
        for root in roots:
            for node in root.walk():
                if anomaly.type == "timeout" and node.key in callers and gave_up_waiting(node.span) \
                        and key not in {c.key for c in node.children}:
                    yield root, "error"
                    break
                if node.key != key:
                    continue
                if anomaly.type == "error_spike" and node.failing:
                    yield root, "error"
                    break
                if anomaly.type == "timeout" and is_timeout(node.span):  # a plain 500 is no evidence of a hang
                    yield root, "error"
                    break
                if anomaly.type == "latency_anomaly" and node.span["duration_ms"] >= slow_ms:
                    yield root, "latency"
                    break


def analyse(anomalies: list[Anomaly], trees: Mapping[str, list[TraceNode]],
            baselines: Mapping[SeriesKey, Baseline], graph: DependencyGraph, slow_ms_of: Mapping[SeriesKey, float],
            single_service: bool = True) -> list[Finding]:
    """Group ``anomalies`` by root cause (see the module docstring).
    ``slow_ms_of``: per series, the latency above which a request is slow."""
    per_anomaly = []
    for anomaly in anomalies:
        culprits: list[tuple[Culprit, TraceNode]] = []
        for root, mode in _affected_traces(anomaly, trees, graph, slow_ms_of):
            culprits.append((find_culprit(root, baselines, graph, mode), root))
        if culprits:
            top = Counter(c.key for c, _ in culprits).most_common(1)[0][0]
        else:
            top = anomaly.key
        per_anomaly.append((anomaly, top, culprits))

    # Group: the same root cause, or root causes linked by the dependency graph.
    groups: list[dict] = []
    for anomaly, top, culprits in sorted(per_anomaly, key=lambda t: -len(t[2])):
        for group in groups:
            if graph.related(top, group["root"]):
                group["members"].append((anomaly, culprits))
                group["keys"].add(anomaly.key)
                break
        else:
            groups.append({"root": top, "members": [(anomaly, culprits)], "keys": {anomaly.key, top}})

    findings = []
    for group in groups:
        # Re-vote over all traces of the group: the deepest agreed culprit wins.
        all_culprits: dict[str, tuple[Culprit, TraceNode]] = {}
        for _, culprits in group["members"]:
            for culprit, root in culprits:
                all_culprits.setdefault(root.span["trace_id"], (culprit, root))
        votes = Counter(c.key for c, _ in all_culprits.values())
        if votes:
            root_key, agreeing = votes.most_common(1)[0]
            confidence = agreeing / len(all_culprits)
            reasons = Counter(c.reason for c, _ in all_culprits.values() if c.key == root_key)
            reason = reasons.most_common(1)[0][0]
        else:
            root_key, confidence = group["root"], 0.5
            reason = "anomaly"
        members = [a for a, _ in group["members"]]
        affected = [root_key] + [k for k in graph.ancestors(root_key)
                                 if k in group["keys"] or any(k == n.key for _, r in all_culprits.values()
                                                              for n in r.walk())]
        for anomaly in members:
            if anomaly.key not in affected:
                affected.append(anomaly.key)
        samples = []
        for trace_id, (culprit, root) in list(all_culprits.items()):
            if culprit.key != root_key:
                continue
            samples.append({
                "trace_id": trace_id,
                "root_endpoint": culprit.key[1] if single_service else f"{culprit.key[0]} {culprit.key[1]}",
                "root_status": culprit.status,
                "entry_endpoint": root.span["route"],
                "entry_status": root.span["status_code"],
                "affected_chain": chain_of(root),
            })
            if len(samples) >= MAX_SAMPLE_TRACES:
                break
        findings.append(Finding(
            root_cause=root_key, confidence=round(confidence, 3), reason=reason, anomalies=members,
            affected=affected, total_traces=len(all_culprits), sample_traces=samples,
            description=_describe(root_key, reason, members, len(all_culprits), confidence),
        ))
    return findings


def _describe(root_key: SeriesKey, reason: str, anomalies: list[Anomaly], traces: int, confidence: float) -> str:
    own = [a for a in anomalies if a.key == root_key]
    if own:
        text = max(own, key=lambda a: a.score).description
    elif reason == "no_response":
        text = f"{root_key[1]} did not answer its callers (timeouts)"
    elif reason == "error":
        text = f"Errors originate in {root_key[1]}"
    else:
        text = f"Slowness originates in {root_key[1]}'s own processing time"
    if traces:
        text += f"; blamed in {round(confidence * traces)} of {traces} affected traces"
    return text


def metric_findings(anomalies: Iterable[Anomaly], findings: list[Finding]) -> list[Finding]:
    """``findings`` with anomalies that carry no trace evidence (a ``SignalSource``'s,
    such as pushed metrics) folded in: into the span finding of the same service
    when there is one, else one new finding per service whose root cause is its
    most significant series."""
    by_service: dict[str, list[Anomaly]] = {}
    for anomaly in anomalies:
        by_service.setdefault(anomaly.service, []).append(anomaly)
    out = list(findings)
    for service in sorted(by_service):
        group = sorted(by_service[service], key=lambda a: (-a.score, a.endpoint))
        host = next((f for f in findings if f.root_cause[0] == service), None)
        if host is not None:
            host.anomalies.extend(group)
            host.affected.extend(a.key for a in group if a.key not in host.affected)
            continue
        top = group[0]
        names = ", ".join(a.endpoint for a in group)
        out.append(Finding(
            root_cause=top.key, confidence=round(min(1.0, 0.5 + 0.1 * (len(group) - 1)), 3), reason="metric",
            anomalies=group, affected=[a.key for a in group], total_traces=0, sample_traces=[],
            description=f"{top.description}; {len(group)} metric(s) of {service} anomalous: {names}",
        ))
    return out
