"""HTTP routes of the documents: a thin shell over ``llm.facts``, ``llm.documents`` and the app's
``LLMWriter`` (``ctx.llm``); the incident comes from the analysis (``incident_json``).

Every document answer is JSON (``text`` in markdown plus ``source``,
``model``, ``latency_ms``, ``usage``, ``fallback_reason``, ``cached``), or
the markdown itself with ``?format=markdown`` (the provenance then travels
in ``X-AIOps-*`` headers). ``?source=template`` skips the model.
"""
from __future__ import annotations

import logging
import time

from flask import Response, current_app, request

from llm.documents import DOCUMENTS, render, render_hypotheses
from llm.facts import incident_facts, user_incident_facts
from llm.writer import Document, LLMWriter
from llm.writers import AUDIENCES
from telemetry.errors import PayloadError
from telemetry.timefmt import iso
from telemetry.web import ApiBlueprint, json_body, json_error, json_response

ENDPOINTS = [
    "GET  /aiops/incidents/<id>/narrative", "GET  /aiops/incidents/<id>/brief",
    "GET  /aiops/incidents/<id>/postmortem?format=json|markdown",
    "GET  /aiops/incidents/<id>/comms?audience=engineering|management|customer",
    "GET  /aiops/incidents/<id>/hypotheses", "POST /aiops/postmortems", "GET  /aiops/llm",
]
FORMATS = ("json", "markdown")
SOURCES = ("auto", "template")
MAX_BODY_BYTES = 256 * 1024
_TEMPLATE_ONLY = LLMWriter(enabled=False)
log = logging.getLogger("llm")


def _state():
    return current_app.extensions["aiops"]


def _options() -> tuple[str, str]:
    """(format, source) of the query string; ``PayloadError`` naming the valid values."""
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        raise PayloadError("format", f"format must be one of: {', '.join(FORMATS)}", error=f"unknown format {fmt!r}")
    source = request.args.get("source", "auto")
    if source not in SOURCES:
        raise PayloadError("source", "source must be auto (the model when configured, else the template) or "
                                     "template (never call the model)", error=f"unknown source {source!r}")
    return fmt, source


def _render(kind: str, facts: dict, source: str, audience: str | None = None) -> Document | None:
    """The document, or None after logging when our own writer failed (a bug, never the model)."""
    try:
        writer = _TEMPLATE_ONLY if source == "template" else _state().llm
        if kind == "hypotheses":
            return render_hypotheses(writer, facts)
        return render(writer, kind, facts, audience)
    except Exception:
        log.exception("llm: writing the %s failed", kind)
        return None


def _failed(kind: str) -> Response:
    return json_error(500, f"could not write the {kind}",
                      "an internal error was logged on the 'llm' logger; "
                      "the incident itself is available at GET /aiops/incidents/<id>")


def _answer(doc: Document, fmt: str, extra: dict) -> Response:
    if fmt == "markdown" and doc.data is None:
        headers = {"X-AIOps-Source": doc.source, "X-AIOps-Model": doc.model or "",
                   "X-AIOps-Latency-Ms": f"{doc.latency_ms:.1f}"}
        if doc.fallback_reason:
            headers["X-AIOps-Fallback-Reason"] = doc.fallback_reason[:200]
        return Response(doc.text, mimetype="text/markdown", headers=headers)
    if doc.data is not None:  # structured: the validated object, and its JSON text
        return json_response({**extra, "format": "json", **doc.to_dict()})
    body = {**extra, "format": "markdown", **{k: v for k, v in doc.to_dict().items() if k != "data"}}
    return json_response(body)


def make_blueprint() -> ApiBlueprint:
    bp = ApiBlueprint("aiops_llm", __name__, url_prefix="/aiops", api_key=lambda: _state().api_key)

    def incident_document(incident_id: str, kind: str):
        fmt, source = _options()
        audience = None
        if kind == "hypotheses" and fmt == "markdown":
            raise PayloadError("format", "GET /aiops/incidents/<id>/hypotheses answers JSON only (format=json)",
                               error="hypotheses are structured")
        if kind == "comms":
            audience = request.args.get("audience", "engineering")
            if audience not in AUDIENCES:
                raise PayloadError("audience", f"audience must be one of: {', '.join(AUDIENCES)}",
                                   error=f"unknown audience {audience!r}")
        found = _state().ask("incident_json", incident_id)
        if found is None:
            return json_error(404, f"incident {incident_id} not found",
                              "list incident ids with GET /aiops/incidents?status=all")
        try:
            facts = incident_facts(found)
        except Exception:
            log.exception("llm: facts of incident %s could not be extracted", incident_id)
            return _failed(kind)
        doc = _render(kind, facts, source, audience)
        if doc is None:
            return _failed(kind)
        extra = {"incident_id": incident_id, "document": kind}
        if audience:
            extra["audience"] = audience
        return _answer(doc, fmt, extra)

    for kind in (*DOCUMENTS, "hypotheses"):
        def view(incident_id: str, kind=kind):
            return incident_document(incident_id, kind)
        bp.add_url_rule(f"/incidents/<incident_id>/{kind}", f"incident_{kind}", view, methods=["GET"])

    @bp.post("/postmortems")
    def postmortems():
        fmt, source = _options()
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise PayloadError("body", f"the body must be at most {MAX_BODY_BYTES} bytes", error="incident too large",
                               status=413)
        body = json_body(what="an incident object (title, severity, duration_minutes, services_affected, timeline, "
                              "root_cause; optional fix_applied, data_points)")
        facts = user_incident_facts(body)
        doc = _render("postmortem", facts, source)
        if doc is None:
            return _failed("postmortem")
        return _answer(doc, fmt, {"incident_id": None, "document": "postmortem", "title": facts["title"]})

    @bp.get("/llm")
    def llm_status():
        return json_response({"at": iso(time.time()), **_state().llm.stats(),
                              "documents_available": [*DOCUMENTS, "hypotheses"],
                              "audiences": list(AUDIENCES)})

    return bp
