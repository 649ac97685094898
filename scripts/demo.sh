#!/usr/bin/env bash
# One command from a fresh clone to results: install, generate sample data in the Polygon flat-file
# layout, ingest it, run the main search on it, gate the candidates and write the HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS="${TRIALS:-500}"

if [ ! -x .venv/bin/search ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
fi
S=.venv/bin/search

$S data synth --root sample_data/flat             # SPY, QQQ, AMD (+ options), EURUSD, XAUUSD, MES; 2024H1
$S data ingest --src sample_data/flat --dst sample_data/store
$S backtest --spec spec_space/sma_cross.yaml --data sample_data/store
$S backtest --spec spec_space/zrce.yaml --data sample_data/store
