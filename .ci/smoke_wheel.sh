#!/usr/bin/env bash
# The wheel in fresh venvs outside the checkout: build it (sdist, then the wheel from the sdist), check the
# package data is inside, install it without extras and run a small app and the console scripts from a
# directory outside the checkout; then the same wheel with [all] (installed meanwhile in a second venv) runs
# the replay. Called by .ci/run after the tests.
#   bash .ci/smoke_wheel.sh            (builds with .venv/bin/python, which has build and setuptools; PYTHON=...)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_PY="${PYTHON:-$ROOT/.venv/bin/python}"

smoke() {  # (not indented: it holds here-documents)
WORK="$(mktemp -d)"
DEMO_PID=""
ALL_PID=""
cleanup() {
    for pid in $DEMO_PID $ALL_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
started=$SECONDS
step() { printf '\n== %s (%ds)\n' "$1" $((SECONDS - started)); }
fail() { echo "FAIL $*" >&2; exit 1; }

step "build the sdist and the wheel"
(cd "$WORK" && "$BUILD_PY" -m build --no-isolation --outdir "$WORK/dist" "$ROOT") >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; fail "build"; }
WHEEL="$(ls "$WORK"/dist/*.whl)"
echo "built $(basename "$WHEEL") and $(basename "$(ls "$WORK"/dist/*.tar.gz)")"
"$BUILD_PY" -m zipfile -l "$WHEEL" | awk 'NR > 1 {print $1}' >"$WORK/contents"
for f in aiops/dashboard/static/index.html aiops/dashboard/static/dashboard.css aiops/dashboard/static/dashboard.js \
         aiops/dashboard/static/vendor/VENDOR.json aiops/dashboard/static/vendor/uplot/LICENSE \
         aiops/dashboard/static/vendor/uplot/uPlot.iife.min.js aiops/dashboard/static/vendor/uplot/uPlot.min.css \
         aiops/triage/runbooks/routing.json aiops/triage/runbooks/oomkilled-crashloop.md \
         aiops/replay/samples/incident_metadata.csv aiops/replay/samples/historical_baseline.csv.gz \
         aiops/replay/samples/actual_metrics.csv telemetry/__init__.py llm/writer.py simulation/shop.py; do
    grep -qx "$f" "$WORK/contents" || fail "$f is not in the wheel"
done
! grep -E '^(tests|bench|app\.py|test_aiops\.py)' "$WORK/contents" || fail "the wheel holds files of the checkout"
echo "ok  the wheel holds $(grep -c '\.py$' "$WORK/contents") modules, the dashboard, the runbooks and the replay sample"

step "install the wheel without extras into a fresh venv (and, meanwhile, with [all] into another)"
python3 -m venv "$WORK/venv-all"
"$WORK/venv-all/bin/pip" install -q "$WHEEL[all]" >"$WORK/install-all.log" 2>&1 &
ALL_PID=$!
python3 -m venv "$WORK/venv"
V="$WORK/venv/bin"
"$V/pip" install -q "$WHEEL" 2>&1 | { grep -v "^WARNING: Location" || true; }
mkdir "$WORK/run" && cp "$ROOT/.ci/smoke_app.py" "$WORK/run/"
cd "$WORK/run"  # nothing of the checkout is importable from here
unset PYTHONPATH
for name in OPENAI_API_KEY OPENAI_BASE_URL AIOPS_LLM_BASE_URL AIOPS_LLM_MODEL AIOPS_DB_PATH TELEMETRY_DB_PATH; do
    unset "$name"
done
for m in sklearn scipy matplotlib openai; do
    "$V/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$m') is not None)" \
        || fail "$m is installed in the core venv"
done
echo "ok  the core install has no openai, scikit-learn, scipy or matplotlib"

step "imports stay light"
"$V/python" - <<'EOF'
import subprocess, sys
heavy = ("openai", "sklearn", "scipy", "matplotlib")
for statement, banned in (("import telemetry", heavy),
                          ("import aiops.analysis.series", heavy + ("aiops.extension", "aiops.analysis.engine"))):
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split())
    bad = [m for m in banned if m in loaded]
    assert not bad, f"{statement} loaded {bad}"
    print(f"ok  {statement}: none of {', '.join(banned)}")
EOF

step "core app: telemetry, analysis, incident, SLO, triage, documents, replay"
"$V/python" smoke_app.py core "$WORK/run"

step "console scripts"
"$V/aiops" --help >"$WORK/out" || fail "aiops --help"
grep -q "detect" "$WORK/out" && grep -q "incidents" "$WORK/out" || fail "aiops --help lists no subcommands"
echo "ok  aiops --help"
"$V/python" -m aiops --help >/dev/null || fail "python -m aiops --help"
echo "ok  python -m aiops --help"
"$V/aiops-simulate" --list >"$WORK/out" || fail "aiops-simulate --list"
[ "$(wc -l <"$WORK/out")" -gt 5 ] || fail "aiops-simulate --list lists no scenarios"
"$V/python" -m simulation --list >/dev/null || fail "python -m simulation --list"
echo "ok  aiops-simulate --list, python -m simulation --list"
"$V/python" -c "
import math
rows = ['timestamp,value'] + [f'2024-01-01T{i // 60:02d}:{i % 60:02d}:00Z,{20 + math.sin(i / 7) + (15 if i == 450 else 0):.4f}'
                             for i in range(600)]
open('series.csv', 'w').write('\n'.join(rows) + '\n')"
"$V/aiops" detect --csv series.csv >"$WORK/out" || fail "aiops detect --csv"
"$V/python" -c "import json, sys; out = json.load(open(sys.argv[1])); assert out['points'] == 600 and out['anomalies'], out" \
    "$WORK/out" || fail "aiops detect found nothing"
echo "ok  aiops detect --csv series.csv"
"$V/aiops" incidents --db smoke-core.db --status all --json >"$WORK/out" || fail "aiops incidents --db"
grep -q '"INC-' "$WORK/out" || fail "aiops incidents lists no incident: $(cat "$WORK/out")"
echo "ok  aiops incidents --db smoke-core.db"
set +e
"$V/aiops" replay --sample --out replay-core >"$WORK/out" 2>"$WORK/err"
code=$?
set -e
[ "$code" -eq 2 ] && grep -q "pip install 'flask-aiops\[replay\]'" "$WORK/err" \
    || fail "aiops replay without [replay]: exit $code, $(cat "$WORK/err")"
echo "ok  aiops replay --sample exits 2: $(cat "$WORK/err")"
PORT="$("$V/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
PORT="$PORT" TELEMETRY_DB_PATH="$WORK/run/demo.db" "$V/aiops-demo" >"$WORK/demo.log" 2>&1 &
DEMO_PID=$!
"$V/python" - "$PORT" <<'EOF' || { cat "$WORK/demo.log"; fail "aiops-demo does not answer"; }
import json, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 30
while True:
    try:
        health = json.load(urllib.request.urlopen(f"{url}/health", timeout=2))
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
assert health == {"service": "shop", "status": "ok"}, health
order = json.load(urllib.request.urlopen(urllib.request.Request(f"{url}/checkout", method="POST"), timeout=10))
assert order["status"] == "ordered", order
print(f"ok  aiops-demo serves the shop: /health, /checkout -> {order['status']}")
EOF
kill "$DEMO_PID" && wait "$DEMO_PID" 2>/dev/null || true
DEMO_PID=""

step "the same wheel with [all], in its own fresh venv"
wait "$ALL_PID" || { cat "$WORK/install-all.log"; fail "pip install '$WHEEL[all]'"; }
ALL_PID=""
V="$WORK/venv-all/bin"
"$V/python" smoke_app.py all "$WORK/run"
"$V/aiops" replay --sample --out replay-all >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err"; fail "aiops replay --sample"; }
[ -f replay-all/replay_timeline.png ] || fail "aiops replay --sample wrote no timeline"
echo "ok  aiops replay --sample: $(tail -1 "$WORK/out")"
step "done"
}

# Every check prints "ok  ..."; the last line counts them ("wheel smoke: N passed, M failed").
LOG="$(mktemp)"
set +e
( set -euo pipefail; smoke ) 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
passed="$(grep -c '^ok ' "$LOG" || true)"
rm -f "$LOG"
echo "wheel smoke: $passed passed, $((status != 0)) failed"
exit "$status"
