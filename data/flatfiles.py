"""The Polygon.io flat-file layout: folders, file names, the CSV schema and ticker formats.

Everything that knows how Polygon names and shapes its files lives here, so the synthetic
generator and the ingester agree by construction and real downloads need no conversion.

Layout (relative to a flat-file root, exactly as Polygon's S3 bucket):

    us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz
    us_stocks_sip/day_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz
    us_options_opra/minute_aggs_v1/...   tickers like O:SPY240307C00510000
    us_options_opra/day_aggs_v1/...
    global_forex/minute_aggs_v1/...      tickers like C:EURUSD
    global_forex/day_aggs_v1/...
    us_futures_cme/minute_aggs_v1/...    tickers like MESH24 (root, month code, 2-digit year)

Polygon does not publish futures in this bucket layout; ``us_futures_cme`` is this project's
choice, with the same columns, so futures data goes through the same ingest path.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from spec_space.instruments import FUTURES

#: Column order of every Polygon aggregate flat file.
COLUMNS: tuple[str, ...] = (
    "ticker",
    "volume",
    "open",
    "close",
    "high",
    "low",
    "window_start",
    "transactions",
)
#: The header line exactly as Polygon writes it.
HEADER = ",".join(COLUMNS)


class AssetClass(StrEnum):
    """The flat-file dataset of an instrument type (:data:`spec_space.instruments.InstrumentType`); the
    values name the store's partitions, so they stay as written."""

    STOCKS = "stocks"
    OPTIONS = "options"
    FOREX = "forex"
    FUTURES = "futures"


class Timeframe(StrEnum):
    MINUTE = "minute"
    DAY = "day"


#: Top-level folder of each asset class in the flat-file bucket.
DATASET_FOLDER: dict[AssetClass, str] = {
    AssetClass.STOCKS: "us_stocks_sip",
    AssetClass.OPTIONS: "us_options_opra",
    AssetClass.FOREX: "global_forex",
    AssetClass.FUTURES: "us_futures_cme",
}
TIMEFRAME_FOLDER: dict[Timeframe, str] = {
    Timeframe.MINUTE: "minute_aggs_v1",
    Timeframe.DAY: "day_aggs_v1",
}

_FLAT_FILE_RE = re.compile(
    r"(?P<dataset>[a-z_]+)/(?P<tf>minute_aggs_v1|day_aggs_v1)/(?P<y>\d{4})/(?P<m>\d{2})/"
    r"(?P<date>\d{4}-\d{2}-\d{2})\.csv\.gz$"
)


@dataclass(frozen=True, slots=True)
class FlatFile:
    """One daily flat file, identified by its place in the layout."""

    asset_class: AssetClass
    timeframe: Timeframe
    date: dt.date

    @property
    def relpath(self) -> str:
        return flat_file_relpath(self.asset_class, self.timeframe, self.date)


def flat_file_relpath(asset_class: AssetClass, timeframe: Timeframe, date: dt.date) -> str:
    return (
        f"{DATASET_FOLDER[asset_class]}/{TIMEFRAME_FOLDER[timeframe]}/"
        f"{date:%Y}/{date:%m}/{date:%Y-%m-%d}.csv.gz"
    )


def parse_flat_file_path(path: str) -> FlatFile | None:
    """Recognise a flat file from its path (any prefix); ``None`` if it is not one."""
    match = _FLAT_FILE_RE.search(path.replace("\\", "/"))
    if match is None:
        return None
    by_folder = {folder: asset for asset, folder in DATASET_FOLDER.items()}
    asset = by_folder.get(match["dataset"])
    if asset is None:
        return None
    timeframe = Timeframe.MINUTE if match["tf"] == "minute_aggs_v1" else Timeframe.DAY
    return FlatFile(asset, timeframe, dt.date.fromisoformat(match["date"]))


# ----------------------------------------------------------------------------- options (OCC)

_OCC_RE = re.compile(r"^O:(?P<root>[A-Z0-9.]{1,6})(?P<date>\d{6})(?P<right>[CP])(?P<strike>\d{8})$")


@dataclass(frozen=True, slots=True)
class OptionContract:
    underlying: str
    expiry: dt.date
    right: str  # "C" or "P"
    strike: float

    @property
    def ticker(self) -> str:
        return occ_ticker(self.underlying, self.expiry, self.right, self.strike)


def occ_symbol(underlying: str, expiry: dt.date, right: str, strike: float) -> str:
    """The OCC option symbol brokers use: root + YYMMDD + C/P + strike x 1000 in 8 digits
    (``SPY240307C00510000``). ``right``: anything starting with C or P (``"C"``, ``"call"``, Lumibot's ``"CALL"``)."""
    letter = str(right).upper()[:1]
    if letter not in ("C", "P"):
        raise ValueError(f"option right must be 'C' or 'P', got {right!r}")
    milli = round(strike * 1000)
    if not 0 < milli < 100_000_000:
        raise ValueError(f"strike {strike} does not fit the OCC 8-digit field")
    return f"{underlying}{expiry:%y%m%d}{letter}{milli:08d}"


def occ_ticker(underlying: str, expiry: dt.date, right: str, strike: float) -> str:
    """Polygon's OCC option ticker: ``O:`` + :func:`occ_symbol`."""
    return f"O:{occ_symbol(underlying, expiry, right, strike)}"


def parse_occ_ticker(ticker: str) -> OptionContract:
    match = _OCC_RE.match(ticker)
    if match is None:
        raise ValueError(
            f"{ticker!r} is not an OCC option ticker; expected like 'O:SPY240307C00510000' "
            "(O:, root, YYMMDD, C or P, strike x 1000 in 8 digits)"
        )
    date = dt.datetime.strptime(match["date"], "%y%m%d").date()
    return OptionContract(match["root"], date, match["right"], int(match["strike"]) / 1000)


# ----------------------------------------------------------------------------- forex

def forex_ticker(pair: str) -> str:
    """``EURUSD`` or ``EUR/USD`` -> ``C:EURUSD``."""
    pair = pair.replace("/", "").upper()
    return pair if pair.startswith("C:") else f"C:{pair}"


# ----------------------------------------------------------------------------- futures

#: CME month codes.
MONTH_CODES = "FGHJKMNQUVXZ"
_FUTURE_RE = re.compile(r"^(?P<root>[A-Z0-9]{1,4}?)(?P<code>[FGHJKMNQUVXZ])(?P<year>\d{2})$")


def future_ticker(root: str, year: int, month: int) -> str:
    """``future_ticker("MES", 2024, 3)`` -> ``MESH24``."""
    return f"{root}{MONTH_CODES[month - 1]}{year % 100:02d}"


def parse_future_ticker(ticker: str) -> tuple[str, int, int]:
    """``MESH24`` -> ``("MES", 2024, 3)``."""
    match = _FUTURE_RE.match(ticker)
    if match is None:
        raise ValueError(
            f"{ticker!r} is not a futures contract ticker; expected root + month code + 2-digit year, like 'MESH24'"
        )
    return match["root"], 2000 + int(match["year"]), MONTH_CODES.index(match["code"]) + 1


#: Minimum price increment of each futures root (index points or $/oz), from the one contract table.
TICK_SIZES: dict[str, float] = {root: contract.tick_size for root, contract in FUTURES.items()}
_QUARTERLY = (3, 6, 9, 12)
#: Listed contract months traded as the front month: quarterly for equity indices, even months for gold.
CONTRACT_MONTHS: dict[str, tuple[int, ...]] = {
    "MES": _QUARTERLY, "ES": _QUARTERLY,
    "MNQ": _QUARTERLY, "NQ": _QUARTERLY,
    "M2K": _QUARTERLY, "RTY": _QUARTERLY,
    "MYM": _QUARTERLY, "YM": _QUARTERLY,
    "MGC": (2, 4, 6, 8, 10, 12), "GC": (2, 4, 6, 8, 10, 12),
}
