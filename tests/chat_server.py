"""A real loopback HTTP server speaking POST /v1/chat/completions, scripted per test.

The product's ``openai`` client talks to it over TCP exactly as it would
to OpenAI, Ollama, vLLM or llama.cpp; only the model is fake. Each request
is recorded (path, headers, JSON body) so tests can inspect the prompt.
The ``chat_server`` fixture (tests/conftest.py) starts one per test and stops it after.
"""
from __future__ import annotations

import json
import socket
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
