"""Remake docs/dashboard.png: the live demo, steady traffic, a fault injected from the chaos panel.

The demo shop runs on a loopback server (analysis every 2 s over a 10 s window); a thread sends steady
traffic to every route for ``--learn-s`` seconds, then the script clicks "Apply fault" in the page's chaos
panel (80 % errors on /inventory), waits until the incident is on the page, lets the charts catch up and
takes a full-page screenshot at 1280 px in headless Debian Chromium. With Pillow installed the PNG is
reduced to 256 colours.

    .venv/bin/python bench/dashboard_screenshot.py [--out docs/dashboard.png] [--learn-s 120]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import requests  # noqa: E402

ROUTES = [("GET", "/health"), ("GET", "/inventory"), ("POST", "/payment"), ("POST", "/checkout")]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "dashboard.png"))
    parser.add_argument("--learn-s", type=float, default=120.0)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from aiops import AIOps
    from app import create_app
    from telemetry.store import SpanStore
    from tests.conftest import LiveServer

    tmp = tempfile.mkdtemp()
    app = create_app({"TELEMETRY_DB_PATH": os.path.join(tmp, "demo.db"), "DEMO_LATENCY_SCALE": 0.5,
                      "DEMO_ERROR_RATE": 0.0, "DEMO_SEED": 3, "AIOPS_ANALYSIS_INTERVAL_S": 2, "AIOPS_WINDOW_S": 10,
                      "AIOPS_DASHBOARD_REFRESH_S": 2})
    server = LiveServer(app)
    stop = threading.Event()

    def traffic():
        http = requests.Session()
        while not stop.is_set():
            for method, path in ROUTES:
                try:
                    http.request(method, server.url + path, timeout=10)
                except requests.RequestException:
                    pass
            time.sleep(0.15)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url + "/aiops/dashboard")
            page.select_option("#range", "300")
            print(f"learning for {args.learn_s:g} s ...", flush=True)
            time.sleep(args.learn_s)
            page.select_option("#chaos-type", "error")
            page.select_option("#chaos-endpoint", "/inventory")
            page.fill("#chaos-rate", "0.8")
            page.click("#chaos-apply")
            page.wait_for_selector("#incident-list .incident", timeout=120_000)
            time.sleep(12)  # the charts and the graph show the errors for a few buckets
            page.evaluate("window.scrollTo(0, 0)")
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        stop.set()
        thread.join(15)
        server.stop()
        AIOps.shutdown(app)
        SpanStore.close_all()
    try:
        from PIL import Image
        image = Image.open(args.out).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
        image.save(args.out, optimize=True)
    except ImportError:
        pass
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
