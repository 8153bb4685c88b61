"""Pushed metrics: batch validation, the store's all-or-nothing insert, and POST /aiops/metrics/ingest."""
import json
import sqlite3
import threading
from datetime import datetime, timezone

import pytest
import requests

from aiops import AIOps
from aiops.metrics.model import MetricBatchError, MetricPoint, parse_metric_batch
from aiops.metrics.store import MetricStore

T0 = 1_800_000_000.0


def point(i=0, **over):
    raw = {"timestamp": T0 + i, "service": "shop", "name": "memory_bytes", "value": 100.0 + i,
           "labels": {"pod": "shop-1"}}
    raw.update(over)
    return raw


# -- parse_metric_batch ---------------------------------------------------------------


def test_parse_accepts_list_and_wrapped_and_iso_timestamps():
    points = parse_metric_batch([point(0), point(1, timestamp="2027-01-15T08:00:00Z", labels=None)])
    assert points[0] == MetricPoint(T0, "shop", "memory_bytes", 100.0, {"pod": "shop-1"})
    assert points[1].timestamp_s == datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc).timestamp()
    assert points[1].labels == {}
    wrapped = parse_metric_batch({"metrics": [point(0)]})
    assert wrapped == points[:1]


def test_iso_timestamp_is_exact_and_zoneless_means_utc():
    a, b, c = parse_metric_batch([point(timestamp="2027-01-15T08:00:00Z"),
                                  point(timestamp="2027-01-15T08:00:00"),
                                  point(timestamp="2027-01-15T09:30:00+01:30")])
    expected = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc).timestamp()
    assert a.timestamp_s == b.timestamp_s == c.timestamp_s == expected


@pytest.mark.parametrize("bad,index,field,words", [
    ([point(0), point(1, value="high")], 1, "value", "finite number"),
    ([point(0), point(1), point(2, value=float("nan"))], 2, "value", "finite number"),
    ([point(0, value=True)], 0, "value", "finite number"),
    ([point(0, service="")], 0, "service", "non-empty string"),
    ([point(0, name="x" * 201)], 0, "name", "at most 200"),
    ([point(0, timestamp="yesterday")], 0, "timestamp", "ISO 8601"),
    ([point(0, timestamp=-5)], 0, "timestamp", "1970"),
    ([point(0, labels=["a"])], 0, "labels", "object"),
    ([point(0, labels={"pod": {"nested": 1}})], 0, "labels", "label 'pod'"),
    ([point(0, colour="red")], 0, "colour", "valid fields"),
    ([{k: v for k, v in point(0).items() if k != "service"}], 0, "service", "missing"),
    ([point(0), 7], 1, None, "must be an object"),
])
def test_parse_names_index_field_and_what_is_valid(bad, index, field, words):
    with pytest.raises(MetricBatchError) as caught:
        parse_metric_batch(bad)
    assert caught.value.index == index
    assert caught.value.field == field
    assert f"metrics[{index}]" in str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize("payload,words", [
    ([], "empty"), ({"points": []}, "metrics"), ("text", "JSON list"), ({"metrics": [], "x": 1}, "unexpected keys"),
])
def test_parse_rejects_bad_batch_shapes(payload, words):
    with pytest.raises(MetricBatchError, match=words):
        parse_metric_batch(payload)


def test_parse_caps_batch_size():
    parse_metric_batch([point(i) for i in range(5)], max_points=5)
    with pytest.raises(MetricBatchError, match="6 points; at most 5"):
        parse_metric_batch([point(i) for i in range(6)], max_points=5)


# -- the store --------------------------------------------------------------------


def test_store_round_trip_filters_and_orders_by_time(tmp_path):
    store = MetricStore(str(tmp_path / "m.db"))
    points = parse_metric_batch([point(5), point(1), point(3, name="cpu_percent", labels={}),
                                 point(2, service="db", name="query_ms")])
    assert store.insert_metrics(points) == 4
    assert [p.timestamp_s - T0 for p in store.metric_series()] == [1, 2, 3, 5]
    mem = store.metric_series("shop", "memory_bytes")
    assert [(p.timestamp_s - T0, p.value, p.labels) for p in mem] == [(1, 101.0, {"pod": "shop-1"}),
                                                                       (5, 105.0, {"pod": "shop-1"})]
    assert [p.timestamp_s - T0 for p in store.metric_series(start_s=T0 + 2, end_s=T0 + 3)] == [2, 3]
    assert store.metric_series(name="cpu_percent")[0].labels == {}
    typed = parse_metric_batch([point(10, name="typed", labels={"a": True}), point(11, name="typed", labels={"a": 1}),
                                point(12, name="typed", labels={"a": 1.5, "b": "x"})])
    store.insert_metrics(typed)
    assert [p.labels for p in store.metric_series(name="typed")] == [{"a": True}, {"a": 1}, {"a": 1.5, "b": "x"}]
    assert [type(p.labels["a"]) for p in store.metric_series(name="typed")] == [bool, int, float]
    assert store.metric_names() == [("db", "query_ms"), ("shop", "cpu_percent"), ("shop", "memory_bytes"),
                                   ("shop", "typed")]
    plans = " ".join(str(r) for r in store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT ts FROM aiops_metrics WHERE service = 's' AND name = 'n' AND ts >= 1"))
    assert "aiops_metrics_by_series" in plans


def test_store_insert_is_all_or_nothing(tmp_path):
    store = MetricStore(str(tmp_path / "m.db"))
    store.insert_metrics(parse_metric_batch([point(0)]))
    good = parse_metric_batch([point(1), point(2)])
    broken = good + [MetricPoint(T0 + 3, "shop", "memory_bytes", None, {})]  # NOT NULL violation mid-batch
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_metrics(broken)
    assert len(store.metric_series()) == 1
    assert store.insert_metrics([]) == 0


# -- the HTTP route ---------------------------------------------------------------------


@pytest.fixture
def app(make_app):
    return make_app()


def test_ingest_stores_a_batch_and_reads_it_back(app):
    client = app.test_client()
    response = client.post("/aiops/metrics/ingest", json={"metrics": [point(i) for i in range(10)]
                                                         + [point(0, name="cpu_percent", value=45.0)]})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["stored"] == 11 and body["series"] == 2
    assert body["start"].endswith("Z") and body["start"] < body["end"]
    assert len(AIOps.feature(app, "metrics").store.metric_series("shop", "memory_bytes")) == 10
    names = client.get("/aiops/metrics/names").get_json()
    assert names["series"] == [{"service": "shop", "name": "cpu_percent"}, {"service": "shop", "name": "memory_bytes"}]
    series = client.get(f"/aiops/metrics/series?service=shop&name=memory_bytes&start={T0 + 2}&end={T0 + 4}")
    got = series.get_json()
    assert [p["value"] for p in got["points"]] == [102.0, 103.0, 104.0]
    assert got["points"][0]["labels"] == {"pod": "shop-1"}


def test_rejected_batch_stores_nothing_and_names_the_problem(app):
    client = app.test_client()
    response = client.post("/aiops/metrics/ingest", json=[point(0), point(1), point(2, value="NaN-ish")])
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid metric batch"
    assert body["index"] == 2 and body["field"] == "value"
    assert "metrics[2].value must be a finite number" in body["detail"]
    assert AIOps.feature(app, "metrics").store.metric_series() == []
    not_json = client.post("/aiops/metrics/ingest", data="{oops", content_type="application/json")
    assert not_json.status_code == 400 and "JSON" in not_json.get_json()["error"]
    assert client.get("/aiops/metrics/ingest").status_code == 405
    bad_range = client.get("/aiops/metrics/series?start=soon")
    assert bad_range.status_code == 400 and "ISO 8601" in bad_range.get_json()["detail"]


def test_ingest_batch_cap_is_configurable(make_app):
    app = make_app(AIOPS_METRICS_MAX_BATCH=3)
    response = app.test_client().post("/aiops/metrics/ingest", json=[point(i) for i in range(4)])
    assert response.status_code == 400 and "at most 3" in response.get_json()["detail"]
    oversized = app.test_client().post("/aiops/metrics/ingest", data=b"[" + b" " * 8192 + b"]",
                                       content_type="application/json")
    assert oversized.status_code == 413 and oversized.get_json()["error"] == "batch too large"
    assert oversized.get_json()["field"] == "body" and "at most 3 points" in oversized.get_json()["detail"]
    with pytest.raises(ValueError, match="AIOPS_METRICS_MAX_BATCH"):
        make_app(AIOPS_METRICS_MAX_BATCH=0)


def test_ingest_needs_the_api_key_when_configured(live_server, make_app):
    app = make_app(AIOPS_API_KEY="s3cret")
    server = live_server(app)
    url = f"{server.url}/aiops/metrics/ingest"
    assert requests.post(url, json=[point(0)], timeout=5).status_code == 401
    assert requests.post(url, json=[point(0)], headers={"X-API-Key": "wrong"}, timeout=5).status_code == 401
    assert AIOps.feature(app, "metrics").store.metric_series() == []
    ok = requests.post(url, data=json.dumps([point(0)]), headers={"X-API-Key": "s3cret",
                                                                   "Content-Type": "application/json"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["stored"] == 1


def test_concurrent_pushers_over_http_lose_nothing(live_server, make_app):
    app = make_app()
    server = live_server(app)
    errors = []

    def push(worker):
        session = requests.Session()
        for batch in range(5):
            body = [point(i, service=f"svc{worker}", value=float(batch * 100 + i)) for i in range(100)]
            response = session.post(f"{server.url}/aiops/metrics/ingest", json=body, timeout=10)
            if response.status_code != 200:
                errors.append(response.text)

    threads = [threading.Thread(target=push, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    store = AIOps.feature(app, "metrics").store
    assert len(store.metric_series()) == 4 * 5 * 100
    assert [s for s, _ in store.metric_names()] == ["svc0", "svc1", "svc2", "svc3"]
