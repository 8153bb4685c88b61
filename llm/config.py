"""Every AIOPS_LLM_* setting, with units and defaults, declared once in ``LLMSettings``.

The endpoint is OpenAI-compatible (OpenAI, Ollama, vLLM, llama.cpp server).
``AIOPS_LLM_BASE_URL`` falls back to ``OPENAI_BASE_URL`` and
``AIOPS_LLM_API_KEY`` to ``OPENAI_API_KEY`` (app config first, then the
environment). With neither set, every document comes from the deterministic
writer and no network call is made.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from telemetry.config import as_bool, as_number, as_optional_str, config_keys, setting


def _fallback(name: str):
    """Default that reads ``name`` from the app config, then the environment."""
    def default(app):
        value = app.config.get(name) if app is not None else None
        return value if value else os.environ.get(name) or None
    return default


def _url(raw):
    value = as_optional_str(raw)
    if value is not None and not value.strip().lower().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL (for example http://127.0.0.1:11434/v1)")
    return value.strip() if value else None


@dataclass(frozen=True)
class LLMSettings:
    """What ``LLMWriter`` needs to know; each field is its config key (name, default, parser,
    unit, help text), so ``LLM_CONFIG`` and the README's table come from here."""

    enabled: bool = setting("AIOPS_LLM_ENABLED", True, as_bool, "bool",
                            "False never calls a model, even when an endpoint is configured (deterministic "
                            "documents only).")
    base_url: str | None = setting(
        "AIOPS_LLM_BASE_URL", _fallback("OPENAI_BASE_URL"), _url, "URL",
        "OpenAI-compatible API base ending in `/v1`; with only an API key set, `https://api.openai.com/v1`.",
        shown_default="`OPENAI_BASE_URL`")
    api_key: str | None = setting(
        "AIOPS_LLM_API_KEY", _fallback("OPENAI_API_KEY"), as_optional_str, "string",
        "Sent as the `Authorization` header, never in a prompt; not needed by Ollama, vLLM or llama.cpp.",
        shown_default="`OPENAI_API_KEY`")
    model: str | None = setting("AIOPS_LLM_MODEL", "gpt-4o-mini", as_optional_str, "model name",
                                "Model asked for every document (for Ollama e.g. `llama3.1:8b`).")
    timeout_s: float = setting("AIOPS_LLM_TIMEOUT_S", 20.0, as_number(0.0, 600.0, min_exclusive=True), "seconds",
                               "Timeout of one model request; a timeout falls back to the deterministic writer.")
    retries: int = setting("AIOPS_LLM_RETRIES", 1, as_number(0, 10, integer=True), "retries",
                           "Retries of a failed request (connection error, timeout, HTTP 429/5xx) with the client's "
                           "backoff; the worst case is (retries + 1) × timeout.")
    max_tokens: int = setting("AIOPS_LLM_MAX_TOKENS", 1500, as_number(16, 32768, integer=True), "tokens",
                              "Most tokens the model may write per document.")
    temperature: float = setting("AIOPS_LLM_TEMPERATURE", 0.2, as_number(0.0, 2.0), "temperature",
                                 "Sampling temperature; low keeps documents close to the facts.")
    breaker_failures: int = setting("AIOPS_LLM_BREAKER_FAILURES", 3, as_number(1, 1000, integer=True), "failures",
                                    "Consecutive failed calls that open the circuit breaker.")
    breaker_cooldown_s: float = setting("AIOPS_LLM_BREAKER_COOLDOWN_S", 60.0, as_number(0.0, 86400.0), "seconds",
                                        "How long an open breaker skips the model; then one trial call decides.")
    cache_size: int = setting("AIOPS_LLM_CACHE_SIZE", 256, as_number(0, 100000, integer=True), "documents",
                              "Model answers kept in memory, keyed by a SHA-256 of task, facts, instructions and "
                              "model (0: off).")
    max_input_chars: int = setting(
        "AIOPS_LLM_MAX_INPUT_CHARS", 12000, as_number(1000, 1_000_000, integer=True), "characters",
        "Cap on the telemetry data block of one prompt (each text field is also capped at 500 characters).")


#: Every AIOPS_LLM_* key, in the order of ``LLMSettings``.
LLM_CONFIG = config_keys(LLMSettings)
