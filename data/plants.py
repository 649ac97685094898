"""Planted edges: known, documented regularities :mod:`data.synth` can write into its random market.

A search run on a planted market can be scored on whether it finds the edge (power); on a null market
(no plant) on how often it promotes noise (false promotions). This module holds the definitions and
parsing only (no numpy), so the CLI can list them cheaply; :mod:`data.synth` plants them
(``_plant_zrce``, ``_forex_trend_drift``).

Each plant draws from its own random stream, never from those of the null market, so a planted market
and the null market of the same seed share every other draw: the difference between them is the plant.
STRENGTH scales the edge; 0 plants nothing at all (byte-identical files to ``--plant none``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PLANTS", "PLANT_CHOICES", "Plant", "PlantDefinition", "parse_plant", "plant_help"]


@dataclass(frozen=True, slots=True)
class PlantDefinition:
    """What a plant does, its fixed parameters, and the strength used when none is given."""

    name: str
    space: str  # the shipped search space built to find it
    summary: str  # one paragraph, shown by ``search data synth --help``
    params: dict[str, float | int | str]
    default_strength: float = 1.0


PLANTS: dict[str, PlantDefinition] = {
    "zrce": PlantDefinition(
        name="zrce",
        space="spec_space/zrce.yaml",
        summary=(
            "SPY continues after a volume-confirmed break of the 10:30 zone. Zone = high/low of the "
            "session's regular 1-minute bars from the open up to zone_end. From zone_end to last_entry the "
            "first close above the top + buffer (dollars) is the up break, the first close below the bottom "
            "- buffer the down break. A break is volume-confirmed when its bar's volume is >= volume_ratio x "
            "the mean of the previous volume_period bars; an unconfirmed first break gets a planted volume "
            "surge (volume_surge x that mean) with probability confirm_share. As zone_breakout's two "
            "detectors (evaluator/signals.py) see it, a later close beyond the edge fires with the full ratio, "
            "or after a failed break with relaxed_ratio (the second chance). The day's earliest firing bar "
            "is planted: the next "
            "horizon minutes of the latent path drift in the break direction, front-loaded: the k-th "
            "minute after the break bar (k = 0 .. horizon-1) moves by STRENGTH x w_k of its own minute "
            "sd, w_k proportional to exp(-k / decay) with sum(w_k) = drift_sd x sqrt(horizon), in total "
            "about STRENGTH x drift_sd sds of the horizon's noise (at strength 1 a confirmed break "
            "continues ~$0.5 on SPY). Other breaks of the day get nothing. Planted in the underlying "
            "before its bars, its options (Black-Scholes on the smile from the planted bars) and futures "
            "tracking it (MES) are made, so all stay consistent."
        ),
        params={
            "ticker": "SPY",
            "zone_end": "10:30",
            "last_entry": "15:30",
            "buffer": 0.10,
            "volume_period": 20,
            "volume_ratio": 1.5,
            "relaxed_ratio": 1.2,
            "volume_surge": 2.0,
            "confirm_share": 0.6,
            "horizon": 15,
            "decay": 5.0,
            "drift_sd": 1.0,
        },
    ),
    "forex_trend": PlantDefinition(
        name="forex_trend",
        space="spec_space/forex_trend.yaml",
        summary=(
            "EURUSD trends: the latent log return of every minute gets an extra sd_t x g_t, where sd_t is "
            "the minute's own volatility and g_t a stationary AR(1) with correlation time timescale "
            "minutes (phi = exp(-1/timescale)) and sd STRENGTH x sqrt(variance_share / (2 x timescale)). "
            "Over horizons much longer than the timescale the trend adds about STRENGTH^2 x "
            "variance_share of the noise variance; over shorter ones it makes returns persist, which an "
            "EMA cross on 15-minute bars (forex_trend.yaml) can follow."
        ),
        params={"ticker": "C:EURUSD", "timescale": 720, "variance_share": 2.0},
    ),
}
PLANT_CHOICES: tuple[str, ...] = ("none", *PLANTS)


@dataclass(frozen=True, slots=True)
class Plant:
    """A planted edge: which one, how strong, and its parameters (from :data:`PLANTS`)."""

    name: str
    strength: float
    params: dict[str, float | int | str]

    @property
    def label(self) -> str:
        return f"{self.name}:{self.strength:g}"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "strength": self.strength,
            "label": self.label,
            "params": dict(self.params),
            "space": PLANTS[self.name].space,
            "definition": PLANTS[self.name].summary,
        }


def parse_plant(text: str | None, *, flag: str = "--plant") -> Plant | None:
    """``"zrce"``, ``"zrce:0.5"`` or ``"none"`` -> a :class:`Plant` (None for no plant).

    Raises ``ValueError`` naming ``flag``, what was expected and the choices.
    """
    choices = ", ".join(PLANT_CHOICES)
    if text is None or text.strip().lower() in ("", "none"):
        return None
    name, sep, raw = text.strip().partition(":")
    name = name.strip().lower()
    if name not in PLANTS:
        raise ValueError(f"{flag} {text!r}: unknown plant {name!r}; expected NAME[:STRENGTH] with NAME one of {choices}")
    if not sep:
        strength = PLANTS[name].default_strength
    else:
        try:
            strength = float(raw)
        except ValueError:
            raise ValueError(
                f"{flag} {text!r}: STRENGTH {raw!r} is not a number; expected NAME[:STRENGTH] with STRENGTH a "
                f"number >= 0 (0 = nothing planted), e.g. {name}:0.5; plants: {choices}"
            ) from None
        if not (math.isfinite(strength) and strength >= 0):
            raise ValueError(
                f"{flag} {text!r}: STRENGTH must be a finite number >= 0 (0 = nothing planted), got {raw!r}"
            )
    return Plant(name, strength, dict(PLANTS[name].params))


def plant_help() -> str:
    """The plants' definitions as text for ``search data synth --help``."""
    parts = []
    for d in PLANTS.values():
        params = ", ".join(f"{k}={v}" for k, v in d.params.items())
        parts.append(f"{d.name} (for {d.space}, default strength {d.default_strength:g}): {d.summary} Parameters: {params}.")
    return "\n\n".join(parts)
