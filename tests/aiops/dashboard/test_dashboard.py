"""The dashboard's server side: the page and its files, /config, /series, /auth, and the pure RED series.

The page itself is driven in a real Chromium in test_dashboard_browser.py.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import requests
from flask import Flask
from werkzeug.routing import Rule

from aiops import AIOps
from aiops.dashboard.data import Grid, latency_band_ms, make_grid, red_series
from aiops.dashboard.views import FEATURE_RULES, STATIC_DIR, features
from tests.helpers import wait_for_spans

STATIC = Path(STATIC_DIR)


def span(t, route="/a", duration_ms=10.0, error=0, service="shop"):
    return (service, route, t, duration_ms, error)


# -- pure functions -------------------------------------------------------------------------------


def test_grid_is_aligned_to_whole_steps_and_covers_the_range():
    grid = make_grid(now_s=1_000_007.5, range_s=300, points=30)
    assert grid.step_s == 10
    assert grid.end_s == 1_000_010.0 and grid.end_s % 10 == 0
    assert grid.points == 30 and grid.start_s == 1_000_010.0 - 300
    assert grid.times()[:2] == [grid.start_s, grid.start_s + 10]
    assert grid.index(grid.start_s) == 0 and grid.index(grid.end_s - 0.001) == 29
    assert grid.index(grid.start_s - 0.001) is None and grid.index(grid.end_s) is None
    # the same grid a few seconds later in the same step: charts do not shift between refreshes
    assert make_grid(now_s=1_000_009.9, range_s=300, points=30) == grid


def test_grid_clamps_points():
    assert make_grid(0.0, 100, 1).points >= 2
    assert make_grid(0.0, 86400, 100000).points <= 500


def test_red_series_rate_errors_and_percentiles_per_bucket():
    grid = Grid(end_s=100.0, step_s=10.0, points=3)  # buckets [70,80) [80,90) [90,100)
    spans = [span(71, duration_ms=d) for d in (10, 20, 30, 40)] + [span(72, duration_ms=500, error=1)]
    spans += [span(95, route="/b", duration_ms=7)]
    spans += [span(69.9), span(100.0)]  # outside the grid: ignored
    out = red_series(spans, grid)
    a, b = out[("shop", "/a")], out[("shop", "/b")]
    assert a["requests_per_s"] == [0.5, 0.0, 0.0]
    assert a["error_ratio"] == [0.2, None, None]
    assert a["p50_ms"] == [30.0, None, None]      # nearest rank of 10,20,30,40,500
    assert a["p95_ms"] == [500.0, None, None]
    assert a["request_count"] == 5 and a["error_count"] == 1
    assert b["requests_per_s"] == [0.0, 0.0, 0.1] and b["p50_ms"] == [None, None, 7.0]
    assert set(out) == {("shop", "/a"), ("shop", "/b")}


def test_red_series_keeps_services_apart():
    grid = Grid(end_s=10.0, step_s=10.0, points=1)
    out = red_series([span(1, service="front"), span(2, service="back", error=1)], grid)
    assert out[("front", "/a")]["error_ratio"] == [0.0]
    assert out[("back", "/a")]["error_ratio"] == [1.0]


def test_latency_band_is_symmetric_in_log_space():
    low, high = latency_band_ms(math.log(100.0), 0.5, sigmas=2.0)
    assert low == pytest.approx(100.0 * math.exp(-1.0))
    assert high == pytest.approx(100.0 * math.exp(1.0))
    assert low * high == pytest.approx(100.0 ** 2)


def test_features_are_found_from_url_rules():
    rules = [Rule(r) for r in ("/aiops/slo/burn", "/aiops/release/<service>", "/aiops/alerts/groups",
                               "/api/v1/simulator/scenarios", "/aiops/incidents/<incident_id>/replay",
                               "/aiops/incidents/<incident_id>/narrative", "/simulate/status", "/aiops/metrics",
                               "/aiops/slow", "/aiops/incidents/<incident_id>/replayed")]
    found = features(rules)
    assert set(found) == set(FEATURE_RULES)
    assert found["slo"] == ["/aiops/release/<service>", "/aiops/slo/burn"]
    assert found["alerts"] == ["/aiops/alerts/groups"]
    assert found["scenarios"] == ["/api/v1/simulator/scenarios"]
    assert found["replay"] == ["/aiops/incidents/<incident_id>/replay"]
    assert found["docs"] == ["/aiops/incidents/<incident_id>/narrative"]
    assert found["chaos"] == ["/simulate/status"]
    assert features([Rule("/aiops/metrics")]) == {name: [] for name in FEATURE_RULES}


# -- static files: offline, vendored, escaped ---------------------------------------------------


def test_vendored_uplot_is_pinned_and_licensed():
    manifest = json.loads((STATIC / "vendor" / "VENDOR.json").read_text())
    version = manifest["uplot"]["version"]
    js = (STATIC / "vendor" / "uplot" / "uPlot.iife.min.js").read_text()
    assert f"(v{version})" in js.splitlines()[0]
    assert "MIT License" in (STATIC / "vendor" / "uplot" / "LICENSE").read_text()
    for path in manifest["uplot"]["files"]:
        assert (STATIC / "vendor" / path).is_file(), path


def test_page_loads_nothing_from_elsewhere():
    html = (STATIC / "index.html").read_text()
    for attr in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert not re.match(r"(?i)(https?:)?//", attr), attr  # no CDN, no absolute URL
    js = (STATIC / "dashboard.js").read_text()
    assert not re.search(r"(?i)https?://(?!www\.w3\.org/2000/svg)", js)


def test_script_never_writes_html_from_data():
    """Telemetry text (paths, error messages) is untrusted: the page only ever sets text."""
    js = (STATIC / "dashboard.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink


# -- HTTP -----------------------------------------------------------------------------------------


@pytest.fixture
def demo(live_server, demo_app):
    """``demo(**config) -> (app, LiveServer)``: the demo shop served on loopback."""

    def start(**config):
        app = demo_app(**config)
        return app, live_server(app)

    return start


def test_page_is_served_with_a_strict_policy(demo):
    app, server = demo()
    bare = requests.get(server.url + "/aiops/dashboard", allow_redirects=False)
    assert bare.status_code == 308 and bare.headers["Location"].endswith("/aiops/dashboard/")
    page = requests.get(server.url + "/aiops/dashboard")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "<title>AIOps dashboard</title>" in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    for asset in ("static/dashboard.js", "static/dashboard.css", "static/vendor/uplot/uPlot.iife.min.js",
                  "static/vendor/uplot/uPlot.min.css", "static/vendor/uplot/LICENSE"):
        r = requests.get(f"{server.url}/aiops/dashboard/{asset}")
        assert r.status_code == 200 and len(r.content) > 500, asset
    missing = requests.get(server.url + "/aiops/dashboard/static/nope.js")
    assert missing.status_code == 404


def test_config_reports_key_refresh_and_installed_features(demo):
    app, server = demo(AIOPS_API_KEY="k1", AIOPS_DASHBOARD_REFRESH_S=2)
    config = requests.get(server.url + "/aiops/dashboard/config").json()
    assert config["api_key_required"] is True and config["refresh_s"] == 2
    assert config["chaos_enabled"] is True
    assert config["features"]["chaos"] == ["/simulate/status"]
    assert "k1" not in json.dumps(config)  # never the key itself


def test_auth_checks_the_key_and_changes_nothing(demo):
    app, server = demo(AIOPS_API_KEY="s3cret")
    missing = requests.post(server.url + "/aiops/dashboard/auth")
    assert missing.status_code == 401 and missing.json()["error"] == "missing API key"
    wrong = requests.post(server.url + "/aiops/dashboard/auth", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid API key"
    assert "X-API-Key" in wrong.json()["detail"]
    right = requests.post(server.url + "/aiops/dashboard/auth", headers={"X-API-Key": "s3cret"})
    assert right.status_code == 200 and right.json() == {"ok": True, "api_key_required": True}
    get = requests.get(server.url + "/aiops/dashboard/auth")
    assert get.status_code == 405 and get.headers["Allow"] == "POST"


def test_auth_without_a_configured_key_lets_everyone_in(demo):
    app, server = demo()
    assert requests.post(server.url + "/aiops/dashboard/auth").json() == {"ok": True, "api_key_required": False}


@pytest.mark.parametrize("query, name", [("range_s=5", "range_s"), ("range_s=abc", "range_s"),
                                         ("range_s=999999999", "range_s"), ("points=1", "points"),
                                         ("points=2.5", "points"), ("points=100000", "points")])
def test_series_rejects_bad_input_with_what_is_valid(demo, query, name):
    app, server = demo()
    r = requests.get(f"{server.url}/aiops/dashboard/series?{query}")
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == f"invalid {name}" and "within" in body["detail"]


def test_series_counts_live_requests_and_carries_the_baseline(demo, tmp_path):
    app, server = demo()
    http = requests.Session()
    for _ in range(40):
        http.get(server.url + "/inventory")
    for _ in range(4):
        http.get(server.url + "/health")
    wait_for_spans(app, str(tmp_path / "demo.db"), 44)
    assert http.post(server.url + "/aiops/analyze").status_code == 200
    body = http.get(server.url + "/aiops/dashboard/series?range_s=300&points=30").json()
    assert body["range_s"] == 300 and body["step_s"] == 10 and len(body["t"]) == 30
    inventory, health = body["routes"]["/inventory"], body["routes"]["/health"]
    assert inventory["request_count"] == 40 and inventory["error_count"] == 0
    assert sum(inventory["requests_per_s"]) * body["step_s"] == pytest.approx(40)
    assert len(inventory["p50_ms"]) == 30 and max(v for v in inventory["p50_ms"] if v is not None) > 0
    base = inventory["baseline"]
    assert base["ready"] is True and base["requests_learned"] == 40
    assert base["band_low_ms"] <= base["p50_ms"] <= base["band_high_ms"]
    assert health["request_count"] == 4 and health["baseline"]["ready"] is False
    # the same numbers as /aiops/metrics over the same window
    metrics = http.get(server.url + "/aiops/metrics?window_s=300").json()["metrics"]
    assert metrics["/inventory"]["request_count"] == 40
    assert metrics["/inventory"]["baseline_latency_ms"] == base["p50_ms"]


def test_dashboard_can_be_switched_off(demo):
    app, server = demo(AIOPS_DASHBOARD_ENABLED=False)
    r = requests.get(server.url + "/aiops/dashboard/")
    assert r.status_code == 404 and r.json()["error"].startswith("no such endpoint")
    assert requests.get(server.url + "/aiops/metrics").status_code == 200


def test_bad_refresh_setting_is_refused_at_setup(tmp_path):
    app = Flask(__name__)
    app.config.update(TELEMETRY_DB_PATH=str(tmp_path / "x.db"), AIOPS_SCHEDULER=False, AIOPS_DASHBOARD_REFRESH_S=0)
    with pytest.raises(ValueError, match="AIOPS_DASHBOARD_REFRESH_S"):
        AIOps(app)
