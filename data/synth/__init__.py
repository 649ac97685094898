"""Realistic sample data in the exact Polygon.io flat-file layout.

``generate(root)`` writes stocks/ETFs, their options (OCC tickers), forex pairs and CME futures as
gzip CSV day files under ``root`` exactly as Polygon lays them out (see :mod:`data.flatfiles`), so the
ingester and every reader treat sample data and real downloads the same way.

The model, in one paragraph: every instrument has a latent log-price on one global UTC minute clock.
Its minute volatility is a daily log-volatility AR(1) state (with a leverage effect) times an
intraday log-volatility AR(1) (clustering within the day) times a deterministic intraday profile
(U-shaped in the regular session, quiet overnight, a bump at 08:30 New York), with Student-t
innovations and occasional jumps. Equities load on one market factor (SPY beta 1, AMD ~2); forex
pairs load on a common USD factor. The latent path keeps moving while an exchange is shut, so
opening gaps come out of the model, and futures (which trade overnight) are the ETF latent path
times a ratio plus carry. Bars exist only where a Poisson number of trades is positive; the minute's
high and low are drawn from the Brownian bridge between the latent open and close. Options are
Black-Scholes prices of the underlying's written bars under a smile whose ATM level follows the
underlying's current volatility state, traded at the bid or the ask.

Planted edges (``generate(plant="zrce:0.5")``, definitions in :mod:`data.plants`): ``zrce`` makes SPY
continue for a few minutes after a volume-confirmed break of the 10:30 zone (planted in the latent path
before SPY's bars, its options and MES are written from it, so every instrument stays consistent);
``forex_trend`` adds a slowly varying trend to EURUSD's returns. ``<root>/_synthetic.json`` records the
seed, window and plant; ``data.ingest`` carries it into the store manifest (``Store.synthetic()``).

Everything is vectorised per instrument with numpy, and every random stream is seeded from
``(seed, stable hash of its name)``, so a ticker's data does not depend on which other tickers are
generated with it and the same seed always writes byte-identical files.
"""

from __future__ import annotations

from data.plants import PLANT_CHOICES, PLANTS, Plant, PlantDefinition, parse_plant, plant_help
from data.store import SYNTHETIC_INFO_NAME
from data.synth._base import (
    DEFAULT_END,
    DEFAULT_START,
    DEFAULT_TICKERS,
    IV_PREMIUM,
    OPTION_HALF_SPREAD_FRACTION,
    OPTION_MIN_HALF_SPREAD,
    OPTION_TICK,
    RISK_FREE_RATE,
    ticker_kind,
)
from data.synth._generate import SynthReport, generate, synthetic_info
from data.synth._options import black_scholes, option_half_spread

__all__ = [
    "DEFAULT_END",
    "DEFAULT_START",
    "DEFAULT_TICKERS",
    "IV_PREMIUM",
    "OPTION_HALF_SPREAD_FRACTION",
    "OPTION_MIN_HALF_SPREAD",
    "OPTION_TICK",
    "PLANTS",
    "PLANT_CHOICES",
    "RISK_FREE_RATE",
    "SYNTHETIC_INFO_NAME",
    "Plant",
    "PlantDefinition",
    "SynthReport",
    "black_scholes",
    "generate",
    "option_half_spread",
    "parse_plant",
    "plant_help",
    "synthetic_info",
    "ticker_kind",
]
