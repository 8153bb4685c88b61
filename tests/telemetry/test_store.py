"""The span store on disk: schema, indexes, batching, retention, fork safety."""
import sqlite3
import time

from telemetry.store import SPAN_COLUMNS, SpanStore, connect


def span(start_time, trace_id="a" * 32, route="/r"):
    return (trace_id, "b" * 16, None, "svc", route, "GET", route, 200, start_time, 1.5, 0, None, None, None)


def test_schema_indexes_serve_time_route_and_trace_reads(tmp_path):
    conn = connect(str(tmp_path / "s.db"))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(spans)")}
    assert {"spans_by_time", "spans_by_route_time", "spans_by_trace"} <= indexes
    for sql, index in [
        ("SELECT * FROM spans WHERE start_time > 1", "spans_by_time"),
        ("SELECT * FROM spans WHERE service='s' AND route='/r' AND start_time > 1", "spans_by_route_time"),
        ("SELECT * FROM spans WHERE trace_id='x'", "spans_by_trace"),
    ]:
        plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert index in plan, plan
    assert [r[1] for r in conn.execute("PRAGMA table_info(spans)")][1:] == list(SPAN_COLUMNS)
    conn.close()


def test_batches_are_written_and_flush_waits(tmp_path):
    store = SpanStore(str(tmp_path / "s.db"), batch_size=7, flush_interval_s=10)
    for i in range(100):
        store.enqueue(span(time.time(), trace_id=f"{i:032x}"))
    assert store.flush(5)
    assert store.stats().written == 100 and store.stats().queued == 0
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT count(DISTINCT trace_id) FROM spans").fetchone()[0] == 100
    conn.close()
    store.close()


def test_retention_deletes_old_rows_in_batches(tmp_path):
    store = SpanStore(str(tmp_path / "s.db"), retention_s=3600, retention_check_s=0, delete_batch=10,
                      flush_interval_s=0.01)
    now = time.time()
    for i in range(35):
        store.enqueue(span(now - 7200 - i))
    for _ in range(5):
        store.enqueue(span(now - 10))
    store.flush(5)
    store.flush(5)  # a second pass, after the rows of the first landed
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT count(*) FROM spans").fetchone()[0] == 5
    assert conn.execute("SELECT min(start_time) FROM spans").fetchone()[0] > now - 3600
    conn.close()
    store.close()


def test_for_path_shares_one_store_per_file(tmp_path):
    a = SpanStore.for_path(str(tmp_path / "s.db"))
    b = SpanStore.for_path(str(tmp_path / "." / "s.db"), max_queue=3)
    assert a is b and a.max_queue == 3
    assert SpanStore.for_path(str(tmp_path / "t.db")) is not a


def test_listeners_hear_committed_batches_and_never_stop_the_writer(tmp_path):
    store = SpanStore(str(tmp_path / "s.db"), batch_size=5, flush_interval_s=10)
    heard = []

    def broken(batch):
        raise RuntimeError("listener bug")

    store.add_listener(broken)
    store.add_listener(heard.append)
    for i in range(12):
        store.enqueue(span(time.time(), trace_id=f"{i:032x}"))
    assert store.flush(5)
    assert [len(b) for b in heard] == [5, 5, 2]  # every committed batch, after the broken listener
    assert [s[0] for b in heard for s in b] == [f"{i:032x}" for i in range(12)]
    assert store.stats().written == 12 and store.stats().write_errors == 0
    store.remove_listener(heard.append)
    store.remove_listener(print)  # never added: ignored
    store.enqueue(span(time.time()))
    assert store.flush(5) and len(heard) == 3 and store.stats().written == 13
    store.close()
