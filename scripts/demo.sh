#!/usr/bin/env bash
# One command from a fresh clone to results: install, generate sample data in the Polygon flat-file
# layout, ingest it, search the ZRCE space (500 walk-forward trials), gate the candidates and write the
# HTML report. TRIALS=100 bash scripts/demo.sh for a quicker look.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS="${TRIALS:-500}"

if [ ! -x .venv/bin/search ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
fi
S=.venv/bin/search
$S warmup                                         # compile + cache the numba kernels once (~15 s, then ~1 s)

$S data synth --root sample_data/flat             # SPY, QQQ, AMD (+ options), EURUSD, XAUUSD, MES; 2024H1
$S data ingest --src sample_data/flat --dst sample_data/store
$S backtest --spec spec_space/zrce.yaml --data sample_data/store          # the defaults, one backtest
$S run --space spec_space/zrce.yaml --trials "$TRIALS" --data sample_data/store
$S gate --study zrce --top 5
$S report --study zrce
echo "open reports/zrce/index.html, or watch the study live: $S dashboard"
