"""The shipped spaces at their defaults on the seed-7 sample data: exact numbers, pinned.

Like backtesting.py pins its GOOG results, this pins each shipped space's trades, return, drawdown
and win rate from the fast engine over a fixed six-month window (2024-01-02 .. 2024-06-28, cheap to
generate) of the sample data that ``search data synth`` writes with seed 7, whatever the spaces' own
(two-year) data windows are. A change to a trading rule shared by both engines,
to the fill model or to the generator moves a number here, and the commit that moves it must say why.
Engine parity (tests/evaluator/test_engine_parity.py) ties the Lumibot engine to the same numbers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from data.ingest import ingest
from data.synth import generate
from evaluator.fast import run
from evaluator.market import load_market
from spec_space.loader import load_space
from spec_space.space import DefaultSource

SPACES = Path(__file__).resolve().parents[2] / "spec_space"
#: the window the numbers are pinned on (the sample data's default window until the two-year one)
PIN_START, PIN_END = dt.date(2024, 1, 2), dt.date(2024, 6, 28)

#: space -> (positions, total return, max drawdown, win rate); regenerate with
#: ``python -m tests.spec_space.test_shipped_spaces_pinned STORE`` and explain every change in the commit.
PINNED: dict[str, tuple[int, float, float, float]] = {
    "forex_trend": (239, -0.05671627471006213, 0.0984658218791797, 0.45188284518828453),
    "ghetto_spread": (62, -0.005172999999999428, 0.018917810455563955, 0.43548387096774194),
    "mes_orb": (56, -0.008459499174989227, 0.04571542894828499, 0.375),
    "sma_cross": (793, -0.07533039430710164, 0.09709931000385746, 0.29760403530895335),
    "zrce": (121, -0.41030791550000023, 0.4114319141000003, 0.23140495867768596),
}


def shipped_metrics(store_root: str) -> dict[str, tuple[int, float, float, float]]:
    from data.store import Store

    store = Store(store_root)
    out: dict[str, tuple[int, float, float, float]] = {}
    for path in sorted(SPACES.glob("*.yaml")):
        space = load_space(path)
        spec = space.build(space.suggest(DefaultSource(space)))
        market = load_market(store, spec, PIN_START, PIN_END)
        m = run(spec, market, PIN_START, PIN_END).metrics
        out[space.name] = (int(m["n_trades"]), m["total_return"], m["max_drawdown"], m["win_rate"])
    return out


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("seed7")
    generate(root / "flat", tickers=["SPY", "AMD", "MES", "C:EURUSD"], start=PIN_START, end=PIN_END, seed=7)
    report = ingest(root / "flat", root / "store")
    assert not report.failed, report.summary()
    return str(root / "store")


def test_every_shipped_space_is_pinned():
    assert sorted(PINNED) == sorted(load_space(p).name for p in SPACES.glob("*.yaml"))


def test_shipped_spaces_at_their_defaults_give_the_pinned_numbers(sample_store):
    got = shipped_metrics(sample_store)
    for name, (trades, total_return, max_drawdown, win_rate) in PINNED.items():
        n, r, dd, w = got[name]
        assert n == trades, f"{name}: {n} positions, pinned {trades}"
        assert r == pytest.approx(total_return, rel=1e-9, abs=1e-12), f"{name}: total return"
        assert dd == pytest.approx(max_drawdown, rel=1e-9, abs=1e-12), f"{name}: max drawdown"
        assert w == pytest.approx(win_rate, rel=1e-9, abs=1e-12), f"{name}: win rate"


if __name__ == "__main__":  # print the current numbers, to pin them
    import sys

    for name, values in shipped_metrics(sys.argv[1]).items():
        print(f"    {name!r}: ({values[0]}, {values[1]!r}, {values[2]!r}, {values[3]!r}),")
