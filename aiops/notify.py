"""Incident notifications over webhooks (Slack-compatible JSON).

The analysis engine calls ``notifier.notify(event, incident)`` when it opens,
escalates, acknowledges or resolves an incident. ``notify`` never blocks and
never raises: it builds the message, serializes it once (a snapshot of the
incident at that moment) and appends it to one bounded in-memory queue per
webhook URL. One daemon worker thread per URL, started on the first
``notify``, POSTs it with ``requests``, so a slow or dead receiver never
delays the others:

* connection errors, timeouts, HTTP 429 and 5xx are retried up to
  ``retries`` times after the first attempt, waiting ``backoff_s``, then twice
  as long each time (plus up to 10 % jitter, at most ``MAX_BACKOFF_S``; a
  ``Retry-After`` in seconds on a 429/503 lengthens the wait up to that cap);
* any other 4xx and redirects (never followed: a redirected POST would turn
  into a GET) are final;
* every failure is counted and logged on the ``aiops`` logger, at most once a
  minute per URL and kind of failure; URLs in logs are cut to scheme and host,
  because webhook URLs carry secrets in their path.

Counters (``stats()``) count deliveries, one per message and URL: a message to
two URLs that both answer 200 adds 2 to ``sent``.

Configuration, read with :func:`telemetry.config.read_config`::

    from telemetry.config import read_config
    notifier = WebhookNotifier.from_config(read_config(app, WEBHOOK_CONFIG))
"""
from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Iterable
from urllib.parse import urlsplit

import requests

from telemetry.config import as_number, as_str_list, config_keys, from_settings, parse_fields, setting
from telemetry.lifecycle import keep_alive_hooks
from telemetry.logs import RateLimitedLog
from telemetry.timefmt import iso

log = logging.getLogger("aiops")

#: Events the engine reports, and the emoji that leads the chat line of each.
EVENT_EMOJI = {
    "opened": ":rotating_light:",
    "escalated": ":arrow_double_up:",
    "acknowledged": ":eyes:",
    "resolved": ":white_check_mark:",
}

#: Longest wait between two attempts, in seconds, whatever backoff and Retry-After say.
MAX_BACKOFF_S = 60.0
#: Most characters of one untrusted field (title, description, endpoint, ...) in ``text``.
MAX_FIELD_CHARS = 300
#: Most affected endpoints listed in ``text`` (the rest are counted: "+3 more").
MAX_ENDPOINTS_IN_TEXT = 10
#: Most bytes of a receiver's response body read (for the log of a rejection).
_MAX_RESPONSE_BYTES = 64 * 1024
#: Least time close() gives a stopped worker to finish its current step, in seconds.
_STOP_GRACE_S = 0.5
_USER_AGENT = "flask-aiops-notify/1"
_HEADERS = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}


# -- configuration -------------------------------------------------------------


def as_webhook_urls(raw: Any) -> tuple[str, ...]:
    """A list of http:// or https:// URLs; from the environment, comma-separated."""
    urls = as_str_list(raw)
    for url in urls:
        if not _is_http_url(url):
            raise ValueError(f"must be a list of http:// or https:// URLs ({url!r} is not one)")
    return urls


def _is_http_url(url: str) -> bool:
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


@dataclass(frozen=True)
class WebhookSettings:
    """What ``WebhookNotifier`` needs to know; each field is its config key, so ``WEBHOOK_CONFIG``
    and the README's table come from here. Values are parsed (``ValueError`` naming the field)."""

    urls: tuple[str, ...] = setting(
        "AIOPS_WEBHOOK_URLS", (), as_webhook_urls, "list of http(s) URLs",
        "Where incident events are POSTed (Slack incoming webhooks or any JSON receiver); none: notifications "
        "are off. From the environment: comma-separated.")
    timeout_s: float = setting("AIOPS_WEBHOOK_TIMEOUT_S", 5.0, as_number(0.0, min_exclusive=True), "seconds",
                               "Connect and read timeout of one webhook POST; must be > 0.")
    retries: int = setting("AIOPS_WEBHOOK_RETRIES", 3, as_number(0, integer=True), "attempts",
                           "Extra attempts after the first on a connection error, timeout, HTTP 429 or 5xx; "
                           "0 disables retries.")
    backoff_s: float = setting("AIOPS_WEBHOOK_BACKOFF_S", 1.0, as_number(0.0), "seconds",
                               "Wait before the first retry, doubled for each further retry (plus up to 10 % "
                               "jitter, at most 60 s).")
    queue_size: int = setting("AIOPS_WEBHOOK_QUEUE_SIZE", 1000, as_number(1, integer=True), "messages",
                              "Messages waiting per webhook URL; when full, new ones are dropped and counted "
                              "(`dropped`).")

    def __post_init__(self):
        parse_fields(self)


#: Every AIOPS_WEBHOOK_* key, in the order of ``WebhookSettings``.
WEBHOOK_CONFIG = config_keys(WebhookSettings)


# -- the message -----------------------------------------------------------------


def clean_text(value: Any, limit: int = MAX_FIELD_CHARS) -> str:
    """``value`` as one safe line of at most ``limit`` characters.

    Control characters, line and paragraph separators become spaces,
    invisible format characters (bidi overrides, zero-width) are removed,
    runs of whitespace collapse to one space, and a longer text is cut with
    "…". Slack's control characters ``&``, ``<`` and ``>`` are escaped last,
    so ``<!channel>`` in an error message cannot ping anyone.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = text[: limit * 4 + 64]  # bound the work on a huge value; whitespace collapses below
    out = []
    for ch in text:
        if ch.isascii() and ch.isprintable():
            out.append(ch)
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp"):
            out.append(" ")
        elif category == "Cs":
            out.append("\ufffd")
        elif category != "Cf":
            out.append(ch)
    text = " ".join("".join(out).split())
    if len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _confidence_pct(value: Any) -> str | None:
    """A confidence as a percentage: a fraction in [0, 1] is scaled, a number
    in (1, 100] is taken as a percentage already."""
    number = _number(value)
    if number is None or number < 0 or number > 100:
        return None
    return f"{number * 100 if number <= 1 else number:.0f}%"


def _count(value: Any) -> str | None:
    number = _number(value)
    if number is None:
        return None
    return f"{number:.0f}" if number == int(number) else f"{number:g}"


def build_text(event: str, incident: Mapping, dashboard_url: str | None = None) -> str:
    """The chat text of a message: one line, and a second one with the root
    cause's description, the recurrence and the dashboard link when known."""
    root = incident.get("root_cause")
    root = root if isinstance(root, Mapping) else {}
    head = f"{EVENT_EMOJI[event]} "
    severity = clean_text(incident.get("severity"), 20).upper()
    if severity:
        head += f"[{severity}] "
    incident_id = clean_text(incident.get("id"), 80)
    head += f"{incident_id} {event}" if incident_id else f"incident {event}"
    title = clean_text(incident.get("title"))
    if title:
        head += f": {title}"
    cause = clean_text(root.get("endpoint")) or clean_text(root.get("service"))
    if cause:
        head += f" — root cause {cause}"
        confidence = _confidence_pct(root.get("confidence"))
        if confidence:
            head += f" (confidence {confidence})"
    affected = incident.get("affected_endpoints")
    if isinstance(affected, (list, tuple)):
        names = [name for name in (clean_text(e) for e in affected[:MAX_ENDPOINTS_IN_TEXT]) if name]
        if names:
            more = len(affected) - MAX_ENDPOINTS_IN_TEXT
            head += (", " if cause else " — ") + "affected " + ", ".join(names)
            head += f" (+{more} more)" if more > 0 else ""

    details = []
    description = clean_text(root.get("description"))
    if description:
        details.append(description)
    recurrence = incident.get("recurrence")
    if isinstance(recurrence, Mapping):
        count, days = _count(recurrence.get("count")), _count(recurrence.get("window_days"))
        if count and days:
            details.append(f"seen {count} times in {days} days")
        elif count:
            details.append(f"seen {count} times")
    if dashboard_url:
        details.append(clean_text(dashboard_url, 2000))
    return head + ("\n" + " · ".join(details) if details else "")


def build_message(event: str, incident: Mapping, dashboard_url: str | None = None) -> dict:
    """The JSON body POSTed for ``event`` ("opened", "escalated",
    "acknowledged" or "resolved") of ``incident``.

    ``text`` is the Slack-compatible chat line (untrusted fields cleaned and
    capped by :func:`clean_text`); the other fields are copied from the
    incident as they are (``None`` when it lacks them), plus ``event``,
    ``sent_at`` (ISO 8601 UTC, when the message was built), the whole
    ``incident`` and, when given, ``dashboard_url``. Raises ``ValueError`` on
    an unknown event and ``TypeError`` when ``incident`` is not a mapping.
    """
    if event not in EVENT_EMOJI:
        raise ValueError(f"unknown incident event {event!r}; expected one of {', '.join(EVENT_EMOJI)}")
    if not isinstance(incident, Mapping):
        raise TypeError(f"incident must be a dict, got {type(incident).__name__}")
    message = {
        "text": build_text(event, incident, dashboard_url),
        "event": event,
        "incident_id": incident.get("id"),
        "severity": incident.get("severity"),
        "status": incident.get("status"),
        "title": incident.get("title"),
        "root_cause": incident.get("root_cause"),
        "affected_endpoints": incident.get("affected_endpoints"),
        "first_detected": incident.get("first_detected"),
        "sent_at": iso(time.time()),
        "incident": incident,
    }
    if dashboard_url:
        message["dashboard_url"] = dashboard_url
    return message


def _encode(message: dict) -> bytes:
    """JSON bytes of ``message``; NaN and infinities (not JSON) become null."""
    try:
        return json.dumps(message, allow_nan=False, default=str).encode("ascii")
    except ValueError:
        return json.dumps(_finite(message), allow_nan=False, default=str).encode("ascii")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# -- delivery ----------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: webhook URLs carry their secret in the path."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{port}" + ("/…" if parts.path not in ("", "/") or parts.query else "")


class _Channel:
    """One webhook URL: its queue, worker thread and HTTP session."""

    def __init__(self, index: int, url: str):
        self.index = index
        self.url = url
        self.label = f"webhook #{index + 1} ({redact_url(url)})"
        self.queue: deque[tuple[bytes, str]] = deque()
        self.thread: threading.Thread | None = None
        self.busy = False
        self.session: requests.Session | None = None


class WebhookNotifier:
    """Sends incident events to webhooks; see the module docstring.

    ``urls``: http(s) URLs (a list, or one comma-separated string); none makes
    every call a no-op. ``settings``: the other ``WebhookSettings`` fields
    (``timeout_s``, ``retries``, ``backoff_s``, ``queue_size``; defaults: the
    AIOPS_WEBHOOK_* keys' defaults, see ``WEBHOOK_CONFIG``).
    ``session``: a ``requests.Session`` shared by every worker (default: one
    per worker, created in it; a forked child drops those and makes new ones,
    but a session you pass is used as is, so pass one per process).
    ``dashboard_url``: a link added to every message (optional). Invalid
    values raise ``ValueError`` naming the field.
    """

    def __init__(self, urls: Iterable[str] | str = (), *, session: requests.Session | None = None,
                 dashboard_url: str | None = None, **settings: Any):
        self.settings = WebhookSettings(urls=tuple(urls) if not isinstance(urls, str) else urls, **settings)
        self.urls: tuple[str, ...] = self.settings.urls
        self.timeout_s = float(self.settings.timeout_s)
        self.retries = int(self.settings.retries)
        self.backoff_s = float(self.settings.backoff_s)
        self.queue_size = int(self.settings.queue_size)
        self.dashboard_url = dashboard_url
        self._session = session
        self._channels = [_Channel(i, url) for i, url in enumerate(self.urls)]
        self._init_sync()
        self._closed = False
        self.sent = self.failed = self.retried = self.dropped = 0
        self.warn = RateLimitedLog(logger=log)
        self._cancel_exit_hook = None
        if self._channels:
            self._cancel_exit_hook = keep_alive_hooks(self, at_exit=lambda notifier: notifier.close(timeout_s=2.0),
                                                      after_fork=_after_fork)

    @classmethod
    def from_config(cls, settings: Mapping[str, Any], **options) -> "WebhookNotifier":
        """A notifier from the dict ``read_config(app, WEBHOOK_CONFIG)`` returns
        (missing keys take their defaults); ``options`` (``session``,
        ``dashboard_url``) are passed on."""
        return cls(**asdict(from_settings(WebhookSettings, settings)), **options)

    def _init_sync(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # queue changes, deliveries done, stopping
        self._stop = threading.Event()  # set by close(): ends backoff waits at once
        self._stopping = False

    @property
    def enabled(self) -> bool:
        return bool(self._channels)

    # -- caller side -------------------------------------------------------------

    def notify(self, event: str, incident: Mapping) -> None:
        """Queue ``event`` of ``incident`` for every URL. Never blocks on the
        network and never raises; problems are counted and logged."""
        if not self._channels:
            return
        try:
            if self._closed:
                self._drop_all("closed", "aiops: notifier is closed; incident %s not sent", event)
                return
            try:
                message = build_message(event, incident, self.dashboard_url)
                body = _encode(message)
            except Exception as exc:
                self._drop_all("invalid", "aiops: cannot build the %s notification: %s", event, exc)
                return
            what = f"{clean_text(message['incident_id'], 80) or 'incident'} {event}"
            full = []
            with self._lock:
                for channel in self._channels:
                    if len(channel.queue) >= self.queue_size:
                        self.dropped += 1
                        full.append(channel)
                        continue
                    channel.queue.append((body, what))
                    if channel.thread is None or not channel.thread.is_alive():
                        self._start(channel)
                self._cond.notify_all()
            for channel in full:
                self.warn.warning(f"{channel.index}:full", "aiops: %s queue full (%d messages); %s dropped, "
                                  "%d dropped so far", channel.label, self.queue_size, what, self.dropped)
        except Exception as exc:  # e.g. no thread can be started at interpreter shutdown
            self.warn.warning("notify", "aiops: notification %s not queued: %r", event, exc)

    def _drop_all(self, key: str, message: str, *args) -> None:
        with self._lock:
            self.dropped += len(self._channels)
        self.warn.warning(key, message, *args)

    def _start(self, channel: _Channel) -> None:
        """Start ``channel``'s worker; the caller holds the lock."""
        if self._stopping:
            return
        channel.thread = threading.Thread(target=self._run, args=(channel,), daemon=True,
                                          name=f"aiops-webhook-{channel.index + 1}")
        channel.thread.start()

    # -- worker ------------------------------------------------------------------------

    def _run(self, channel: _Channel) -> None:
        cond = self._cond
        while True:
            with cond:
                while not channel.queue and not self._stopping:
                    cond.wait()
                if self._stopping:
                    return
                body, what = channel.queue.popleft()
                channel.busy = True
            try:
                self._deliver(channel, body, what)
            except Exception as exc:  # never let the worker die
                with cond:
                    self.failed += 1
                self.warn.warning(f"{channel.index}:error", "aiops: %s: %s not sent: %r", channel.label, what, exc)
            finally:
                with cond:
                    channel.busy = False
                    cond.notify_all()

    def _session_for(self, channel: _Channel) -> requests.Session:
        if self._session is not None:
            return self._session
        if channel.session is None:
            channel.session = requests.Session()
        return channel.session

    def _deliver(self, channel: _Channel, body: bytes, what: str) -> None:
        attempt = 0
        while True:
            retry_after = None
            try:
                response = self._session_for(channel).post(
                    channel.url, data=body, headers=_HEADERS, timeout=self.timeout_s,
                    allow_redirects=False, stream=True)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                retryable, reason = True, f"{type(exc).__name__}: {clean_text(exc, 200)}"
            except requests.RequestException as exc:
                retryable, reason = False, f"{type(exc).__name__}: {clean_text(exc, 200)}"
            else:
                status, snippet = response.status_code, _read_snippet(response)
                if 200 <= status < 300:
                    with self._lock:
                        self.sent += 1
                    return
                retryable = status == 429 or status >= 500
                reason = f"HTTP {status}" + (f" {snippet!r}" if snippet else "")
                if 300 <= status < 400:
                    reason += " (redirects are not followed)"
                if status in (429, 503):
                    retry_after = _retry_after_s(response.headers.get("Retry-After"))
            if not retryable or attempt >= self.retries:
                with self._lock:
                    self.failed += 1
                kind = "retries exhausted" if retryable else "not retried"
                self.warn.warning(f"{channel.index}:{'exhausted' if retryable else 'rejected'}",
                                  "aiops: %s: %s not delivered after %d attempt(s): %s (%s); %d failed so far",
                                  channel.label, what, attempt + 1, reason, kind, self.failed)
                return
            delay = min(self.backoff_s * 2 ** attempt * random.uniform(1.0, 1.1), MAX_BACKOFF_S)
            if retry_after is not None:
                delay = max(delay, min(retry_after, MAX_BACKOFF_S))
            if self._stop.wait(delay):
                with self._lock:
                    self.failed += 1
                self.warn.warning(f"{channel.index}:closing", "aiops: %s: %s abandoned at close after "
                                  "%d attempt(s): %s", channel.label, what, attempt + 1, reason)
                return
            attempt += 1
            with self._lock:
                self.retried += 1

    # -- control -----------------------------------------------------------------------

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queue is empty and no delivery (retries included)
        is under way; True if that happened within ``timeout_s`` seconds."""
        if not self._channels:
            return True
        with self._cond:
            for channel in self._channels:  # a worker that died is replaced
                if channel.queue and (channel.thread is None or not channel.thread.is_alive()):
                    self._start(channel)
            return self._cond.wait_for(self._idle, max(timeout_s, 0.0))

    def _idle(self) -> bool:
        return all(not channel.queue and not channel.busy for channel in self._channels)

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush for up to ``timeout_s`` seconds, then stop the workers:
        a retry wait ends at once (the delivery counts as failed) and
        messages still queued are dropped and counted. Workers get at least
        0.5 s more to stop (one stuck in an HTTP call is left behind: it is a
        daemon). Idempotent; a closed notifier drops what it is given."""
        if not self._channels:
            self._closed = True
            return
        deadline = time.monotonic() + max(timeout_s, 0.0)
        if not self._closed:
            self._closed = True
            self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._stop.set()
            left = sum(len(channel.queue) for channel in self._channels)
            for channel in self._channels:
                channel.queue.clear()
            self.dropped += left
            self._cond.notify_all()
        if left:
            self.warn.warning("close", "aiops: notifier closed with %d undelivered message(s); dropped", left)
        for channel in self._channels:
            thread = channel.thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), _STOP_GRACE_S))
            if channel.session is not None and (thread is None or not thread.is_alive()):
                channel.session.close()
                channel.session = None
        if self._cancel_exit_hook is not None:
            self._cancel_exit_hook()
            self._cancel_exit_hook = None

    def stats(self) -> dict[str, int]:
        """Deliveries (one per message and URL) ``sent``, ``failed`` (after
        retries, or rejected), ``retried`` (extra attempts made), ``dropped``
        (queue full, invalid, or closed), and messages ``queued`` now."""
        with self._lock:
            return {"sent": self.sent, "failed": self.failed, "retried": self.retried,
                    "dropped": self.dropped, "queued": sum(len(channel.queue) for channel in self._channels)}


def _read_snippet(response: requests.Response) -> str:
    """The start of a response body, cleaned for a log line; the rest of a
    small body is read so the connection can be reused."""
    try:
        data = b""
        for chunk in response.iter_content(8192):
            data += chunk
            if len(data) > _MAX_RESPONSE_BYTES:
                break
        return clean_text(data[:400].decode("utf-8", "replace"), 200) if response.status_code >= 300 else ""
    except Exception:
        return ""
    finally:
        response.close()


def _retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is ignored)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _after_fork(notifier: WebhookNotifier) -> None:
    """A forked child has no worker threads, and must neither resend the
    parent's queued messages nor share its pooled connections: start afresh."""
    notifier._init_sync()
    notifier.warn.after_fork()
    for channel in notifier._channels:
        channel.queue = deque()
        channel.thread = None
        channel.busy = False
        channel.session = None
    if notifier._closed:
        notifier._stopping = True
        notifier._stop.set()
