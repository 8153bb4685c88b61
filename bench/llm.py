"""LLM layer costs: deterministic writers per document, and the client path's overhead.

1. Deterministic writers: facts extraction + each writer over a real
   incident from the analysis engine (seeded traffic, error fault on
   /payment), µs per document, and the prompt each document would send
   (characters, ≈ tokens at 4 characters a token).
2. Client path: ``LLMWriter.write`` (cache off) against a loopback server
   speaking /v1/chat/completions that answers at once, versus the raw
   ``openai`` client call with the same messages: the ratio is what our
   layer (prompt building, sanitising, breaker, checks) adds to a call.
   A cache hit is timed too. A real model adds 0.5 to 20 s per document on
   top (see README), which dwarfs both.

    .venv/bin/python bench/llm.py [--docs 2000] [--calls 200] [--rounds 7]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from aiops.analysis.config import AnalysisConfig  # noqa: E402
from aiops.analysis.engine import Analyzer  # noqa: E402
from aiops.analysis.store import AnalysisStore  # noqa: E402
from aiops.testing.synthetic import Fault, generate, replay, shop_routes  # noqa: E402
from llm import LLMWriter  # noqa: E402
from llm.documents import DOCUMENTS, render  # noqa: E402
from llm.facts import customer_facts, incident_facts  # noqa: E402
from telemetry.store import INSERT_SPAN as _INSERT, connect  # noqa: E402

T0 = 1_800_000_000.0
RATES = {("shop", "/health"): 2, ("shop", "/inventory"): 3, ("shop", "/payment"): 3, ("shop", "/checkout"): 5}
ANSWER = "# Narrative\n\n" + "The model's text. " * 60


def real_incident() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "t.db")
        conn, store = connect(db), AnalysisStore(db)
        analyzer = Analyzer(store, AnalysisConfig())
        traffic = generate(shop_routes(), RATES, T0, 900, [Fault(("shop", "/payment"), "error", T0 + 600,
                                                                   T0 + 720, 1.0)], seed=0)

        def write(rows):
            conn.execute("BEGIN")
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")

        replay(traffic, write, analyzer.run_pass, T0 + 10, T0 + 900, 10)
        body = store.incidents()[0].to_json()
        conn.close()
        store.close()
    return body


class Server:
    def __init__(self):
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "bench",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": ANSWER}}],
                           "usage": {"prompt_tokens": 900, "completion_tokens": 280, "total_tokens": 1180}}).encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()  # answer in one segment, not after a delayed ACK (Nagle)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def per_call_us(fn, n: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean µs per call of ``n`` calls."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        results.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=2000, help="documents per timing round (default 2000)")
    parser.add_argument("--calls", type=int, default=200, help="HTTP calls per timing round (default 200)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (default 7)")
    args = parser.parse_args()

    body = real_incident()
    facts = incident_facts(body)
    template_writer = LLMWriter(enabled=False)
    print(f"incident {body['id']}: {body['title']}, {len(body['anomalies'])} anomalies, "
          f"{body['trace_correlation']['total_traces']} traces\n")
    print("1. deterministic writers (facts extraction included), per document")
    print(f"{'document':<22}{'µs/doc':>10}{'chars':>8}{'prompt chars':>14}{'≈ prompt tokens':>17}")
    probe = LLMWriter(base_url="http://127.0.0.1:9/v1", model="probe")
    for kind, audience in [(k, None) for k in DOCUMENTS if k != "comms"] + \
            [("comms", a) for a in ("engineering", "management", "customer")]:
        def write(kind=kind, audience=audience):
            return render(template_writer, kind, incident_facts(body), audience)
        us = per_call_us(write, args.docs)
        text = render(template_writer, kind, facts, audience).text
        spec_facts = facts if not (kind == "comms" and audience == "customer") else \
            {**customer_facts(facts), "audience": "customer"}
        messages = probe._messages(DOCUMENTS[kind].instructions, spec_facts)
        prompt = sum(len(m["content"]) for m in messages)
        name = kind + (f" ({audience})" if audience else "")
        print(f"{name:<22}{us:>10.1f}{len(text):>8}{prompt:>14}{prompt // 4:>17}")

    server = Server()
    try:
        import openai
        raw = openai.OpenAI(base_url=server.url, api_key="bench", max_retries=0, timeout=10)
        writer = LLMWriter(base_url=server.url, api_key="bench", model="bench", retries=0, cache_size=0,
                           breaker_failures=10**6)
        messages = writer._messages(DOCUMENTS["narrative"].instructions, facts)

        def raw_call():
            raw.chat.completions.create(model="bench", messages=messages, max_tokens=1500, temperature=0.2)

        def our_call():
            doc = render(writer, "narrative", facts)
            assert doc.source == "llm", doc.fallback_reason

        cached = LLMWriter(base_url=server.url, api_key="bench", model="bench", retries=0)
        render(cached, "narrative", facts)

        for _ in range(20):  # warm up connections
            raw_call()
            our_call()
        # Interleaved rounds (raw, ours, ours, raw, ...): drift on a shared machine hits both alike.
        raw_rounds, our_rounds = [], []
        for i in range(args.rounds):
            pair = [(raw_rounds, raw_call), (our_rounds, our_call)]
            for bucket, fn in (pair if i % 2 == 0 else pair[::-1]):
                bucket.append(per_call_us(fn, args.calls, rounds=1))
        ratios = [o / r for o, r in zip(our_rounds, raw_rounds)]
        raw_us, ours_us = statistics.median(raw_rounds), statistics.median(our_rounds)
        hit_us = per_call_us(lambda: render(cached, "narrative", facts), args.docs)
        instructions = DOCUMENTS["narrative"].instructions
        own_us = per_call_us(lambda: (writer._messages(instructions, facts),
                                      writer._cache_key("narrative", facts, instructions, None)), args.docs // 4)
        print(f"\n2. client path against a loopback chat-completions server (answers at once), per call; "
              f"median of {args.rounds} interleaved rounds of {args.calls}")
        print(f"{'path':<48}{'µs/call':>10}{'ratio':>8}")
        print(f"{'raw openai client: chat.completions.create':<48}{raw_us:>10.0f}{1.0:>8.2f}")
        print(f"{'LLMWriter narrative (prompt, sanitise, checks)':<48}{ours_us:>10.0f}{statistics.median(ratios):>8.2f}"
              f"   (round ratios {min(ratios):.2f} to {max(ratios):.2f})")
        print(f"{'LLMWriter narrative, cache hit':<48}{hit_us:>10.1f}{hit_us / raw_us:>8.3f}")
        print(f"{'our own work per call, no HTTP (prompt + key)':<48}{own_us:>10.0f}{own_us / raw_us:>8.3f}")
        raw.close()
        writer.close()
        cached.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
