"""Independent cross-check: an SMA cross on daily bars in backtesting.py 0.6.6 and in the fast engine.

Both are set up to follow the same rules: market orders decided on a bar's close fill at the next
bar's open (backtesting.py: ``trade_on_close=False``), commission is a fraction of traded value on
each side (backtesting.py ``commission``; our ``costs.commission_pct``), no margin, one position.

Sizing is mirrored exactly: backtesting.py turns ``buy(size=0.9999)`` into
``int(margin_available * 0.9999 // (price + commission(size, price) / size))`` whole shares
(``_Broker._process_orders``), i.e. the largest whole number of shares 99.99% of equity buys
commission included; that is our ``pct_equity`` rule with ``pct_equity: 0.9999``.

One difference is designed away rather than hidden: ``finalize_trades=True`` closes a trade still open
at the end at the last bar's *open* (it re-runs the broker on the last bar), while our fill model
(rule 8) closes it at the last bar's *close*. The generated data's last bar is flat (O = H = L = C),
so both close at the same price and every trade can be compared, the last one included.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest, Strategy

from tests.evaluator import builders as b

FAST, SLOW = 10, 30


def daily_walk(seed: int, n: int = 500) -> pd.DataFrame:
    """A random walk of n business days with overnight gaps; the last bar is flat (see module doc)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2021-01-04", periods=n)
    rows = []
    close = 100.0
    for _ in range(n):
        o = close * math.exp(rng.normal(0, 0.004))
        c = o * math.exp(rng.normal(0.0003, 0.015))
        h = max(o, c) * (1 + abs(rng.normal(0, 0.005)))
        lo = min(o, c) * (1 - abs(rng.normal(0, 0.005)))
        rows.append((o, h, lo, c, float(rng.integers(100_000, 1_000_000))))
        close = c
    o = rows[-1][0]
    rows[-1] = (o, o, o, o, rows[-1][4])
    return pd.DataFrame(rows, index=days, columns=["Open", "High", "Low", "Close", "Volume"])


def _sma(values: np.ndarray, period: int) -> np.ndarray:
    return pd.Series(values).rolling(period).mean().to_numpy()


class SmaCross(Strategy):
    def init(self) -> None:
        self.fast = self.I(_sma, self.data.Close, FAST)
        self.slow = self.I(_sma, self.data.Close, SLOW)

    def next(self) -> None:
        # the same definitions as our crosses_above / crosses_below: strict now, non-strict before
        if self.fast[-1] > self.slow[-1] and self.fast[-2] <= self.slow[-2]:
            self.buy(size=0.9999)
        elif self.fast[-1] < self.slow[-1] and self.fast[-2] >= self.slow[-2] and self.position:
            self.position.close()


def run_backtesting_py(df: pd.DataFrame, commission: float) -> tuple[pd.DataFrame, pd.Series]:
    bt = Backtest(
        df,
        SmaCross,
        cash=100_000,
        commission=commission,
        margin=1.0,
        trade_on_close=False,
        exclusive_orders=True,
        finalize_trades=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    return stats["_trades"], stats["_equity_curve"]["Equity"]


def run_fast(df: pd.DataFrame, commission: float):  # noqa: ANN201 - a BacktestResult
    rows = [
        (f"{day:%Y-%m-%d} 00:00", r.Open, r.High, r.Low, r.Close, r.Volume)
        for day, r in zip(df.index, df.itertuples(), strict=True)
    ]
    strategy = b.spec(
        timeframe="1d",
        entry={"long": f"crosses_above(sma(close, {FAST}), sma(close, {SLOW}))"},
        exits={"exit_long": f"crosses_below(sma(close, {FAST}), sma(close, {SLOW}))"},
        sizing={"mode": "pct_equity", "pct_equity": 0.9999},
        costs={"commission_pct": commission},
        initial_cash=100_000.0,
    )
    return b.run(strategy, b.market(rows))


@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize("commission", [0.0, 0.002])
def test_same_trades_as_backtesting_py(seed, commission):
    df = daily_walk(seed)
    theirs, their_equity = run_backtesting_py(df, commission)
    result = run_fast(df, commission)
    ours = result.trades.to_pandas()

    assert len(theirs) >= 5, "the walk should cross often enough to compare something"
    assert len(ours) == len(theirs)
    assert ours["entry_bar"].tolist() == theirs["EntryBar"].tolist()
    assert ours["exit_bar"].tolist() == theirs["ExitBar"].tolist()
    assert ours["quantity"].tolist() == theirs["Size"].astype(float).tolist()
    np.testing.assert_allclose(ours["entry_price"], theirs["EntryPrice"], rtol=1e-12)
    np.testing.assert_allclose(ours["exit_price"], theirs["ExitPrice"], rtol=1e-12)
    np.testing.assert_allclose(ours["commission"], theirs["Commission"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours["pnl"], theirs["PnL"], rtol=1e-9, atol=1e-6)
    # the equity curve marked on every close, not just the trades
    np.testing.assert_allclose(result.bar_equity, their_equity.to_numpy(), rtol=1e-10)
    # the entries fill at the open after the crossing bar
    fast, slow = _sma(df["Close"].to_numpy(), FAST), _sma(df["Close"].to_numpy(), SLOW)
    for entry_bar in ours["entry_bar"]:
        assert fast[entry_bar - 1] > slow[entry_bar - 1] and fast[entry_bar - 2] <= slow[entry_bar - 2]
