"""The Lumibot engine: any StrategySpec run as a Lumibot ``Strategy`` under the same fill model.

``run(spec, market, start, end)`` backtests ``spec`` with Lumibot's own clock, broker, order fills,
positions and cash, on the bars of the same :class:`~evaluator.market.Market` the fast engine uses
(which come from the Parquet store), and returns the same :class:`~evaluator.results.BacktestResult`
schema (metrics from :mod:`evaluator.metrics`, never Lumibot's own). The parity tests hold the two
engines to one fill model (:mod:`evaluator.fill_model`); ``search confirm`` re-runs finalists here.

How the fill model maps onto Lumibot (lumibot 4.6.30, ``PandasData`` minute backtests)
--------------------------------------------------------------------------------------
Lumibot iterates once per minute at time ``t``; the bar stamped ``t`` is still forming (its open is
known, ``get_last_price`` returns it), the bars before it are closed. After ``on_trading_iteration``
the backtesting broker fills pending orders against the bar stamped ``t``: market orders at its
open, stop and limit orders on its high/low (a gap fills at the open), in submission order. So the
strategy decides on bar ``i``'s close at the iteration of bar ``i + 1``, and

* market orders submitted then fill at bar ``i + 1``'s open (rules 1, 2, 8, 9, 11): entries, signal
  exits, reversals, multi-leg level exits, staged conversions and time exits;
* single-instrument stops, trailing and break-even stops, partial and final take-profits are
  resting stop / limit orders checked intrabar by Lumibot (rules 4, 6, 7), re-placed in the order
  stop, partials, target so Lumibot checks the stop first.

Where Lumibot needed help (each point is a Lumibot behaviour, not a choice of the fill model):

1. Lumibot never processes a session's last bar (with ``PandasData`` it takes each New York calendar
   date of the data as one session and its loop stops when the clock reaches that date's last
   timestamp), and has no way to fill at a bar's close. Where every session lies within one date
   and pauses after its last bar (stocks, options, regular-hours futures), every session's data gets
   two sentinel rows one and two minutes after its last bar, at that bar's close: the iteration at
   the first sentinel is where the last bar's close is decided on, and a market order placed there
   fills at the sentinel's open, i.e. the last bar's close (expiry and end-of-window closes, rule 8).
   Forex (the day rolls at 17:00) and extended-hours futures (Globex reopens at 18:00 for the next
   trade date) have sessions that start the evening before their date and run into each other, so
   no calendar date is a session and no pause fits two sentinels (``plan.sessions_run_together``).
   Those run on Lumibot's continuous clock instead (``set_market("24/7")``): the strategy sleeps
   from each bar straight to the next one (Lumibot moves its clock only while sleeping and checks
   orders only at iterations, so nights, weekends and the padding between sparse bars are skipped
   and fill nothing), a session's last bar is decided on at the next session's first bar like any
   other bar (the fill model has no pause there either: resting exits stay in place across it), and
   only the window's last bar gets the two sentinels. The strategy maps Lumibot's clock to Market
   bars, so sentinels and the minutes Lumibot pads between sparse bars (copies of the previous bar)
   are never taken for real bars.
2. Lumibot forward-fills missing rows from the previous bar (open included) and forward-fills a
   missing close without limit. Option contracts therefore get rows at every bar of their
   sessions, built by the fill model: the bar's own open/high/low/close when the contract traded,
   else its last trade within ``max_staleness_minutes`` (rule 2, 10), else zeros, which Lumibot
   treats as "no price" (no fill, ``get_last_price`` is None).
3. Lumibot's strategy callbacks (``on_filled_order``) run after the broker's whole pass over the
   pending orders, so they cannot stop a second exit order from filling on the same bar. The broker
   is a thin subclass whose fill hook runs synchronously: when a stop or target fills the other
   resting exits are cancelled, when a partial target fills the remaining ones shrink to what is
   left (``Order.quantity``), exactly as the fill model's ordered intrabar checks do. Lumibot also
   rejects option close orders that add up to more than the position (it counts every resting
   exit, and the exits of an entry go out in the same minute as the entry, before it fills); the
   subclass exempts the strategy's resting exit group, which the fill hook keeps within the position.
4. Costs: commissions per share / contract / lot and ``commission_pct`` of single-instrument fills
   are Lumibot ``TradingFee`` objects (per_contract_fee, percent_fee scaled by the contract
   multiplier since Lumibot takes the percentage of price x quantity). Lumibot's
   ``TradingSlippage`` only applies to SMART_LIMIT orders, so slippage (bps, ticks) and the option
   half-spread are booked by the strategy at each fill as a cash adjustment, and so is the
   percentage commission of multi-leg positions (the fill model charges it on the net value).
5. Lumibot checks working orders when its clock jumps to the next session's open, before that
   session's first iteration, while the fill model checks levels only after the open's exits and
   entries. The resting exits are cancelled at each session's end and placed again at the next
   session's first bar; they are GTC (Lumibot's default DAY orders expire at the close). On the
   continuous clock (note 1) nothing is checked between iterations, so they simply stay.
6. Lumibot compares a stop or limit price with the bar's prices; the fill model compares the
   position's value (price x signed multiplier) with a value level. The two differ by rounding right
   at a level (100 x 0.07 is 7.000000000000001 > 7.0), so each order price is the last float on the
   fill model's side of the level (``_trigger_price``): Lumibot then triggers on exactly the same bars.
7. Contracts are registered with the data source when the strategy selects them (only those), as
   Lumibot's own on-demand data sources do.
8. After the run the broker's stream thread and the data source's thread pool are stopped (Lumibot
   leaves them running).

Futures: the store's continuous front month (rolled by volume, :meth:`data.store.Store.bars`) is one
Lumibot ``cont_future`` Asset with the instrument table's multiplier, so a position held through the
roll sees the same stitched prices as the fast engine. Lumibot books futures on margin (opening a lot
takes its margin from cash; closing returns it with the realised P&L), the fill model on the notional;
``SpecStrategy.model_cash`` converts Lumibot's cash to the fill model's for sizing and the equity marks.
Forex quantities are units of the base currency (``Plan.lumi_units``: 100,000 a lot).

Entry windows and ``eod_flat_time`` are times of the trading session
(:func:`data.calendar.spec_session_minute`): both engines read the same ``signal_arrays``.

Not supported (``NotImplementedError`` with the reason): partial take-profits not in ascending order
(they rest together; the fill model takes them strictly in list order).

Signals: in a backtest the strategy reads the precomputed, causal arrays of
:func:`evaluator.fast.signal_arrays` and picks contracts with the fast engine's own
:func:`evaluator._kernel.select_contract`, so both engines see the same signals and the same chain.

The live counterpart (the same position rules on a live broker) is :mod:`brokers.live`.

Isolation: ``Strategy.run_backtest`` lets environment variables override its arguments
(BACKTESTING_START/END, BACKTESTING_DATA_SOURCE, BACKTESTING_BUDGET, ...) and writes ``logs/``
(data_provenance.json, market inputs) into the working directory even with ``analyze_backtest=False``,
so the engine builds the data source, broker, strategy and ``Trader`` itself (the same objects
``run_backtest`` builds) with ``risk_free_rate=0`` (else it downloads ^IRX from Yahoo), no benchmark
and no analysis. It imports Lumibot with ``.env`` discovery disabled, runs each backtest with a
controlled environment (:func:`evaluator.lumibot.env.lumibot_environment`, restored afterwards) in its own folder
(``run_dir``, default a temporary folder). Lumibot 4.6.30 installs its SIGINT handler only on the
main thread and backtests fine off it, but the environment and working directory are process-wide:
off the main thread (thread pools, threaded actors) the run goes to a child process. Ray runs tasks
on its worker's main thread, so a Ray task runs in-process.

Modules, one job each:

* :mod:`~evaluator.lumibot.env`: the Lumibot environment variables and :func:`lumibot_environment`;
  ``_lumibot``: Lumibot imported once inside it;
* :mod:`~evaluator.lumibot.plan`: a spec and its market flattened into one run's plan;
* :mod:`~evaluator.lumibot.data`: the ``PandasData`` frames (sentinels, option rows by the fill model);
* :mod:`~evaluator.lumibot.broker`: the backtesting broker with the synchronous fill hook;
* :mod:`~evaluator.lumibot.core`: the position state and rules shared with live trading;
* :mod:`~evaluator.lumibot.strategy`: :class:`SpecStrategy`, the backtest strategy;
* :mod:`~evaluator.lumibot.runner`: :func:`run`, in this process or a child process.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SpecCore", "SpecStrategy", "lumibot_environment", "run"]

# Lumibot takes seconds to import: the engine's names load on first use, and evaluator.lumibot.env
# (the environment variables, which the deployment launcher reads) never imports it.
_HOMES = {
    "SpecCore": "evaluator.lumibot.core",
    "SpecStrategy": "evaluator.lumibot.strategy",
    "lumibot_environment": "evaluator.lumibot.env",
    "run": "evaluator.lumibot.runner",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
