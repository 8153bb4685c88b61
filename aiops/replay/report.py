"""Entry points shared by the HTTP API and the CLI: replay from the store or from CSV files,
the JSON report, and the files the CLI writes."""
from __future__ import annotations

import json
import os
import re
from typing import Callable

from aiops.replay.config import replay_settings
from aiops.replay.core import ReplayConfig, ReplayResult, run_replay
from aiops.replay.data import IncidentMeta, ReplayInputError, load_incidents_csv, load_metrics_csv, merge_series
from aiops.replay.narrative import replay_facts, write_narrative
from aiops.replay.plots import metric_png, timeline_png
from aiops.replay.source import load_from_store
from aiops.store.database import Database
from llm.features import write_feature


def replay_from_store(db: Database, incident: dict, settings: dict,
                      metric_points: Callable[[list[str], float, float], dict] | None = None) -> ReplayResult:
    """Replay a stored incident (``incident_record``'s answer) from the spans of ``db`` and the
    pushed metrics ``metric_points`` reads. Raises InsufficientHistory, or ValueError when
    nothing was stored around it."""
    replay = replay_settings(settings)
    config = replay.replay_config()
    meta, series = load_from_store(db, incident, replay.history_s, config.margin_s,
                                   config.step_s, metric_points)
    if not series:
        raise ValueError(f"incident {incident['id']} has no stored spans or pushed metrics for its routes "
                         f"({', '.join(meta.services)}) around {meta.start_s:.0f}")
    return run_replay(meta, series, config)


def replay_from_csv(metadata_path: str, baseline_path: str, actual_path: str, incident_id: str | None = None,
                    config: ReplayConfig = ReplayConfig()) -> ReplayResult:
    """Replay one incident of ``incident_metadata.csv`` (``incident_id``, or the only one)."""
    incidents = load_incidents_csv(metadata_path)
    incident = _pick(incidents, incident_id, metadata_path)
    default_service = incident.services[0]
    baseline = load_metrics_csv(baseline_path, default_service=default_service)
    actual = load_metrics_csv(actual_path, default_service=default_service)
    return run_replay(incident, merge_series(baseline, actual), config)


def _pick(incidents: list[IncidentMeta], incident_id: str | None, path: str) -> IncidentMeta:
    ids = [i.incident_id for i in incidents]
    if incident_id is None:
        if len(incidents) == 1:
            return incidents[0]
        raise ReplayInputError(f"{path}: holds {len(incidents)} incidents; choose one with --incident "
                               f"({', '.join(ids)})")
    for i in incidents:
        if i.incident_id == incident_id:
            return i
    raise ReplayInputError(f"{path}: no incident {incident_id!r} (incidents: {', '.join(ids)})")


def report(result: ReplayResult, points: bool = True, llm=None) -> dict:
    """The JSON report: the replay, its facts and the narrative, written by
    ``llm`` (an ``llm.LLMWriter``) when given, else (or when the model fails)
    by the deterministic ``write_narrative``; the narrative says which."""
    facts = replay_facts(result)
    if llm is None:
        narrative = {"source": "template", "model": None, "markdown": write_narrative(facts)}
    else:
        doc = write_feature(llm, "replay_narrative", facts, write_narrative)
        narrative = {"source": doc.source, "model": doc.model, "latency_ms": round(doc.latency_ms, 2),
                     "usage": doc.usage, "fallback_reason": doc.fallback_reason, "markdown": doc.text}
    return {**result.to_dict(points), "narrative": narrative, "facts": facts}


def plot_name(service: str, metric: str) -> str:
    """File name of a metric's plot: ``replay_<service>_<metric>.png`` with unsafe characters as ``_``."""
    return "replay_" + re.sub(r"[^A-Za-z0-9.-]+", "_", f"{service}_{metric}").strip("_") + ".png"


def write_outputs(result: ReplayResult, out_dir: str, llm=None) -> dict:
    """Write ``replay.json``, ``replay.md``, ``replay_timeline.png`` and one PNG per metric; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    body = report(result, llm=llm)
    paths = {"json": os.path.join(out_dir, "replay.json"), "markdown": os.path.join(out_dir, "replay.md"),
             "timeline": os.path.join(out_dir, "replay_timeline.png"), "metrics": []}
    with open(paths["json"], "w", encoding="utf-8") as handle:
        json.dump(body, handle, indent=2)
        handle.write("\n")
    with open(paths["markdown"], "w", encoding="utf-8") as handle:
        handle.write(body["narrative"]["markdown"])
    with open(paths["timeline"], "wb") as handle:
        handle.write(timeline_png(result))
    for m in result.metrics:
        path = os.path.join(out_dir, plot_name(m.service, m.metric))
        with open(path, "wb") as handle:
            handle.write(metric_png(result, m))
        paths["metrics"].append(path)
    return paths
