"""Remake docs/dashboard.png: the live demo, steady traffic, every feature of the page in use.

The demo shop runs on a loopback server (analysis every 2 s over a 10 s window) with an availability SLO
on /inventory and /checkout defined through ``POST /aiops/slo/shop/targets``; a thread sends steady
traffic to every route for ``--learn-s`` seconds. Then the script posts three alerts (two correlated, one
unrelated certificate warning) to ``POST /aiops/alerts``, starts a scenario from the page's scenario
launcher, clicks "Apply fault" in the chaos panel (80 % errors on /inventory), waits until the incident is
on the page, checks the release gate from the SLO panel, lets the charts catch up and takes a full-page
screenshot at 1280 px in headless Debian Chromium. With Pillow installed the PNG is reduced to 256
colours.

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
STORM = [  # two correlated alerts of one service, and an unrelated certificate warning
    {"alert_name": "ErrorRateHigh", "service": "payment-gateway", "severity": "critical",
     "message": "Error rate 4.7% exceeds 1%", "labels": {"namespace": "payments"}},
    {"alert_name": "PodCrashLoopBackOff", "service": "payment-gateway", "severity": "critical",
     "message": "Pod payment-gw-def34 in CrashLoopBackOff", "labels": {"namespace": "payments"}},
    {"alert_name": "CertExpiryWarning", "service": "auth-service", "severity": "warning",
     "message": "TLS certificate expires in 14 days", "labels": {"namespace": "auth"}},
]
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
    from tests.helpers import LiveServer

    tmp = tempfile.mkdtemp()
    app = create_app({"TELEMETRY_DB_PATH": os.path.join(tmp, "demo.db"), "DEMO_LATENCY_SCALE": 0.5,
                      "DEMO_ERROR_RATE": 0.0, "DEMO_SEED": 3, "AIOPS_ANALYSIS_INTERVAL_S": 2, "AIOPS_WINDOW_S": 10,
                      "AIOPS_DASHBOARD_REFRESH_S": 2})
    server = LiveServer(app)
    for route in ("/inventory", "/checkout"):
        r = requests.post(server.url + "/aiops/slo/shop/targets", timeout=10, json={
            "name": route.strip("/") + "-availability", "route": route, "indicator": "availability",
            "target": 0.995, "timeWindow": "1d"})
        r.raise_for_status()
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
            requests.post(server.url + "/aiops/alerts", json=STORM, timeout=10).raise_for_status()
            page.click('#scenarios-body li[data-scenario="memory_leak_gradual"] button')
            page.wait_for_selector("#simulations li", timeout=60_000)
            page.select_option("#chaos-type", "error")
            page.select_option("#chaos-endpoint", "/inventory")
            page.fill("#chaos-rate", "0.8")
            page.click("#chaos-apply")
            page.wait_for_selector('#incident-list .incident:has(.node.root:text-is("/inventory"))', timeout=120_000)
            time.sleep(12)  # the charts and the graph show the errors for a few buckets
            page.click('#slo-body li:has(b:text-is("shop")) button')
            page.wait_for_selector('#slo-body [data-gate="shop"] .pill', timeout=30_000)
            page.wait_for_timeout(2500)  # one more refresh with the gate's answer in place
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
