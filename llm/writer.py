"""``LLMWriter``: documents from an OpenAI-compatible model, or from the deterministic writer.

Every call returns a ``Document`` saying what produced it. The model is
tried only when an endpoint is configured, the circuit breaker is closed and
the answer is not cached; any error, timeout, empty or garbled answer (or an
answer the caller's ``check`` rejects) falls back to the deterministic
``fallback(facts)`` for that call, and the fallback is logged (at most once a
minute per task and reason). Without the ``openai`` package (the ``[llm]``
extra) a configured model is never tried: every document comes from the
deterministic writer, its ``fallback_reason`` names the extra, and one
warning says so. The model's output is display text only: it is never
executed and never changes state.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Callable

from llm.config import LLM_CONFIG, LLMSettings
from llm.safety import DATA_RULES, clean_output, clean_text, data_block
from llm.schema import check_schema, validate
from telemetry.config import from_settings, read_environment
from telemetry.extras import MissingExtra, require
from telemetry.logs import RateLimitedLog

log = logging.getLogger("llm")
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"


@dataclass
class Document:
    """One generated document. ``source`` is ``"llm"`` or ``"template"``;
    ``latency_ms`` is the wall time of this call; ``usage`` holds the
    endpoint's token counts when it reports them; ``fallback_reason`` says
    why the template was used (None when the model wrote it)."""

    task: str
    text: str | None = None
    data: dict | None = None
    source: str = "template"
    model: str | None = None
    latency_ms: float = 0.0
    usage: dict | None = None
    fallback_reason: str | None = None
    cached: bool = False

    def to_dict(self) -> dict:
        return {"task": self.task, "text": self.text, "data": self.data, "source": self.source, "model": self.model,
                "latency_ms": round(self.latency_ms, 2), "usage": self.usage,
                "fallback_reason": self.fallback_reason, "cached": self.cached}


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; while open, ``allow()``
    is False for ``cooldown_s``; then one trial call is let through
    (half-open): its success closes the breaker, its failure reopens it."""

    def __init__(self, failures: int = 3, cooldown_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.threshold, self.cooldown_s, self.clock = failures, cooldown_s, clock
        self.consecutive = 0
        self.opened_at: float | None = None
        self.trial = False
        self.times_opened = 0
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.cooldown_s else "open"

    def allow(self) -> tuple[bool, str | None]:
        """(may call, why not)."""
        with self._lock:
            if self.opened_at is None:
                return True, None
            wait_s = self.cooldown_s - (self.clock() - self.opened_at)
            if wait_s > 0:
                return False, (f"circuit breaker open after {self.consecutive} consecutive failures; "
                               f"next try in {wait_s:.0f} s")
            if self.trial:
                return False, "circuit breaker half-open: a trial call is in flight"
            self.trial = True
            return True, None

    def success(self) -> None:
        with self._lock:
            self.consecutive, self.opened_at, self.trial = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self.consecutive += 1
            if self.trial or self.consecutive >= self.threshold:
                if self.opened_at is None or self.trial:
                    self.times_opened += 1
                self.opened_at = self.clock()
            self.trial = False

    def stats(self) -> dict:
        return {"state": self.state, "consecutive_failures": self.consecutive, "times_opened": self.times_opened,
                "threshold": self.threshold, "cooldown_s": self.cooldown_s}


class _Cache:
    """A thread-safe LRU of model answers."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict[str, tuple] = OrderedDict()
        self.hits = self.misses = 0
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            if key in self.items:
                self.items.move_to_end(key)
                self.hits += 1
                return self.items[key]
            self.misses += 1
            return None

    def put(self, key: str, value: tuple) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def stats(self) -> dict:
        return {"size": len(self.items), "capacity": self.size, "hits": self.hits, "misses": self.misses}


class _ModelError(Exception):
    """The model's answer cannot be used; ``reason`` is logged and returned."""


_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?|\n?```\s*$")


def _reason(exc: BaseException) -> str:
    """A short, key-free description of a client exception."""
    if isinstance(exc, (_ModelError, MissingExtra)):
        return str(exc)
    import openai  # loaded already: only a model's client raises what this describes
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} from the endpoint"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    return f"{type(exc).__name__}: {clean_text(str(exc), limit=160)}"


class LLMWriter:
    """Writes documents with a model when one is configured, else (or on any
    failure) with the deterministic ``fallback``. Thread-safe."""

    def __init__(self, settings: LLMSettings | None = None, clock: Callable[[], float] = time.monotonic,
                 **fields: Any):
        """``settings`` (default: ``LLMSettings()``, the keys' defaults), with ``fields`` (any of
        ``LLMSettings``' fields, e.g. ``base_url=..., retries=0``) replacing its values."""
        settings = replace(settings or LLMSettings(), **fields)
        self.settings = settings
        self.api_key = settings.api_key
        self.base_url = settings.base_url or (DEFAULT_OPENAI_URL if settings.api_key else None)
        self.model = settings.model
        self.enabled = bool(settings.enabled and self.base_url and settings.model)
        self.timeout_s, self.retries = settings.timeout_s, settings.retries
        self.max_tokens, self.temperature = settings.max_tokens, settings.temperature
        self.max_input_chars = settings.max_input_chars
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s, clock)
        self.cache = _Cache(settings.cache_size)
        self.fallback_log = RateLimitedLog(60.0, log, clock)
        self.counts = {"llm": 0, "template": 0, "cached": 0, "failures": 0}
        self._count_lock = threading.Lock()
        self._client = None
        self._lock = threading.Lock()
        self._missing_client: str | None = None  #: why the client cannot load (the [llm] extra), once known
        self._client_checked = False

    @classmethod
    def from_settings(cls, settings: dict) -> "LLMWriter":
        """From ``read_config(app, LLM_CONFIG)`` (a key absent keeps its default); deterministic-only
        when no endpoint is configured."""
        return cls(from_settings(LLMSettings, settings))

    @classmethod
    def from_environment(cls) -> "LLMWriter":
        """The writer the AIOPS_LLM_* / OPENAI_* environment configures (template-only when none
        is), for the command line; a bad value raises ValueError naming the key."""
        return cls.from_settings(read_environment(LLM_CONFIG))

    # -- public API ------------------------------------------------------------------

    def write(self, task: str, facts: dict, fallback: Callable[[dict], str], instructions: str,
              check: Callable[[str], str | None] | None = None) -> Document:
        """A markdown document for ``task``. ``check(text)`` may return why a
        model answer is unusable (then the template is used)."""
        started = time.perf_counter()

        def attempt() -> Document:
            messages = self._messages(instructions, facts)
            text, usage = self._complete(messages)
            text = clean_output(_FENCE.sub("", text) if text.lstrip().startswith("```") else text)
            if not text:
                raise _ModelError("empty answer")
            problem = check(text) if check is not None else None
            if problem:
                raise _ModelError(f"answer rejected: {problem}")
            return Document(task=task, text=text, source="llm", model=self.model, usage=usage)

        doc = self._run(task, facts, instructions, None, attempt,
                        lambda reason: Document(task=task, text=fallback(facts), fallback_reason=reason))
        doc.latency_ms = (time.perf_counter() - started) * 1000.0
        return doc

    def structured(self, task: str, facts: dict, schema: dict, fallback: Callable[[dict], dict],
                   instructions: str = "") -> Document:
        """A JSON object for ``task`` valid against ``schema`` (see llm.schema):
        an invalid answer gets one retry that names the errors, then the fallback."""
        check_schema(schema)
        started = time.perf_counter()
        schema_text = json.dumps(schema, sort_keys=True)

        def attempt() -> Document:
            messages = self._messages(
                (instructions + "\n\n" if instructions else "") +
                "Answer with one JSON object and nothing else (no prose, no code fences). It must validate "
                f"against this JSON Schema:\n{schema_text}", facts)
            usage_total: dict | None = None
            problems: list[str] = []
            for round_ in range(2):
                text, usage = self._complete(messages)
                usage_total = _add_usage(usage_total, usage)
                data, problems = _parse_json(text, schema)
                if not problems:
                    return Document(task=task, data=data, text=json.dumps(data, indent=2), source="llm",
                                    model=self.model, usage=usage_total)
                if round_ == 0:
                    messages = messages + [
                        {"role": "assistant", "content": clean_text(text, limit=4000)},
                        {"role": "user", "content": "That answer is invalid: " + "; ".join(problems[:10]) +
                         ". Answer again with one JSON object that validates against the schema."}]
            raise _ModelError("invalid structured answer after one retry: " + "; ".join(problems[:3]))

        def template(reason: str) -> Document:
            data = fallback(facts)
            problems = validate(data, schema)
            if problems:  # a bug in our own writer: say so, still answer
                log.error("llm: deterministic %s result violates its schema: %s", task, problems)
            return Document(task=task, data=data, text=json.dumps(data, indent=2), fallback_reason=reason)

        doc = self._run(task, facts, instructions, schema_text, attempt, template)
        doc.latency_ms = (time.perf_counter() - started) * 1000.0
        return doc

    def stats(self) -> dict:
        """Configuration in force (never the key) and counters."""
        return {"enabled": self.enabled, "base_url": self.base_url, "model": self.model if self.enabled else None,
                "api_key_set": bool(self.api_key), "timeout_s": self.timeout_s, "retries": self.retries,
                "documents": self._counts(), "breaker": self.breaker.stats(), "cache": self.cache.stats()}

    def _counts(self) -> dict:
        with self._count_lock:
            return dict(self.counts)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- internals -------------------------------------------------------------------

    def _run(self, task: str, facts: dict, instructions: str, schema_text: str | None,
             attempt: Callable[[], Document], template: Callable[[str], Document]) -> Document:
        if not self.enabled:
            self._count("template")
            return template("no LLM endpoint configured" if self.base_url is None
                            else "no model configured (AIOPS_LLM_MODEL)" if not self.model
                            else "LLM disabled (AIOPS_LLM_ENABLED=false)")
        missing = self._client_missing()
        if missing is not None:
            self._count("template")
            return template(missing)
        key = self._cache_key(task, facts, instructions, schema_text)
        hit = self.cache.get(key)
        if hit is not None:
            text, data, usage = hit
            self._count("cached")
            return Document(task=task, text=text, data=data, source="llm", model=self.model, usage=usage,
                            cached=True)
        allowed, why_not = self.breaker.allow()
        if not allowed:
            return self._fallback(task, why_not, template)
        try:
            doc = attempt()
        except Exception as exc:  # any client, protocol or content failure: the template answers
            self.breaker.failure()
            self._count("failures")
            return self._fallback(task, _reason(exc), template)
        self.breaker.success()
        self.cache.put(key, (doc.text, doc.data, doc.usage))
        self._count("llm")
        return doc

    def _count(self, name: str) -> None:
        with self._count_lock:
            self.counts[name] += 1

    def _fallback(self, task: str, reason: str, template: Callable[[str], Document]) -> Document:
        self.fallback_log.warning((task, reason.split(";")[0].split(":")[0]),
                                  "llm: %s fell back to the deterministic writer: %s (model %s at %s)",
                                  task, reason, self.model, self.base_url)
        self._count("template")
        return template(reason)

    def _client_missing(self) -> str | None:
        """Why the model cannot be called at all: the openai package is not installed. Checked once;
        the first time it is missing, one warning says so."""
        if self._client_checked:
            return self._missing_client
        try:
            require("openai", "llm", "the LLM writer")
            missing = None
        except MissingExtra as exc:
            missing = str(exc)
        with self._lock:
            first = not self._client_checked
            self._missing_client, self._client_checked = missing, True
        if missing is not None and first:
            log.warning("llm: %s; model %s at %s is not called, every document comes from the deterministic writer",
                        missing, self.model, self.base_url)
        return missing

    def _cache_key(self, task: str, facts: dict, instructions: str, schema_text: str | None) -> str:
        payload = json.dumps([task, facts, instructions, self.model, schema_text], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def _messages(self, instructions: str, facts: dict) -> list[dict]:
        secrets = tuple(s for s in (self.api_key,) if s)
        system = (f"You write incident documents for site reliability engineers.\n{DATA_RULES}\n\n"
                  f"Task:\n{clean_text(instructions, secrets, limit=4000)}")
        user = "Facts of the incident:\n" + data_block(facts, secrets, self.max_input_chars)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _client_or_new(self):
        with self._lock:
            if self._client is None:
                # at the call: the client is needed only when a model is configured (the [llm] extra)
                openai = require("openai", "llm", "the LLM writer")
                self._client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "not-needed",
                                             timeout=self.timeout_s, max_retries=self.retries)
            return self._client

    def _complete(self, messages: list[dict]) -> tuple[str, dict | None]:
        response = self._client_or_new().chat.completions.create(
            model=self.model, messages=messages, max_tokens=self.max_tokens, temperature=self.temperature)
        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise _ModelError("garbled answer: no choices[0].message")
        content = choices[0].message.content
        if not isinstance(content, str):
            raise _ModelError("garbled answer: message content is not text")
        usage = None
        if getattr(response, "usage", None) is not None:
            u = response.usage
            usage = {k: getattr(u, k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
                     if isinstance(getattr(u, k, None), int)} or None
        return content, usage


def _add_usage(total: dict | None, usage: dict | None) -> dict | None:
    if usage is None:
        return total
    if total is None:
        return dict(usage)
    return {k: total.get(k, 0) + usage.get(k, 0) for k in set(total) | set(usage)}


def _parse_json(text: str, schema: dict) -> tuple[Any, list[str]]:
    """(value, problems): the first JSON object in ``text`` and its schema violations."""
    stripped = _FENCE.sub("", text.strip()).strip()
    start, end = stripped.find("{"), stripped.rfind("}")
    if start < 0 or end <= start:
        return None, ["the answer holds no JSON object"]
    try:
        data = json.loads(stripped[start:end + 1])
    except ValueError as exc:
        return None, [f"the answer is not valid JSON ({exc.msg} at character {exc.pos})"]
    return data, validate(data, schema)
