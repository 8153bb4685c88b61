"""SLO maths against hand-computed cases, the per-minute counts in a real
SQLite file, the alert state machine, forecast and release gate."""
import json
import math

import pytest

from aiops.slo.budgets import (
    BASE_RULES,
    WindowCounts,
    alert_rules,
    burn_rate,
    burn_snapshot,
    composite_burn_rate,
    error_budget,
    evaluate_rules,
    forecast,
    heatmap,
    next_alert,
    release_decision,
    risk_level,
    windows_needed_s,
)
from aiops.slo.config import SLOSettings
from aiops.slo.definitions import SLODefinition, parse_definitions, validate_service, validate_slo
from aiops.slo.engine import SLOEngine, load_slo_file
from aiops.slo.narrative import write_service_narrative
from aiops.slo.store import SLOStore
from aiops.stats import linear_fit
from aiops.store.database import Database
from telemetry.errors import PayloadError as SLOValidationError
from telemetry.store import INSERT_SPAN as _INSERT, connect

T0 = 1_800_000_000.0  # a whole minute (T0 % 60 == 0)
MIN = 60.0
HOUR = 3600.0
DAY = 86400.0


def slo(indicator="availability", target=0.999, window_s=30 * DAY, **kw):
    return SLODefinition(name=kw.pop("name", "s"), service=kw.pop("service", "shop"), indicator=indicator,
                         target=target, window_s=window_s, id=kw.pop("id", 1), **kw)


def counts(pairs):
    """{window_s: (total, bad)} -> {window_s: WindowCounts}"""
    return {w: WindowCounts(w, t, b) for w, (t, b) in pairs.items()}


# -- hand-computed maths ------------------------------------------------------------------


def test_burn_rate_hand_computed():
    # 99.9 % availability: allowed bad ratio 0.001.
    # 1h window: 10,000 requests, 20 bad -> bad ratio 0.002 -> burn 2.0.
    assert burn_rate(20, 10_000, 0.001) == pytest.approx(2.0)
    # 5m window: 400 requests, 400 bad (full outage) -> burn 1000.
    assert burn_rate(400, 400, 0.001) == pytest.approx(1000.0)
    # no traffic burns nothing
    assert burn_rate(0, 0, 0.001) == 0.0


def test_error_budget_hand_computed():
    # 99.9 % over 30 days, 1,000,000 requests, 250 bad:
    # allowed bad = 1,000; consumed 250 / 1,000 = 0.25; remaining 0.75;
    # a full outage may last 0.001 x 43,200 min = 43.2 min; 0.75 of it = 32.4 min left.
    budget = error_budget(slo(), WindowCounts(30 * DAY, 1_000_000, 250))
    assert budget["allowed_bad_requests"] == pytest.approx(1000.0)
    assert budget["consumed_ratio"] == pytest.approx(0.25)
    assert budget["remaining_ratio"] == pytest.approx(0.75)
    assert budget["full_outage_minutes_total"] == pytest.approx(43.2)
    assert budget["full_outage_minutes_left"] == pytest.approx(32.4)
    assert budget["sli"] == pytest.approx(0.99975)
    assert budget["exhausted"] is False
    # error_rate SLO, target 0.01 (at most 1 % errors) over 7 days: 2,000 requests, 30 errors ->
    # allowed 20, consumed 1.5, remaining -0.5 (overspent), no outage minutes left.
    overspent = error_budget(slo("error_rate", 0.01, 7 * DAY), WindowCounts(7 * DAY, 2000, 30))
    assert overspent["consumed_ratio"] == pytest.approx(1.5)
    assert overspent["remaining_ratio"] == pytest.approx(-0.5)
    assert overspent["exhausted"] is True
    assert overspent["full_outage_minutes_left"] == 0.0
    assert overspent["full_outage_minutes_total"] == pytest.approx(0.01 * 7 * 24 * 60)


def test_composite_and_risk_levels():
    # 0.4 x 10 + 0.35 x 4 + 0.25 x 0.8 = 4 + 1.4 + 0.2 = 5.6
    assert composite_burn_rate({"5m": 10.0, "1h": 4.0, "24h": 0.8}) == pytest.approx(5.6)
    # 0.4 x 1 + 0.35 x 1 + 0.25 x 1 = 1
    assert composite_burn_rate({"5m": 1.0, "1h": 1.0, "24h": 1.0}) == pytest.approx(1.0)
    cases = {0.0: "SAFE", 0.999: "SAFE", 1.0: "OBSERVE", 1.49: "OBSERVE", 1.5: "DANGER", 2.0: "DANGER",
             2.01: "FREEZE", 5.6: "FREEZE"}
    for composite, level in cases.items():
        assert risk_level(composite) == level, composite


def test_alert_windows_scale_with_the_slo_window():
    assert alert_rules(30 * DAY) == BASE_RULES
    assert [(r.long_s, r.short_s) for r in BASE_RULES] == [(HOUR, 5 * MIN), (6 * HOUR, 30 * MIN),
                                                           (3 * DAY, 6 * HOUR)]
    # 7-day SLO: factor 7/30: 1h -> 14 min, 5m -> 1.17 min -> 1 min; 6h -> 84 min, 30m -> 7 min;
    # 3d -> 16.8 h, 6h -> 84 min
    seven = alert_rules(7 * DAY)
    assert [(r.long_s, r.short_s) for r in seven] == [(14 * MIN, 1 * MIN), (84 * MIN, 7 * MIN),
                                                      (1008 * MIN, 84 * MIN)]
    assert [r.burn_rate for r in seven] == [14.4, 6.0, 1.0]


def _windows(long_short_pairs):
    """Counts for the three 30-day rules' windows: {window_s: (total, bad)}."""
    return counts(long_short_pairs)


def test_alert_needs_both_windows_over_the_rate():
    rules = BASE_RULES[:1]  # 14.4x over 1h and 5m; allowed bad ratio 0.001 -> 14.4x means 1.44 % bad
    # 1h: 10,000 requests, 200 bad -> 20x; 5m: 1,000 requests, 0 bad -> 0x: the burn has stopped.
    ev = evaluate_rules(rules, _windows({HOUR: (10_000, 200), 5 * MIN: (1000, 0)}), 0.001, 100, 5)[0]
    assert (ev.condition_met, ev.firing) == (False, False)
    assert "5m burn 0.00" in ev.reason
    # 1h: 10,000 / 100 bad -> 10x; 5m: 1,000 / 100 bad -> 100x: a fresh spike not yet significant over 1h.
    ev = evaluate_rules(rules, _windows({HOUR: (10_000, 100), 5 * MIN: (1000, 100)}), 0.001, 100, 5)[0]
    assert (ev.condition_met, ev.firing) == (False, False)
    assert "1h burn 10.00" in ev.reason
    # 1h: 10,000 / 150 bad -> 15x; 5m: 1,000 / 20 bad -> 20x: both over 14.4 -> fires.
    ev = evaluate_rules(rules, _windows({HOUR: (10_000, 150), 5 * MIN: (1000, 20)}), 0.001, 100, 5)[0]
    assert (ev.condition_met, ev.firing) == (True, True)
    assert ev.long_rate == pytest.approx(15.0) and ev.short_rate == pytest.approx(20.0)


def test_low_traffic_does_not_page_and_says_why():
    # 1h and 5m: 3 requests, 1 failed -> 333x on both windows, but only 3 requests.
    ev = evaluate_rules(BASE_RULES[:1], _windows({HOUR: (3, 1), 5 * MIN: (3, 1)}), 0.001, 100, 5)[0]
    assert ev.condition_met and not ev.firing
    assert ev.reason.startswith("low traffic: 1 bad of 3 requests in 1h")
    assert "at least 100 requests and 5 bad" in ev.reason
    alert, event = next_alert(None, [ev], T0, 3600.0)
    assert event is None and alert["status"] == "suppressed" and alert["reason"] == ev.reason
    # enough requests but a single bad one: still not a page
    ev = evaluate_rules(BASE_RULES[:1], _windows({HOUR: (500, 1), 5 * MIN: (50, 1)}), 0.0001, 100, 5)[0]
    assert ev.condition_met and not ev.firing and ev.reason.startswith("low traffic: 1 bad of 500")


def test_one_incident_pages_once():
    # A full outage of 1 hour on 99.9 %: every window burns far above every rate.
    # 1h 10,000/10,000 bad; 5m 800/800; 6h 60,000/10,000; 30m 5,000/5,000; 3d 720,000/10,000.
    c = _windows({HOUR: (10_000, 10_000), 5 * MIN: (800, 800), 6 * HOUR: (60_000, 10_000),
                  30 * MIN: (5000, 5000), 3 * DAY: (720_000, 10_000)})
    evs = evaluate_rules(BASE_RULES, c, 0.001, 100, 5)
    assert [e.condition_met for e in evs] == [True, True, True]
    assert [e.firing for e in evs] == [True, False, False]
    assert evs[1].reason.startswith("suppressed by page-fast") and evs[2].reason.startswith("suppressed by page-fast")
    alert, event = next_alert(None, evs, T0, 3600.0)
    assert event == "opened" and alert["rule"] == "page-fast" and alert["severity"] == "page"
    alert["id"] = "SLO-1"
    # The next evaluation: still burning -> no second page.
    again, event = next_alert(alert, evs, T0 + 60, 3600.0)
    assert event is None and again["status"] == "firing" and again["id"] == "SLO-1"
    # The fast burn is over, the 6h/30m and 3d/6h conditions still hold -> same alert, no page.
    slow_only = _windows({HOUR: (10_000, 0), 5 * MIN: (800, 0), 6 * HOUR: (60_000, 10_000),
                          30 * MIN: (5000, 100), 3 * DAY: (720_000, 10_000)})
    evs2 = evaluate_rules(BASE_RULES, slow_only, 0.001, 100, 5)
    assert [e.firing for e in evs2] == [False, True, False]
    later, event = next_alert(again, evs2, T0 + 120, 3600.0)
    assert event is None and later["id"] == "SLO-1" and later["severity"] == "page"
    # All quiet -> resolved (notified once).
    quiet = _windows({w: (1000, 0) for w in (HOUR, 5 * MIN, 6 * HOUR, 30 * MIN, 3 * DAY)})
    done, event = next_alert(later, evaluate_rules(BASE_RULES, quiet, 0.001, 100, 5), T0 + 180, 3600.0)
    assert event == "resolved" and done["status"] == "resolved" and done["resolved_at"] == T0 + 180
    # It flaps back within the cooldown -> reopened silently.
    back, event = next_alert(done, evs, T0 + 240, 3600.0)
    assert event is None and back["status"] == "firing" and back["id"] == "SLO-1" and back["reopened"] == 1
    # A new burn after the cooldown is a new alert (no id yet: the engine gives one) and pages.
    back["status"], back["resolved_at"] = "resolved", T0 + 300
    new, event = next_alert(back, evs, T0 + 300 + 3601, 3600.0)
    assert event == "opened" and "id" not in new


def test_ticket_escalates_to_page():
    ticket_only = _windows({HOUR: (10_000, 20), 5 * MIN: (800, 2), 6 * HOUR: (60_000, 120),
                            30 * MIN: (5000, 10), 3 * DAY: (720_000, 1440)})
    evs = evaluate_rules(BASE_RULES, ticket_only, 0.001, 100, 5)  # 2x everywhere
    assert [e.firing for e in evs] == [False, False, True]
    alert, event = next_alert(None, evs, T0, 3600.0)
    assert event == "opened" and alert["severity"] == "ticket"
    alert["id"] = "SLO-2"
    paging = _windows({HOUR: (10_000, 2000), 5 * MIN: (800, 400), 6 * HOUR: (60_000, 2120),
                       30 * MIN: (5000, 1000), 3 * DAY: (720_000, 3440)})
    up, event = next_alert(alert, evaluate_rules(BASE_RULES, paging, 0.001, 100, 5), T0 + 60, 3600.0)
    assert event == "escalated" and up["severity"] == "page" and up["id"] == "SLO-2"


def test_forecast_linear_budget_decline():
    # Remaining budget falls 0.05 per hour, from 1.0 at t=0 to 0.5 at t=10h (11 points, exact line).
    # Composite burn rises 1.0 -> 2.0 over the same span.
    pts = [(T0 + h * HOUR, 1.0 - 0.05 * h, 1.0 + 0.1 * h) for h in range(11)]
    fc = forecast(pts, T0 + 10 * HOUR)
    assert fc["time_to_exhaustion_hours"] == pytest.approx(10.0)   # 0.5 left / 0.05 per hour
    assert fc["projected_exhaustion_time"] == "2027-01-16T04:00:00.000Z"  # T0 + 20 h
    assert fc["burn_rate_trend"] == "increasing"
    assert fc["confidence_level"] == "medium"  # 11 points, R^2 = 1 (high needs 30 points)
    assert fc["data_points_used"] == 11 and fc["r_squared"] == pytest.approx(1.0)
    assert "10.0 hours" in fc["forecast_message"]
    # 31 points on a line -> high confidence
    pts = [(T0 + h * HOUR, 1.0 - 0.01 * h, 0.5) for h in range(31)]
    fc = forecast(pts, T0 + 30 * HOUR)
    assert fc["confidence_level"] == "high" and fc["time_to_exhaustion_hours"] == pytest.approx(70.0)
    assert fc["burn_rate_trend"] == "stable"


def test_forecast_flat_noisy_and_exhausted():
    flat = forecast([(T0 + i * HOUR, 0.8, 0.0) for i in range(12)], T0 + 11 * HOUR)
    assert flat["time_to_exhaustion_hours"] is None and flat["projected_exhaustion_time"] is None
    assert flat["burn_rate_trend"] == "stable" and "not shrinking" in flat["forecast_message"]
    noisy = forecast([(T0, 0.9, 3.0), (T0 + HOUR, 0.95, 0.2), (T0 + 2 * HOUR, 0.85, 2.0),
                      (T0 + 3 * HOUR, 0.9, 0.1)], T0 + 3 * HOUR)
    assert noisy["confidence_level"] == "low"
    assert forecast([], T0)["data_points_used"] == 0
    done = forecast([(T0 + i * HOUR, -0.1 * i, 3.0) for i in range(4)], T0 + 3 * HOUR)
    assert done["time_to_exhaustion_hours"] == 0.0 and "exhausted" in done["forecast_message"]
    slope, intercept, r2 = linear_fit([0, 1, 2, 3], [1, 3, 5, 7])
    assert (slope, intercept, r2) == (2.0, 1.0, 1.0)


def test_release_decision_rules():
    assert release_decision("SAFE", [], [])["decision"] == "approved"
    assert release_decision("OBSERVE", [], [])["decision"] == "caution"
    assert release_decision("FREEZE", [], [])["decision"] == "blocked"
    page = {"id": "SLO-1", "slo_name": "s", "rule": "page-fast", "status": "firing", "severity": "page"}
    ticket = {**page, "rule": "ticket", "severity": "ticket"}
    assert release_decision("SAFE", [], [page])["decision"] == "blocked"
    assert release_decision("SAFE", [], [ticket])["decision"] == "caution"
    high = {"id": "INC-1", "severity": "high", "status": "active"}
    medium = {**high, "severity": "medium"}
    blocked = release_decision("SAFE", [high], [])
    assert blocked["decision"] == "blocked" and blocked["blockers"] == ["incident INC-1 (high) is active"]
    assert release_decision("SAFE", [medium], [])["decision"] == "caution"
    over = release_decision("FREEZE", [], [], {"who": "ana", "reason": "hotfix for the outage"})
    assert over["decision"] == "approved" and over["overridden"] and over["blockers"]


def test_validation_names_the_field():
    cases = [
        ({"service": "a", "indicator": "uptime", "target": 0.9}, "indicator"),
        ({"service": "a", "indicator": "availability", "target": 1.2}, "target"),
        ({"service": "a", "indicator": "availability", "target": "0.9"}, "target"),
        ({"service": "a", "indicator": "latency", "target": 0.9}, "threshold_ms"),
        ({"service": "a", "indicator": "latency", "target": 0.9, "threshold_ms": 123}, "threshold_ms"),
        ({"service": "a", "indicator": "availability", "target": 0.9, "threshold_ms": 100}, "threshold_ms"),
        ({"service": "a", "indicator": "availability", "target": 0.9, "timeWindow": "30 days"}, "timeWindow"),
        ({"service": "a", "indicator": "availability", "target": 0.9,
          "timeWindow": [{"duration": "1M", "isRolling": True}]}, "timeWindow.duration"),
        ({"service": "a", "indicator": "availability", "target": 0.9,
          "timeWindow": [{"duration": "30d", "isRolling": False}]}, "timeWindow.isRolling"),
        ({"service": "a", "indicator": "availability", "target": 0.9, "budgetingMethod": "Timeslices"},
         "budgetingMethod"),
        ({"service": "a", "indicator": "error_rate", "target": 0.9}, "target"),
        ({"indicator": "availability", "target": 0.9}, "service"),
        ({"service": "a", "indicator": "availability", "target": 0.9, "colour": "red"}, "colour"),
    ]
    for raw, name in cases:
        with pytest.raises(SLOValidationError) as info:
            validate_slo(raw)
        assert info.value.field == name, (raw, info.value)
    ok = validate_slo({"service": "a", "indicator": "latency", "threshold_ms": 300, "target": 0.99,
                       "timeWindow": [{"duration": "7d", "isRolling": True}], "route": "/pay"})
    assert ok.window_s == 7 * DAY and ok.threshold_ms == 300 and ok.name == "a-pay-latency"
    with pytest.raises(SLOValidationError) as info:
        validate_service({"name": "x", "tier": 4})
    assert info.value.field == "tier"


# -- the store: per-minute counts in a real SQLite file --------------------------------------


def write(conn, service, route, at, n, bad=0, duration_ms=10.0, status=200, method="GET"):
    """n spans at ``at``; the first ``bad`` of them are 500s."""
    rows = []
    for i in range(n):
        failed = i < bad
        rows.append((f"{i:032x}", f"{i:016x}", None, service, route, method, route,
                     500 if failed else status, at, duration_ms, 1 if failed else 0, None, None, None))
    conn.execute("BEGIN")
    conn.executemany(_INSERT, rows)
    conn.execute("COMMIT")


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "t.db")
    conn = connect(path)
    store = Database(path)
    yield conn, SLOStore(store), store
    conn.close()
    store.close()


def test_window_counts_and_burn_from_stored_spans(db):
    conn, slo_store, _ = db
    now = T0 + 30  # half-way through minute T0
    # stated counts: minute of now: 10 requests, 2 bad; 10 min ago: 100 / 1; 2 h ago: 1,000 / 10;
    # 2 days ago: 500 / 50; 40 days ago (outside 30 d): 999 / 999; another service: ignored.
    write(conn, "shop", "/pay", now - 5, 10, bad=2)
    write(conn, "shop", "/pay", now - 10 * MIN, 100, bad=1)
    write(conn, "shop", "/stock", now - 2 * HOUR, 1000, bad=10)
    write(conn, "shop", "/pay", now - 2 * DAY, 500, bad=50)
    write(conn, "shop", "/pay", now - 40 * DAY, 999, bad=999)
    write(conn, "other", "/pay", now, 77, bad=77)
    assert slo_store.rollup() == 10 + 100 + 1000 + 500 + 999 + 77
    assert slo_store.rollup() == 0  # nothing new: nothing counted twice
    s = slo(target=0.99)  # allowed bad ratio 0.01
    c = slo_store.window_counts(s, windows_needed_s(s), now)
    got = {w: (x.total, x.bad) for w, x in c.items()}
    assert got[5 * MIN] == (10, 2)
    assert got[30 * MIN] == got[HOUR] == (110, 3)
    assert got[6 * HOUR] == got[DAY] == (1110, 13)
    assert got[3 * DAY] == got[30 * DAY] == (1610, 63)
    snap, _ = burn_snapshot(s, c, now, 100, 5)
    # 5m: 2/10/0.01 = 20; 1h: 3/110/0.01 = 2.7273; 24h: 13/1110/0.01 = 1.1712; 3d: 63/1610/0.01 = 3.9130
    assert snap["burn_rate_5m"] == pytest.approx(20.0)
    assert snap["burn_rate_1h"] == pytest.approx(3 / 110 / 0.01, abs=1e-5)
    assert snap["burn_rate_24h"] == pytest.approx(13 / 1110 / 0.01, abs=1e-5)
    assert snap["burn_rate_3d"] == pytest.approx(63 / 1610 / 0.01, abs=1e-5)
    assert snap["composite_burn_rate"] == pytest.approx(0.4 * 20 + 0.35 * 3 / 1.10 + 0.25 * 13 / 11.10, abs=1e-5)
    assert snap["risk_level"] == "FREEZE"
    assert snap["error_budget_consumed"] == pytest.approx(63 / 1610 / 0.01, abs=1e-5)
    # route SLO: only /pay -> 24h: 110 / 3 (the /stock requests are not counted)
    pay = slo(target=0.99, route="/pay")
    assert slo_store.window_counts(pay, [DAY], now)[DAY] == WindowCounts(DAY, 110, 3)
    # late arrival: a span of 10 min ago stored now is added to its own minute
    write(conn, "shop", "/pay", now - 10 * MIN, 5, bad=5)
    assert slo_store.rollup() == 5
    assert slo_store.window_counts(s, [HOUR], now)[HOUR] == WindowCounts(HOUR, 115, 8)


def test_latency_slo_counts_requests_over_the_threshold(db):
    conn, slo_store, _ = db
    now = T0
    # last 5 minutes: 90 requests at 120 ms, 8 at 300 ms (at the bound: good), 2 at 301 ms (bad)
    write(conn, "shop", "/q", now - 60, 90, duration_ms=120.0)
    write(conn, "shop", "/q", now - 60, 8, duration_ms=300.0)
    write(conn, "shop", "/q", now - 60, 2, duration_ms=301.0)
    slo_store.rollup()
    lat = slo("latency", 0.99, threshold_ms=300.0, route="/q")
    assert slo_store.window_counts(lat, [5 * MIN], now)[5 * MIN] == WindowCounts(5 * MIN, 100, 2)
    # 2 % slow against 1 % allowed: burn 2
    snap, _ = burn_snapshot(lat, slo_store.window_counts(lat, windows_needed_s(lat), now), now, 100, 5)
    assert snap["burn_rate_5m"] == pytest.approx(2.0)


def test_rollup_works_in_chunks_and_totals_feed_the_histogram(db):
    conn, slo_store, _ = db
    write(conn, "shop", "/a", T0, 250, bad=3, duration_ms=40.0)
    write(conn, "shop", "/a", T0, 10, duration_ms=40.0, status=404, method="POST")
    assert slo_store.rollup(chunk=100) == 260
    rows = {(r["route"], r["method"], r["status_code"]): r for r in slo_store.request_totals()}
    ok = rows[("/a", "GET", 200)]
    assert ok["total"] == 247 and dict(ok["buckets"])[25] == 0 and dict(ok["buckets"])[50] == 247
    assert ok["duration_ms_sum"] == pytest.approx(247 * 40.0)
    assert rows[("/a", "GET", 500)]["total"] == 3 and rows[("/a", "POST", 404)]["total"] == 10


# -- the engine: alerts through a real webhook receiver, forecast from history ------------------


class Hook:
    def __init__(self):
        self.events = []

    def __call__(self, event, alert):
        json.dumps(alert)  # what the notifier will serialise
        self.events.append((event, alert))


def test_engine_pages_once_and_keeps_history(db):
    conn, _, store = db
    hook = Hook()
    engine = SLOEngine(store, SLOSettings(min_requests=100, min_bad_events=5, history_interval_s=60.0), notify=hook)
    engine.load_definitions([{"name": "shop", "tier": 1, "owner": "payments"}],
                            [validate_slo({"service": "shop", "indicator": "availability", "target": 0.999})])
    # A full outage for 10 minutes at 100 requests a minute.
    for m in range(10):
        write(conn, "shop", "/pay", T0 + m * MIN, 100, bad=100)
    first = engine.compute(T0 + 9 * MIN + 30)
    assert [e for e, _ in first.events] == ["opened"]
    opened = hook.events[0][1]
    assert opened["severity"] == "page" and opened["rule"] == "page-fast"
    assert opened["title"].startswith("SLO shop-availability burning")
    engine.compute(T0 + 9 * MIN + 40)  # same burn: no second page, no history row (< 60 s later)
    assert len(hook.events) == 1
    assert len(engine.store.burn_history("shop", 0, 100)) == 1
    assert engine.release("shop")["decision"] == "blocked"
    # The acknowledged alert stays one alert
    alert_id = opened["id"]
    acked, error = engine.acknowledge(alert_id, "ana")
    assert error is None and acked["status"] == "acknowledged" and hook.events[-1][0] == "acknowledged"
    _, error = engine.acknowledge(alert_id, "ana")
    assert "acknowledged" in error
    # 70 minutes of clean traffic: 5m, 30m and 1h are clean, but 3d and 6h still burn 125x
    # (1,000 bad of 8,000): the ticket condition holds, so the alert stays open and pages nobody again.
    for m in range(10, 80):
        write(conn, "shop", "/pay", T0 + m * MIN, 100)
    later = engine.compute(T0 + 79 * MIN + 30)
    assert later.events == []
    still = engine.store.alert(alert_id)
    assert still["status"] == "acknowledged" and still["rule"] == "ticket" and still["severity"] == "page"
    # Six more hours clean: the 6h window no longer holds the outage -> resolved.
    for m in range(80, 80 + 6 * 60):
        write(conn, "shop", "/pay", T0 + m * MIN, 10)
    last = engine.compute(T0 + (80 + 6 * 60 - 1) * MIN)
    assert [e for e, _ in last.events] == ["resolved"]
    assert engine.store.alerts(status="resolved")[0]["id"] == alert_id


def test_file_definitions_yaml_and_json(tmp_path):
    good = tmp_path / "slos.yaml"
    good.write_text("""
services:
  - name: shop
    tier: 1
    owner: payments-team
slos:
  - name: shop-availability
    service: shop
    indicator: availability
    target: 0.999
    timeWindow:
      - duration: 30d
        isRolling: true
    budgetingMethod: Occurrences
  - name: pay-latency
    service: shop
    route: /payment
    indicator: latency
    threshold_ms: 300
    target: 0.99
    timeWindow: 7d
""")
    services, slos = load_slo_file(str(good))
    assert services == [{"name": "shop", "tier": 1, "owner": "payments-team"}]
    assert [(s.name, s.window_s, s.source) for s in slos] == [("shop-availability", 30 * DAY, "file"),
                                                              ("pay-latency", 7 * DAY, "file")]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"slos": [{"service": "shop", "indicator": "availability", "target": 0.9},
                                        {"service": "shop", "indicator": "availability", "target": 99.9}]}))
    with pytest.raises(ValueError, match=r"slos\[1\]\.target"):
        load_slo_file(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("slos: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_slo_file(str(broken))
    with pytest.raises(SLOValidationError):
        parse_definitions({"slo": []})


def test_narrative_and_heatmap_come_from_the_facts():
    facts = {"service": "shop", "tier": 1, "owner": "payments", "risk_level": "DANGER",
             "slos": [{"name": "shop-availability", "target": 0.999, "sli": 0.99812, "remaining_ratio": -0.88,
                       "full_outage_minutes_left": 0.0, "composite_burn_rate": 1.73, "risk_level": "DANGER",
                       "burn_rates": {"5m": 2.5, "1h": 1.5, "24h": 0.8}}],
             "forecast": {"forecast_message": "The error budget is exhausted.", "burn_rate_trend": "increasing"},
             "firing_alerts": [{"id": "SLO-9", "severity": "page", "rule": "page-slow", "slo_name": "shop-availability",
                                "reason": "6h burn 7.00 and 30m burn 8.00 both at least 6x"}],
             "open_incidents": [], "release": {"decision": "blocked", "blockers": ["SLO alert SLO-9 is firing"],
                                               "cautions": []}}
    facts["firing_alerts"][0]["status"] = "firing"
    text = write_service_narrative(facts)
    for fragment in ("## shop: DANGER", "tier 1 (critical)", "owned by payments", "99.8120%", "-88.0%", "1.73",
                     "5m 2.50, 1h 1.50, 24h 0.80", "SLO-9", "page-slow", "**blocked**", "exhausted"):
        assert fragment in text, fragment
    assert write_service_narrative(facts) == text  # deterministic
    facts["release"] = {"decision": "approved", "gate_decision": "blocked", "blockers": ["risk level FREEZE"],
                        "cautions": [], "overridden": True,
                        "override": {"who": "ana", "expires_at": "2027-01-15T10:00:00Z", "reason": "hotfix"}}
    assert ("Release gate: **approved** by ana's override until 2027-01-15T10:00:00Z (hotfix); "
            "without it: **blocked** (risk level FREEZE).") in write_service_narrative(facts)
    grid = heatmap([("a", T0 + 10, 0.5), ("a", T0 + 20, 2.5), ("b", T0 + 3700, 1.2)], T0, T0 + 2 * HOUR, HOUR)
    assert grid["services"] == [{"service": "a", "risk": ["FREEZE", None], "composite_burn_rate": [2.5, None]},
                                {"service": "b", "risk": [None, "OBSERVE"], "composite_burn_rate": [None, 1.2]}]
    assert math.isclose(grid["bucket_s"], HOUR)


def test_hourly_and_minute_counts_agree_with_counting_spans(db):
    """Whole hours come from hourly counts, ragged ends from minutes: compare
    with a direct count of the spans whose minute lies in each window."""
    import random
    conn, slo_store, _ = db
    rng = random.Random(7)
    rows = []
    for i in range(3000):
        at = T0 - rng.uniform(0, 4 * DAY)
        bad = rng.random() < 0.1
        rows.append((f"{i:032x}", f"{i:016x}", None, "shop", rng.choice(["/a", "/b"]), "GET", "/a",
                     500 if bad else 200, at, rng.uniform(1, 900), 1 if bad else 0, None, None, None))
    conn.execute("BEGIN")
    conn.executemany(_INSERT, rows)
    conn.execute("COMMIT")
    slo_store.rollup(chunk=700)
    for now in (T0, T0 - 1, T0 - 3599.5, T0 - 1234567.8):
        for s in (slo(target=0.99), slo(target=0.99, route="/b"), slo("latency", 0.9, threshold_ms=250.0)):
            got = slo_store.window_counts(s, windows_needed_s(s) + [7 * MIN, 61 * MIN], now)
            for w, c in got.items():
                now_min = int(now // 60)
                lo = now_min - int(round(w / 60)) + 1
                route_ok = (lambda r: True) if s.route is None else (lambda r, route=s.route: r == route)
                inside = [r for r in rows if lo <= int(r[8] // 60) <= now_min and route_ok(r[4])]
                bad = [r for r in inside if (r[10] if s.indicator == "availability" else r[9] > 250.0)]
                assert (c.total, c.bad) == (len(inside), len(bad)), (now, s.route, s.indicator, w)


def test_prune_drops_old_counts_and_decisions_but_keeps_overrides(db):
    conn, slo_store, _ = db
    write(conn, "shop", "/a", T0 - 2 * HOUR, 10, bad=1)
    write(conn, "shop", "/a", T0, 5)
    slo_store.rollup()
    slo_store.audit("shop", "decision", "blocked", {}, T0 - 2 * HOUR)
    slo_store.audit("shop", "override", "approved", {"who": "ana"}, T0 - 2 * HOUR)
    slo_store.prune(T0 - HOUR)
    s = slo(target=0.99)
    assert slo_store.window_counts(s, [DAY], T0)[DAY] == WindowCounts(DAY, 5, 0)
    assert [e["kind"] for e in slo_store.audit_trail("shop", 10)] == ["override"]


def test_dead_processes_fold_into_one_row_and_the_counters_never_go_down(tmp_path):
    store = Database(str(tmp_path / "t.db"))
    slo_store = SLOStore(store)
    try:
        now = 1_800_000_000.0
        rows = [("host:1:1", "shop", 100, 3, 1, 5, now - 3 * 86400), ("host:2:1", "shop", 50, 2, 0, 7, now - 2 * 86400),
                ("host:3:1", "shop", 10, 1, 0, 4, now - 5), ("host:4:1", "search", 7, 0, 0, 0, now - 2 * 86400)]
        with slo_store.transaction() as conn:
            conn.executemany("INSERT INTO aiops_process_stats VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        before = slo_store.process_stats(now - 60)
        assert slo_store.fold_dead_processes(now - 86400) == 3
        after = slo_store.process_stats(now - 60)
        for service in ("shop", "search"):  # written 160/7, dropped 6/0, write errors 1/0: unchanged
            assert {k: after[service][k] for k in ("written", "dropped", "write_errors")} == \
                   {k: before[service][k] for k in ("written", "dropped", "write_errors")}
        assert after["shop"]["queued"] == 4 and after["shop"]["processes"] == 1  # only the live process
        left = sorted(r[0] for r in slo_store.conn.execute("SELECT process FROM aiops_process_stats"))
        assert left == ["host:3:1", "retired:search", "retired:shop"]
        with slo_store.transaction() as conn:  # a second death adds to the retired row
            conn.execute("UPDATE aiops_process_stats SET updated_at = ? WHERE process = 'host:3:1'", (now - 2 * 86400,))
        assert slo_store.fold_dead_processes(now - 86400) == 1
        assert slo_store.process_stats(now - 60)["shop"]["written"] == 160
        assert len(slo_store.conn.execute("SELECT * FROM aiops_process_stats").fetchall()) == 2
    finally:
        store.close()
