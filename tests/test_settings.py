"""Configuration is declared once: settings dataclasses agree with their keys, and no key name is
declared twice anywhere in the product."""
from __future__ import annotations

import dataclasses
import importlib
from collections import Counter
from pathlib import Path

import pytest
from flask import Flask

import aiops
import llm
import simulation
import telemetry
from aiops.extension import config_keys as aiops_config_keys
from simulation.api import SIMULATOR_CONFIG
from simulation.chaos import CHAOS_CONFIG
from simulation.configdoc import groups
from simulation.shop import DEMO_CONFIG, SERVE_CONFIG
from telemetry.config import config_keys, default_text, from_settings, read_config
from telemetry.extension import TELEMETRY_CONFIG


def _modules() -> list[str]:
    """Every module of the product's packages (feature folders are namespace packages, which
    ``pkgutil.walk_packages`` does not enter), ``__main__`` modules left out."""
    names = []
    for package in (telemetry, aiops, llm, simulation):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            parts = (package.__name__, *path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[-1] != "__main__":
                names.append(".".join(parts))
    return names


def _settings_dataclasses() -> list[type]:
    """Every dataclass of the product's packages with at least one ``setting`` field."""
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (isinstance(value, type) and value.__module__ == name and dataclasses.is_dataclass(value)
                    and config_keys(value)):
                found.append(value)
    return found


SETTINGS_CLASSES = _settings_dataclasses()


def _all_keys():
    """Every key the product reads: the middleware's, AIOps' (its own, its services', every feature's),
    the chaos and simulator extensions', and the demo shop's."""
    return (*TELEMETRY_CONFIG, *aiops_config_keys(), *CHAOS_CONFIG, *SIMULATOR_CONFIG, *SERVE_CONFIG, *DEMO_CONFIG)


def test_the_settings_dataclasses_are_found():
    names = {cls.__qualname__ for cls in SETTINGS_CLASSES}
    assert {"TelemetryState", "AnalysisConfig", "SLOSettings", "LLMSettings", "WebhookSettings", "ReplaySettings",
            "ModelConfig", "MetricDetectionConfig", "TriageConfig", "AdvisorConfig"} <= names, names


@pytest.mark.parametrize("cls", SETTINGS_CLASSES, ids=lambda cls: cls.__qualname__)
def test_fields_default_to_their_keys_defaults_and_read_config_round_trips(cls, monkeypatch):
    fields = [f for f in dataclasses.fields(cls) if "config_key" in f.metadata]
    for f in fields:
        key = f.metadata["config_key"]
        monkeypatch.delenv(key.name, raising=False)
        if callable(key.default):  # computed from the app: the field holds None until read_config has seen it
            assert f.default is None, f"{cls.__qualname__}.{f.name}: a computed default leaves the field None"
        else:
            assert f.default == key.default, f"{cls.__qualname__}.{f.name} defaults to {f.default!r}, " \
                                             f"its key {key.name} to {key.default!r}"
            assert key.parse(key.default) == key.default, f"{key.name}: the default does not parse to itself"
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):  # what the LLM keys' computed defaults read
        monkeypatch.delenv(name, raising=False)
    app = Flask("defaults")
    built = from_settings(cls, read_config(app, config_keys(cls)))
    for f in fields:
        key = f.metadata["config_key"]
        assert getattr(built, f.name) == key.parse(key.default_for(app)), f"{cls.__qualname__}.{f.name}"
    if not any(callable(f.metadata["config_key"].default) for f in fields):
        assert built == cls()


def test_no_key_is_declared_twice():
    counts = Counter(key.name for key in _all_keys())
    twice = sorted(name for name, n in counts.items() if n > 1)
    assert not twice, f"declared more than once: {twice}; declare a key once and read that declaration everywhere"


def test_the_config_groups_list_every_key_once():
    listed = Counter(key.name for group in groups() for key in group.keys)
    assert set(listed) == {key.name for key in _all_keys()}
    assert all(n == 1 for n in listed.values()), [name for name, n in listed.items() if n > 1]


def test_every_default_can_be_shown():
    for key in _all_keys():
        text = default_text(key)  # a computed default without shown_default raises
        assert text and "|" not in text.replace("\\|", ""), key.name
