"""Planting known edges into the latent path before bars and options are made (see :mod:`data.plants` for their definitions)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from data.plants import Plant
from data.synth._base import _ar1, _Latent, _rng

if TYPE_CHECKING:  # annotations only: the module that defines it imports this one
    from data.synth._model import _Model


def _clock_minutes(text: object) -> int:
    t = dt.time.fromisoformat(str(text))
    return t.hour * 60 + t.minute


def _plant_zrce(
    model: _Model,
    plant: Plant,
    lat: _Latent,
    idx: np.ndarray,
    volume: np.ndarray,
    transactions: np.ndarray,
    price: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    """Plant the zrce edge into ``lat.logp``, ``volume`` and ``transactions`` in place (see :data:`PLANTS`).

    Days are walked in order because a day's bars (hence its zone and break) sit on the path as earlier
    days' drifts left it; each break only moves the path after its own bar, so re-pricing one day at a
    time finds exactly the bars the written files will hold.
    """
    g = model.grid
    p = plant.params
    zone_end, last_entry = _clock_minutes(p["zone_end"]), _clock_minutes(p["last_entry"])
    buffer, period = float(p["buffer"]), int(p["volume_period"])
    horizon = int(p["horizon"])
    # Front-loaded: breakouts that work move at once (a stop a few ticks away survives), then fade.
    # Weights w_k ~ exp(-k / decay) scaled so that sum(w_k sd_k) is drift_sd sds of the horizon's
    # noise when the minute sds are equal: sum(w_k) = drift_sd * sqrt(horizon).
    shape = np.exp(-np.arange(horizon) / float(p["decay"]))
    weights = plant.strength * float(p["drift_sd"]) * math.sqrt(horizon) * shape / shape.sum()
    rng = _rng(model.seed, "plant", plant.name, str(p["ticker"]))
    # The engines see regular-session bars only, and volume_ratio averages over that bar sequence.
    reg_rows = np.flatnonzero(g.reg[idx])
    days = g.ny_day[idx[reg_rows]]
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:], len(reg_rows)]
    minute = g.ny_min[idx]
    for first, last in zip(starts, ends, strict=True):
        rows = reg_rows[first:last]
        _, hi, lo, cl = price(rows)
        zone = minute[rows] < zone_end
        if not zone.any():
            continue
        top, bottom = hi[zone].max(), lo[zone].min()
        live = (minute[rows] >= zone_end) & (minute[rows] < last_entry)
        # zone_breakout's two detectors (evaluator/signals.py), one per direction: walking the closes beyond
        # the zone edge + buffer, a bar fires when its volume ratio meets volume_ratio, or, after a break
        # that missed it (a failed break), relaxed_ratio (the second chance). The first break of each
        # direction may get a planted surge; the day's earliest firing bar is the one planted.
        firing: list[tuple[int, float]] = []
        for beyond, direction in ((live & (cl > top + buffer), 1.0), (live & (cl < bottom - buffer), -1.0)):
            failed = False
            for k in np.flatnonzero(beyond):
                at = first + int(k)  # position in reg_rows
                if at < period:
                    continue  # no volume history to compare with
                row = rows[k]
                mean = float(volume[reg_rows[at - period : at]].mean())
                if not failed:
                    draw = rng.random()  # one draw per first break, used or not, so later days do not shift
                    if volume[row] < float(p["volume_ratio"]) * mean and draw < float(p["confirm_share"]):
                        surged = math.ceil(float(p["volume_surge"]) * mean)
                        transactions[row] = max(1, round(transactions[row] * surged / max(volume[row], 1)))
                        volume[row] = surged
                needed = float(p["relaxed_ratio"]) if failed else float(p["volume_ratio"])
                if volume[row] >= needed * mean:
                    firing.append((int(k), direction))
                    break
                failed = True
        if firing:
            k, direction = min(firing)
            _drift(lat, int(idx[rows[k]]), direction, weights, g.n)


def _drift(lat: _Latent, b: int, direction: float, weights: np.ndarray, n: int) -> None:
    """Move the latent path after bar ``b`` (whose close is ``logp[b + 1]``): minute ``b + 1 + k`` gets
    ``direction * weights[k]`` of its own sd, and everything later keeps the shift."""
    end = min(b + 1 + len(weights), n)
    if end <= b + 1:
        return  # the break is the grid's last minute: nothing after it to move
    drift = np.cumsum(direction * weights[: end - b - 1] * lat.sd[b + 1 : end])
    lat.logp[b + 2 : end + 1] += drift
    lat.logp[end + 1 :] += drift[-1]


def _forex_trend_drift(seed: int, plant: Plant, sd: np.ndarray) -> np.ndarray:
    """The forex_trend plant's extra minute log returns ``sd_t * g_t`` (see :data:`PLANTS`)."""
    tau = float(plant.params["timescale"])
    g_sd = plant.strength * math.sqrt(float(plant.params["variance_share"]) / (2.0 * tau))
    g = _ar1(_rng(seed, "plant", plant.name, str(plant.params["ticker"])), len(sd), math.exp(-1.0 / tau), g_sd)
    return sd * g
