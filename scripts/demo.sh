#!/usr/bin/env bash
# One command from a fresh clone to a paper-trading dry run, on sample data with a known, planted edge:
# install, generate two years of sample data in the Polygon flat-file layout with the edge planted,
# ingest it, search the ZRCE space (walk-forward trials), gate the top candidates on the unseen holdout,
# confirm the first one that passed in Lumibot, reproduce it, and print what `search promote` would
# deploy and the first orders it would send (--dry-run: no network, nothing started).
#
#   bash scripts/demo.sh                  # PLANT=zrce (strength 1), TRIALS=200
#   PLANT=zrce:0.5 TRIALS=500 bash scripts/demo.sh
#   PLANT=none bash scripts/demo.sh       # a null market: every candidate is rejected, and the demo says so
#
# Environment: PLANT (none | zrce[:STRENGTH], default zrce = zrce:1, see `search data synth --help`),
# TRIALS (default 200), SAMPLE_DATA (default sample_data), PY (a Python with the project installed;
# default: .venv/bin/python, created and installed on first use), FARM_STUDIES (default studies).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "demo.sh takes no arguments (got '$1'); set PLANT / TRIALS in the environment:" >&2; usage >&2; exit 2 ;;
esac

PLANT="${PLANT:-zrce}"
TRIALS="${TRIALS:-200}"
SAMPLE_DATA="${SAMPLE_DATA:-sample_data}"
if ! [[ "$PLANT" =~ ^(none|zrce(:[0-9]+(\.[0-9]+)?)?)$ ]]; then
  echo "PLANT='$PLANT': expected none, zrce or zrce:STRENGTH (a number >= 0, e.g. zrce:0.5); the demo searches" \
       "the ZRCE space, so only the zrce plant (or none) applies" >&2
  exit 2
fi
if ! [[ "$TRIALS" =~ ^[1-9][0-9]*$ ]]; then
  echo "TRIALS='$TRIALS': expected a whole number of trials >= 1, e.g. TRIALS=200" >&2
  exit 2
fi
[ "$PLANT" = zrce ] && PLANT=zrce:1
if [ "${DEMO_CHECK_ONLY:-}" = 1 ]; then  # the tests' hook: the arguments are valid, stop here
  echo "plant $PLANT, $TRIALS trials, sample data in $SAMPLE_DATA"
  exit 0
fi

if [ -z "${PY:-}" ]; then
  PY=.venv/bin/python
  if [ ! -x .venv/bin/search ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
  fi
fi
S() { "$PY" -m search.cli "$@"; }
step() { printf '\n== %s\n' "$*"; }
S warmup                                 # compile + cache the numba kernels once (~15 s, then ~1 s)

TAG="${PLANT/:/-}"                       # zrce-1, zrce-0.5, none
FLAT="$SAMPLE_DATA/$TAG/flat"
STORE="$SAMPLE_DATA/$TAG/store"
STUDY="demo-zrce-$TAG"
if [ "$PLANT" = none ]; then
  ORIGIN="a null market (random walks, no planted edge): no strategy should pass the gates"
else
  ORIGIN="synthetic data with a planted edge, $PLANT (data/plants.py): SPY continues ~15 minutes after a volume-confirmed break of the 10:30 zone"
fi
step "sample data: $ORIGIN"
if [ ! -f "$FLAT/_synthetic.json" ]; then
  S data synth --root "$FLAT" --plant "$PLANT"          # two years (2023-2024): SPY, QQQ, AMD (+ options), EURUSD, XAUUSD, MES
fi
S data ingest --src "$FLAT" --dst "$STORE"

step "search: $TRIALS walk-forward trials of spec_space/zrce.yaml (study $STUDY)"
S run --space spec_space/zrce.yaml --trials "$TRIALS" --study "$STUDY" --data "$STORE"

step "gates: the top 5 candidates on the holdout the search never saw"
GATE_STATUS=0
S gate --study "$STUDY" --top 5 || GATE_STATUS=$?   # 0 some passed, 1 none passed, 2 an error
[ "$GATE_STATUS" -le 1 ] || exit "$GATE_STATUS"
S report --study "$STUDY"
GATES="${FARM_STUDIES:-studies}/$STUDY/gates/gates.csv"
PASSED=$("$PY" -c "
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r['passed'].lower() == 'true']
print(rows[0]['trial'] if rows else '')" "$GATES")
if [ -z "$PASSED" ]; then
  step "decision: every candidate was rejected (reasons above; report: reports/$STUDY/index.html)"
  if [ "$PLANT" = none ]; then
    echo "as it should be on a null market: nothing goes on to Lumibot confirmation or paper trading"
  else
    echo "nothing passed on the planted market $PLANT with $TRIALS trials: try more (TRIALS=500) or a stronger plant"
  fi
  exit 0
fi
step "decision: trial $PASSED passed every gate; confirming it in Lumibot (the same spec, trade for trade)"
S confirm --study "$STUDY" --trial "$PASSED"
step "reproduce trial $PASSED from its records"
S reproduce --study "$STUDY" --trial "$PASSED"
step "promote --dry-run: the deployment and the first orders it would send (no network, nothing started)"
S promote --study "$STUDY" --dry-run
S report --study "$STUDY"
echo
echo "report: reports/$STUDY/index.html; on $ORIGIN"
echo "to paper-trade it: set TRADIER_API_KEY / TRADIER_ACCOUNT_ID and run: $PY -m search.cli promote --study $STUDY"
