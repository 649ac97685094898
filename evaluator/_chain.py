# ruff: noqa: ANN001, ANN201  -- numba infers the array and scalar types of these kernels at compile time
"""Option contracts in the chain, compiled with numba and shared by both engines and live trading: the
contract a leg selects (Black-Scholes delta from the last trade, moneyness or a strike offset), the held
contract found again in a new session's chain, and the trading sessions left to an expiry."""

from __future__ import annotations

import math

import numba
import numpy as np

MINUTES_PER_YEAR = 365.0 * 24.0 * 60.0


@numba.njit(cache=True)
def _norm_cdf(x: float) -> float:  # pragma: no cover - numba
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@numba.njit(cache=True)
def bs_price(
    spot: float, strike: float, t: float, vol: float, rate: float, is_call: bool
) -> float:  # pragma: no cover
    if t <= 0.0 or vol <= 0.0:
        return max(spot - strike, 0.0) if is_call else max(strike - spot, 0.0)
    sq = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t) / sq
    d2 = d1 - sq
    if is_call:
        return spot * _norm_cdf(d1) - strike * math.exp(-rate * t) * _norm_cdf(d2)
    return strike * math.exp(-rate * t) * _norm_cdf(-d2) - spot * _norm_cdf(-d1)


@numba.njit(cache=True)
def implied_delta(
    price: float, spot: float, strike: float, t: float, rate: float, is_call: bool
) -> float:  # pragma: no cover
    """|delta| from the Black-Scholes implied volatility of ``price`` (bisection)."""
    intrinsic = max(spot - strike, 0.0) if is_call else max(strike - spot, 0.0)
    if t <= 0.0 or price <= intrinsic + 1e-9:
        return 1.0 if intrinsic > 0 else 0.0
    lo, hi = 1e-4, 5.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if bs_price(spot, strike, t, mid, rate, is_call) > price:
            hi = mid
        else:
            lo = mid
    vol = 0.5 * (lo + hi)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t) / (vol * math.sqrt(t))
    return _norm_cdf(d1) if is_call else 1.0 - _norm_cdf(d1)


@numba.njit(cache=True)
def select_contract(
    c0: int,
    c1: int,
    pos_in_day: int,
    spot: float,
    minute: int,
    today: int,
    want_call: bool,
    dte: int,
    select_mode: int,
    value: float,
    rate: float,
    c_exp: np.ndarray,
    c_strike: np.ndarray,
    c_call: np.ndarray,
    c_off: np.ndarray,
    p_last: np.ndarray,
) -> int:  # pragma: no cover - numba
    """Pick a contract among ``[c0, c1)`` at bar ``pos_in_day`` of the session: -1 if none is priced."""
    best_exp = 1 << 40
    for c in range(c0, c1):
        if c_call[c] != want_call or c_exp[c] - today < dte:
            continue
        if np.isnan(p_last[c_off[c] + pos_in_day]):
            continue
        if c_exp[c] < best_exp:
            best_exp = c_exp[c]
    if best_exp == 1 << 40:
        return -1
    minutes_left = (best_exp - today) * 1440.0 + (960.0 - minute)  # expiry at 16:00 exchange time
    t = max(minutes_left, 1.0) / MINUTES_PER_YEAR
    best = -1
    best_score = 1e300
    for c in range(c0, c1):
        if c_call[c] != want_call or c_exp[c] != best_exp:
            continue
        last = p_last[c_off[c] + pos_in_day]
        if np.isnan(last):
            continue
        if select_mode == 0:
            score = abs(implied_delta(last, spot, c_strike[c], t, rate, want_call) - value)
        elif select_mode == 1:
            target = spot * (1.0 + value) if want_call else spot * (1.0 - value)
            score = abs(c_strike[c] - target)
        else:
            target = spot + value if want_call else spot - value
            score = abs(c_strike[c] - target)
        # ties: the lower strike for calls, the higher for puts, so the choice is deterministic
        score += (c_strike[c] if want_call else -c_strike[c]) * 1e-9
        if score < best_score:
            best_score = score
            best = c
    return best


@numba.njit(cache=True)
def _find_contract(
    c0: int,
    c1: int,
    exp: int,
    strike: float,
    is_call: bool,
    c_exp: np.ndarray,
    c_strike: np.ndarray,
    c_call: np.ndarray,
) -> int:  # pragma: no cover
    for c in range(c0, c1):
        if c_exp[c] == exp and c_call[c] == is_call and abs(c_strike[c] - strike) < 1e-6:
            return c
    return -1


@numba.njit(cache=True)
def sessions_left(today: int, expiry: int, sess_ord: np.ndarray) -> int:  # pragma: no cover - numba
    """Trading sessions after ``today`` up to and including ``expiry`` (day ordinals; ``sess_ord`` sorted):
    0 on the expiry session itself, 1 on the session before it, whatever weekends and holidays lie
    between (``close_days_before_expiry`` counts these)."""
    return int(
        np.searchsorted(sess_ord, expiry, side="right") - np.searchsorted(sess_ord, today, side="right")
    )
