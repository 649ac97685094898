"""Speed of the fast engine against Lumibot and backtesting.py on the same data and strategy.

    python -m benchmarks.bench_engines [--days 250] [--lumibot-days 10] [--option-days 3] [--fx-futures-days 20]
        [--repeats 5]

Generates ``--days`` sessions of synthetic SPY minute bars (and ``--option-days`` sessions with the
option chain) with ``data.synth``, ingests them, and times, side by side:

* the SMA cross of ``spec_space/sma_cross.yaml`` (its defaults) on minute bars: the fast engine
  (median of ``--repeats`` after a warm-up run that compiles and caches) over all sessions and over
  the Lumibot window, and the Lumibot engine over the first ``--lumibot-days`` sessions;
* the same cross on the store's daily bars: the fast engine and backtesting.py 0.6.6 (an
  independent implementation: next-bar-open fills, ``buy(size=0.5)``; a reference for speed, its
  trades are not expected to match ours exactly);
* a ZRCE-like option spec (``spec_space/zrce.yaml`` defaults: 0DTE SPY calls and puts by delta with
  stop, target, trailing, partial, time exits) in the fast engine and in Lumibot;
* over the first ``--fx-futures-days`` sessions, ``forex_trend`` (15-minute and 1-minute EURUSD bars) and
  ``mes_orb`` (regular hours, and around the clock on 1-minute bars) in both engines: sessions that run
  into each other, which Lumibot runs on its continuous clock.

Every Lumibot run is also compared with the fast engine (evaluator.parity) and the result printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.calendar import nyse_sessions
from data.ingest import ingest
from data.store import Store
from data.synth import generate
from evaluator import fast
from evaluator.market import load_market
from evaluator.parity import compare_results
from evaluator.results import BacktestResult
from spec_space.loader import load_space
from spec_space.models import StrategySpec
from spec_space.space import DefaultSource

SPACES = Path(__file__).resolve().parent.parent / "spec_space"


def _space_spec(name: str, **overrides: Any) -> StrategySpec:
    space = load_space(SPACES / f"{name}.yaml")
    return space.build(space.suggest(DefaultSource(space, overrides)))


def _median_seconds(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    out = run()  # warm-up: numba compilation (cached on disk), indicator caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def _timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = run()
    return time.perf_counter() - started, out


def _bars(result: BacktestResult) -> int:
    return len(result.bar_ts)


def _backtesting_py(
    daily: pd.DataFrame, fast_period: int, slow_period: int, cash: float
) -> tuple[float, int]:
    """The SMA cross in backtesting.py on daily bars: (seconds of Backtest.run, trades)."""
    import backtesting._util
    from backtesting import Backtest, Strategy

    backtesting.backtesting._tqdm = lambda seq, **_: seq  # its progress bar would land in the table

    def sma(values: np.ndarray, period: int) -> np.ndarray:
        return pd.Series(values).rolling(period).mean().to_numpy()

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, fast_period)
            self.slow = self.I(sma, self.data.Close, slow_period)

        def next(self) -> None:
            if self.fast[-1] > self.slow[-1] and self.fast[-2] <= self.slow[-2]:
                self.buy(size=0.5)
            elif self.fast[-1] < self.slow[-1] and self.fast[-2] >= self.slow[-2] and self.position:
                self.position.close()

    bt = Backtest(daily, SmaCross, cash=cash, commission=0.0, trade_on_close=False, exclusive_orders=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt.run()  # warm-up
        seconds, stats = _timed(bt.run)
    return seconds, int(stats["# Trades"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=250, help="sessions of SPY minute bars (default 250)")
    parser.add_argument("--lumibot-days", type=int, default=10, help="sessions Lumibot runs the SMA cross on")
    parser.add_argument("--option-days", type=int, default=3, help="sessions with options for the ZRCE spec")
    parser.add_argument(
        "--fx-futures-days", type=int, default=20, help="sessions of EURUSD and MES for forex_trend and mes_orb"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of the fast engine (median)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from evaluator import lumibot  # imported here: Lumibot takes a few seconds to import

    sessions = [ts.date() for ts in nyse_sessions(dt.date(2024, 1, 2), dt.date(2026, 12, 31)).index]
    days = sessions[: args.days]
    start, end = days[0], days[-1]
    lumi_end = days[min(args.lumibot_days, len(days)) - 1]
    opt_end = days[min(args.option_days, len(days)) - 1]
    rows: list[tuple[str, str, str, int, int, float, float | None]] = []
    notes: list[str] = []

    with tempfile.TemporaryDirectory(prefix="bench_engines_") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        generate(root / "flat", tickers=["SPY"], start=start, end=end, seed=args.seed, options=False)
        generate(root / "flat", tickers=["SPY"], start=start, end=opt_end, seed=args.seed, options=True)
        ingest(root / "flat", root / "store", workers=1)
        store = Store(root / "store")
        print(
            f"sample data: {len(days)} sessions {start}..{end} (options {start}..{opt_end}), "
            f"{time.perf_counter() - began:.1f} s to generate and ingest"
        )

        # ---- SMA cross on minute bars
        sma = _space_spec("sma_cross")
        market = load_market(store, sma, start, end)
        t_fast, r_fast = _median_seconds(lambda: fast.run(sma, market, start, end), args.repeats)
        rows.append(("sma_cross", "fast (numba)", "1min", _bars(r_fast), r_fast.trades.height, t_fast, None))
        t_fast_w, r_fast_w = _median_seconds(lambda: fast.run(sma, market, start, lumi_end), args.repeats)
        rows.append(
            ("sma_cross", "fast (numba)", "1min", _bars(r_fast_w), r_fast_w.trades.height, t_fast_w, None)
        )
        t_lumi, r_lumi = _timed(lambda: lumibot.run(sma, market, start, lumi_end))
        rows.append(
            ("sma_cross", "lumibot", "1min", _bars(r_lumi), r_lumi.trades.height, t_lumi, t_lumi / t_fast_w)
        )
        notes.append(f"sma_cross parity (lumibot window): {compare_results(r_fast_w, r_lumi).summary(3)}")

        # ---- the same cross on daily bars: fast engine and backtesting.py
        fast_p, slow_p = 10, 30  # sma_cross.yaml defaults
        daily_spec = sma.model_copy(
            update={
                "timeframe": "1d",
                "entry": sma.entry.model_copy(update={"window_start": None, "window_end": None}),
                "exits": sma.exits.model_copy(update={"eod_flat_time": None, "stop_loss": None}),
                "costs": sma.costs.model_copy(update={"commission_per_share": 0.0, "slippage_bps": 0.0}),
            }
        )
        daily_market = load_market(store, daily_spec, start, end, warmup_days=0)
        t_fd, r_fd = _median_seconds(lambda: fast.run(daily_spec, daily_market, start, end), args.repeats)
        rows.append(("sma_cross", "fast (numba)", "1d", _bars(r_fd), r_fd.trades.height, t_fd, None))
        bars = daily_market.bars
        daily = pd.DataFrame(
            {
                "Open": bars.open,
                "High": bars.high,
                "Low": bars.low,
                "Close": bars.close,
                "Volume": bars.volume,
            },
            index=pd.to_datetime(bars.ts, utc=True).tz_convert(None),
        )
        t_bt, n_bt = _backtesting_py(daily, fast_p, slow_p, sma.initial_cash)
        rows.append(("sma_cross", "backtesting.py", "1d", len(daily), n_bt, t_bt, t_bt / t_fd))

        # ---- a ZRCE-like option spec
        zrce = _space_spec("zrce")
        opt_market = load_market(store, zrce, start, opt_end)
        t_fo, r_fo = _median_seconds(lambda: fast.run(zrce, opt_market, start, opt_end), args.repeats)
        rows.append(("zrce (0DTE)", "fast (numba)", "1min", _bars(r_fo), r_fo.trades.height, t_fo, None))
        t_lo, r_lo = _timed(lambda: lumibot.run(zrce, opt_market, start, opt_end))
        rows.append(("zrce (0DTE)", "lumibot", "1min", _bars(r_lo), r_lo.trades.height, t_lo, t_lo / t_fo))
        notes.append(f"zrce parity: {compare_results(r_fo, r_lo).summary(3)}")

        # ---- forex and futures: sessions that run into each other (Lumibot's continuous clock)
        fx_days = days[: args.fx_futures_days]
        fx_start, fx_end = fx_days[0], fx_days[-1]
        warm = fx_start - dt.timedelta(days=14)
        generate(root / "flat", tickers=["C:EURUSD", "MES"], start=warm, end=fx_end, seed=args.seed, options=False)
        ingest(root / "flat", root / "store", workers=1)
        mes = _space_spec("mes_orb")
        extended = mes.model_copy(
            update={
                "session": "extended",
                "timeframe": "1min",
                "entry": mes.entry.model_copy(update={"window_end": None}),
                "exits": mes.exits.model_copy(update={"eod_flat_time": None}),
            }
        )
        fx = _space_spec("forex_trend")
        cases = [
            ("forex_trend", fx),
            ("forex_trend", fx.model_copy(update={"timeframe": "1min"})),
            ("mes_orb", mes),
            ("mes_orb ext", extended),
        ]
        for name, spec in cases:
            fx_market = load_market(store, spec, fx_start, fx_end)
            t_f, r_f = _median_seconds(lambda s=spec, m=fx_market: fast.run(s, m, fx_start, fx_end), args.repeats)
            rows.append((name, "fast (numba)", spec.timeframe, _bars(r_f), r_f.trades.height, t_f, None))
            t_l, r_l = _timed(lambda s=spec, m=fx_market: lumibot.run(s, m, fx_start, fx_end))
            rows.append((name, "lumibot", spec.timeframe, _bars(r_l), r_l.trades.height, t_l, t_l / t_f))
            notes.append(f"{name} {spec.timeframe} parity: {compare_results(r_f, r_l).summary(3)}")

    print()
    print(
        f"{'case':<12} {'engine':<15} {'bars':>5} {'n bars':>8} {'trades':>7} {'seconds':>9} {'us/bar':>9} {'x fast':>9}"
    )
    for case, engine, tf, n, trades, seconds, ratio in rows:
        per_bar = seconds / max(n, 1) * 1e6
        ratio_text = f"{ratio:9.0f}" if ratio is not None else f"{'-':>9}"
        print(
            f"{case:<12} {engine:<15} {tf:>5} {n:>8} {trades:>7} {seconds:>9.4f} {per_bar:>9.2f} {ratio_text}"
        )
    print()
    print("x fast: time over the fast engine's time on the same bars (lumibot rows: the fast row just above")
    print("with the same window; backtesting.py: the fast engine on the same daily bars).")
    rates = ", ".join(
        f"{n / seconds:,.0f} on {case} {tf}" for case, engine, tf, n, _, seconds, _ in rows if engine == "lumibot"
    )
    print(f"Lumibot bars/s (whole run, start-up included): {rates}.")
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
