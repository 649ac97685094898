"""Performance statistics of one backtest: the project's single metrics function.

Both engines (the fast numba engine and Lumibot) hand their end-of-day equity and closed-trade PnL to
:func:`compute_metrics`, so a strategy gets the same numbers whichever engine ran it (Lumibot's own
Sharpe is not used). The function is pure and never raises on degenerate but valid input (no trades,
one day, flat equity); statistics that are undefined there come back as ``nan``, never ``inf``.
Invalid input (mismatched lengths, non-finite equity, unsorted days) raises ``ValueError``.

Units: every return-like number is a fraction (0.12 = 12 %), not a percentage.

=============  ==========================================================================  ==========
key            definition                                                                  undefined
=============  ==========================================================================  ==========
total_return   final equity / initial_cash - 1                                             0.0 (no days)
cagr           (final / initial_cash) ** (1 / years) - 1, years = calendar days spanned    nan (< 2 days)
               by ``days`` *inclusive* / 365.25; -1.0 once equity is <= 0
volatility     std(daily returns, ddof=1) * sqrt(periods_per_year)                         nan (< 2 days)
sharpe         mean / std(ddof=1) of daily returns * sqrt(periods_per_year), rf = 0        nan (< 2 days or std 0)
sortino        mean / downside deviation * sqrt(periods_per_year); downside deviation =    nan (< 2 days or no
               sqrt(mean(min(r, 0) ** 2)) over *all* periods                                losing day)
max_drawdown   largest (peak - equity) / peak, positive; the peak starts at initial_cash;  0.0 (no days)
               equity marked every bar (``bar_equity``) when given, else the daily closes
calmar         cagr / max_drawdown                                                         nan (no drawdown)
win_rate       trades with PnL > 0 / trades (a zero-PnL trade is not a win)                nan (no trades)
               a trade is a position (entry to final exit), its PnL the sum of its exits
profit_factor  gross win / |gross loss|, capped at PROFIT_FACTOR_CAP                       nan (no trades, or
               (also when there is no losing trade)                                         no win and no loss)
avg_trade      mean net PnL per trade, in account currency                                 nan (no trades)
n_trades       number of closed trades                                                     0.0
exposure       fraction of bars with a position, as computed by the engine (0..1)          -
=============  ==========================================================================  ==========
"""

from __future__ import annotations

import math

import numpy as np

#: Profit factor reported when there are winning trades and no losing trade (or when the ratio is larger).
#: Finite so it can be stored as JSON, compared in gates and fed to an optimiser without ``inf``.
PROFIT_FACTOR_CAP = 1000.0

#: Calendar days per year used to turn the ``days`` span into years for CAGR.
DAYS_PER_YEAR = 365.25

METRIC_KEYS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "win_rate",
    "profit_factor",
    "avg_trade",
    "n_trades",
    "exposure",
)

_NAN = float("nan")


def daily_returns(daily_equity: np.ndarray, initial_cash: float) -> np.ndarray:
    """Simple returns per day; the first day is measured against ``initial_cash``.

    A day whose previous equity is <= 0 gets return 0.0: the account is bust and a ratio of non-positive
    equities has no meaning as a return (the loss itself already shows on the day equity hit zero).
    """
    equity = np.asarray(daily_equity, dtype=np.float64).ravel()
    if equity.size == 0:
        return np.empty(0, dtype=np.float64)
    previous = np.empty_like(equity)
    previous[0] = initial_cash
    previous[1:] = equity[:-1]
    out = np.zeros_like(equity)
    alive = previous > 0
    out[alive] = equity[alive] / previous[alive] - 1.0
    return out


def drawdown_series(equity: np.ndarray) -> np.ndarray:
    """Drawdown at each point as a positive fraction of the running peak (0 at a new high).

    Points where the running peak is <= 0 get 0.0 (there is no positive wealth to draw down from).
    Prepend the starting cash to ``equity`` if a loss on the first day should count.
    """
    eq = np.asarray(equity, dtype=np.float64).ravel()
    if eq.size == 0:
        return np.empty(0, dtype=np.float64)
    peak = np.maximum.accumulate(eq)
    out = np.zeros_like(eq)
    positive = peak > 0
    out[positive] = (peak[positive] - eq[positive]) / peak[positive]
    return out


def _max_drawdown(equity: np.ndarray) -> float:
    """``drawdown_series(equity).max()`` without the masked copies: it runs on every bar of every fold."""
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, (peak - equity) / peak, 0.0)
    return float(dd.max()) if dd.size else 0.0


def sharpe_ratio(returns: np.ndarray, periods_per_year: float = 252) -> float:
    """Annualised Sharpe ratio with rf = 0: mean / std(ddof=1) * sqrt(periods_per_year).

    ``nan`` with fewer than two returns or zero standard deviation. Pass ``periods_per_year=1`` for the
    per-period Sharpe ratio used by the overfitting statistics.
    """
    r = np.asarray(returns, dtype=np.float64).ravel()
    if r.size < 2:
        return _NAN
    std = float(np.std(r, ddof=1))
    if not std > 0.0:
        return _NAN
    return float(np.mean(r)) / std * math.sqrt(periods_per_year)


def _sortino(returns: np.ndarray, periods_per_year: float) -> float:
    if returns.size < 2:
        return _NAN
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if not downside > 0.0:
        return _NAN
    return float(np.mean(returns)) / downside * math.sqrt(periods_per_year)


def _cagr(final_equity: float, initial_cash: float, days: np.ndarray) -> float:
    if days.size < 2:
        return _NAN
    # Inclusive span: the first day's return is measured from the close before it, so a year of
    # sessions from 2 Jan to 31 Dec covers ~365 days, not 363.
    span_days = int((days[-1] - days[0]) / np.timedelta64(1, "D")) + 1
    growth = final_equity / initial_cash
    if growth <= 0.0:
        return -1.0
    return growth ** (DAYS_PER_YEAR / span_days) - 1.0


def _trade_stats(pnls: np.ndarray) -> dict[str, float]:
    n = pnls.size
    if n == 0:
        return {"win_rate": _NAN, "profit_factor": _NAN, "avg_trade": _NAN, "n_trades": 0.0}
    gross_win = float(pnls[pnls > 0].sum())
    gross_loss = float(-pnls[pnls < 0].sum())
    if gross_loss > 0.0:
        profit_factor = min(gross_win / gross_loss, PROFIT_FACTOR_CAP)
    elif gross_win > 0.0:
        profit_factor = PROFIT_FACTOR_CAP
    else:
        profit_factor = _NAN  # only scratch trades: neither won nor lost anything
    return {
        "win_rate": float(np.count_nonzero(pnls > 0)) / n,
        "profit_factor": profit_factor,
        "avg_trade": float(pnls.mean()),
        "n_trades": float(n),
    }


def _validate(
    equity: np.ndarray, days: np.ndarray, pnls: np.ndarray, initial_cash: float, exposure: float, ppy: int
) -> None:
    if not (math.isfinite(initial_cash) and initial_cash > 0):
        raise ValueError(f"initial_cash must be a positive finite number, got {initial_cash!r}")
    if ppy <= 0:
        raise ValueError(f"periods_per_year must be positive, got {ppy!r}")
    if not (math.isfinite(exposure) and 0.0 <= exposure <= 1.0):
        raise ValueError(
            f"exposure must be a fraction in [0, 1] (bars with a position / bars), got {exposure!r}"
        )
    if equity.shape != days.shape:
        raise ValueError(
            f"daily_equity has {equity.size} values but days has {days.size}: pass one day per equity value"
        )
    if (i := _first(~np.isfinite(equity))) is not None:
        raise ValueError(f"daily_equity[{i}] is {equity[i]} (day {days[i]}); equity must be finite")
    if days.size > 1 and (i := _first(np.diff(days.astype("int64")) <= 0)) is not None:
        i += 1  # the day that does not follow its predecessor
        raise ValueError(
            f"days must be strictly increasing: days[{i}] = {days[i]} follows days[{i - 1}] = {days[i - 1]}"
        )
    if (i := _first(~np.isfinite(pnls))) is not None:
        raise ValueError(f"trade_pnls[{i}] is {pnls[i]}; every closed trade needs a finite net PnL")


def _first(mask: np.ndarray) -> int | None:
    """The index of the first True in ``mask``, or None."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def compute_metrics(
    daily_equity: np.ndarray,
    days: np.ndarray,
    trade_pnls: np.ndarray,
    *,
    initial_cash: float,
    exposure: float,
    periods_per_year: int = 252,
    bar_equity: np.ndarray | None = None,
) -> dict[str, float]:
    """All metrics of one backtest (see the module docstring for definitions, units and undefined cases).

    Args:
        daily_equity: end-of-day account equity per trading day, oldest first.
        days: the matching dates (anything ``np.asarray(..., dtype="datetime64[D]")`` accepts).
        trade_pnls: net PnL of each closed position (entry to final exit, partial exits summed), after
            every commission, spread and slippage.
        initial_cash: equity before the first day; the base of the first day's return and the first peak.
        exposure: fraction of bars with an open position, computed by the engine.
        periods_per_year: annualisation factor of the daily returns.
        bar_equity: equity marked at every bar of the same window (its last value of each day is that
            day's ``daily_equity``). Given, the max drawdown comes from it: a position that dips and
            recovers within a day is a drawdown a trader lives through, which daily closes hide.

    Returns:
        A dict with exactly the keys of :data:`METRIC_KEYS`, all plain ``float``.
    """
    equity = np.asarray(daily_equity, dtype=np.float64).ravel()
    day_arr = np.asarray(days, dtype="datetime64[D]").ravel()
    pnls = np.asarray(trade_pnls, dtype=np.float64).ravel()
    initial_cash = float(initial_cash)
    exposure = float(exposure)
    _validate(equity, day_arr, pnls, initial_cash, exposure, periods_per_year)

    returns = daily_returns(equity, initial_cash)
    final = float(equity[-1]) if equity.size else initial_cash
    cagr = _cagr(final, initial_cash, day_arr)
    # The peak starts at the initial cash so that losing from day one is a drawdown.
    marked = equity
    if bar_equity is not None:
        marked = np.asarray(bar_equity, dtype=np.float64).ravel()
        bad = np.flatnonzero(~np.isfinite(marked))
        if bad.size:
            raise ValueError(f"bar_equity[{int(bad[0])}] is {marked[int(bad[0])]}; equity must be finite")
    max_dd = _max_drawdown(np.concatenate(([initial_cash], marked)))
    volatility = float(np.std(returns, ddof=1)) * math.sqrt(periods_per_year) if returns.size >= 2 else _NAN

    out: dict[str, float] = {
        "total_return": final / initial_cash - 1.0,
        "cagr": cagr,
        "volatility": volatility,
        "sharpe": sharpe_ratio(returns, periods_per_year),
        "sortino": _sortino(returns, periods_per_year),
        "max_drawdown": max_dd,
        "calmar": cagr / max_dd if max_dd > 0.0 and math.isfinite(cagr) else _NAN,
    }
    out.update(_trade_stats(pnls))
    out["exposure"] = exposure
    return {key: float(out[key]) for key in METRIC_KEYS}
