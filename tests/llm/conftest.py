"""A real loopback HTTP server speaking POST /v1/chat/completions, scripted per test.

The product's ``openai`` client talks to it over TCP exactly as it would
to OpenAI, Ollama, vLLM or llama.cpp; only the model is fake. Each request
is recorded (path, headers, JSON body) so tests can inspect the prompt.
"""
from __future__ import annotations

import json
import socket
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aiops.testing.synthetic import shop_routes
from tests.aiops.helpers import Run, fault

LLM_ENV = ("AIOPS_LLM_ENABLED", "AIOPS_LLM_BASE_URL", "AIOPS_LLM_API_KEY", "AIOPS_LLM_MODEL", "OPENAI_BASE_URL",
           "OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch):
    """Tests configure the endpoint explicitly; a developer's OPENAI_* must not leak in."""
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)


def reply(content="ok", usage=True, delay_s=0.0):
    """A normal completion (after ``delay_s``)."""
    return {"kind": "ok", "content": content, "usage": usage, "delay_s": delay_s}


def hang(seconds=30.0):
    return {"kind": "hang", "delay_s": seconds}


def status(code=500, body=None):
    return {"kind": "status", "code": code, "body": body}


def garbage(body="<html>this is not json{"):
    return {"kind": "garbage", "body": body}


class ChatServer:
    """``respond(*specs)`` queues answers; when the queue is empty ``default`` answers."""

    def __init__(self):
        self.requests: list[dict] = []
        self.queue: deque = deque()
        self.default = reply("default answer")
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()  # answer in one segment, not after a delayed ACK (Nagle)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with server._lock:
                    server.requests.append({"path": self.path, "raw": raw.decode(), "body": body,
                                            "headers": {k.lower(): v for k, v in self.headers.items()}})
                    spec = server.queue.popleft() if server.queue else server.default
                if spec.get("delay_s"):
                    if server.stopping.wait(spec["delay_s"]):
                        return
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, json.dumps({"error": {"message": "not found"}}))
                if spec["kind"] == "status":
                    return self._send(spec["code"], spec["body"] or json.dumps(
                        {"error": {"message": "model exploded", "type": "server_error"}}))
                if spec["kind"] == "garbage":
                    return self._send(200, spec["body"])
                content = spec["content"]
                answer = {"id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion", "created": 0,
                          "model": (body or {}).get("model", "?"),
                          "choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": content}}]}
                if spec["usage"]:
                    answer["usage"] = {"prompt_tokens": len(raw) // 4, "completion_tokens": len(str(content)) // 4,
                                       "total_tokens": len(raw) // 4 + len(str(content)) // 4}
                self._send(200, json.dumps(answer))

            def _send(self, code, text):
                data = text.encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def respond(self, *specs) -> None:
        with self._lock:
            self.queue.extend(specs)

    def prompts(self) -> list[str]:
        """The text of every message of every request, one string per request."""
        return ["\n".join(m["content"] for m in r["body"]["messages"]) for r in self.requests]

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.stop()


@pytest.fixture
def make_writer(chat_server):
    """``make_writer(**options) -> LLMWriter`` pointed at the chat server; closed after the test."""
    from llm import LLMWriter
    writers = []

    def make(**options):
        options = {"base_url": chat_server.url, "api_key": "sk-test-0123456789abcdef", "model": "fake-model",
                   "timeout_s": 5.0, "retries": 0, **options}
        writer = LLMWriter(**options)
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        writer.close()


SHOP_RATES = {("shop", "/health"): 2, ("shop", "/inventory"): 3, ("shop", "/payment"): 3, ("shop", "/checkout"): 5}


@pytest.fixture(scope="session")
def scenario_runs(tmp_path_factory):
    """Real incidents from the analysis engine over seeded traffic with known faults, by scenario name."""
    cache: dict = {}

    def get(name: str) -> Run:
        if name not in cache:
            faults = {
                "payment_errors": [fault(("shop", "/payment"), "error", 600, 720, 1.0)],
                "payment_latency": [fault(("shop", "/payment"), "latency", 600, 720, 2000)],
                "inventory_timeout": [fault(("shop", "/inventory"), "timeout", 600, 720, 8000)],
            }[name]
            run = Run(tmp_path_factory.mktemp(name) / "t.db", shop_routes(), SHOP_RATES, 900, faults)
            run.store.release_lock(run.analyzer.owner)
            cache[name] = run
        return cache[name]

    yield get
    for run in cache.values():
        run.store.close()
