"""The Parquet store: its layout, and the read API every engine uses.

``data.ingest`` writes the store; this module owns its shape (see ``data.ingest`` for the full layout) and
reads it. Reads touch only the partitions a request needs and push column projection and row filters down
to Parquet, so a year of one ticker's minute bars is a dozen small files read in one pass.

    store = Store("store/")                      # or Store("s3://bucket/prefix")
    store.bars("SPY", dt.date(2024, 1, 2), dt.date(2024, 12, 31), timeframe="5min")
    store.option_chain("SPY", dt.datetime(2024, 3, 7, 10, 30), dte_max=7, right="C")

Time conventions: every returned ``ts`` is ``Datetime("ns", "America/New_York")``; naive datetimes passed
in are read as New York time. ``date`` bounds select whole sessions (the flat-file date, inclusive at both
ends); ``datetime`` bounds select bars by timestamp (inclusive).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from data.calendar import futures_regular_hours
from data.flatfiles import AssetClass, Timeframe, parse_future_ticker, parse_occ_ticker

__all__ = [
    "MANIFEST_NAME",
    "NY",
    "STORE_FORMAT",
    "SYNTHETIC_INFO_NAME",
    "SYNTHETIC_KEY",
    "DataNotFound",
    "Store",
    "data_origin_label",
    "partition_dir",
    "partition_relpath",
    "read_manifest",
    "resolve_root",
]

NY = "America/New_York"
_NY = ZoneInfo(NY)
MANIFEST_NAME = "_manifest.json"
#: Beside generated flat files (``data.synth``): seed, window and planted edge; ingest copies it into the
#: manifest under :data:`SYNTHETIC_KEY`.
SYNTHETIC_INFO_NAME = "_synthetic.json"
SYNTHETIC_KEY = "synthetic"
#: Bumped when the stored columns or layout change; part of ``manifest_hash`` so caches keyed on it expire.
STORE_FORMAT = 1

#: Hive-style partition key name per asset class.
PARTITION_KEY: dict[AssetClass, str] = {
    AssetClass.STOCKS: "ticker",
    AssetClass.FOREX: "pair",
    AssetClass.FUTURES: "root",
    AssetClass.OPTIONS: "underlying",
}

BAR_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume", "transactions")
OPTION_COLUMNS: tuple[str, ...] = ("ticker", "expiry", "right", "strike")

TIMEFRAMES: dict[str, int | None] = {
    "1min": 60 * 10**9,
    "5min": 5 * 60 * 10**9,
    "15min": 15 * 60 * 10**9,
    "1h": 3600 * 10**9,
    "1d": None,
}
SESSIONS = ("regular", "extended")


class DataNotFound(LookupError):
    """The store has no data for a ticker and range; the message says what to ingest."""


# ----------------------------------------------------------------------------- layout


def resolve_root(root: str | Path) -> tuple[pafs.FileSystem, str]:
    """A store or flat-file root (local path or URL such as ``s3://bucket/prefix``) -> filesystem and path."""
    text = str(root)
    if "://" in text:
        fs, path = pafs.FileSystem.from_uri(text)
    else:
        fs, path = pafs.LocalFileSystem(), Path(text).expanduser().resolve().as_posix()
    return fs, path.rstrip("/") or "/"


def _period(asset: AssetClass, timeframe: Timeframe, date: dt.date) -> str:
    if asset is AssetClass.OPTIONS and timeframe is Timeframe.MINUTE:
        return f"{date:%Y-%m-%d}"
    if timeframe is Timeframe.DAY:
        return f"{date:%Y}"
    return f"{date:%Y-%m}"


def partition_dir(asset: AssetClass, timeframe: Timeframe, key: str) -> str:
    # Percent-encoding keeps odd tickers (a "/" in a symbol) from escaping their folder.
    return f"{asset.value}/{timeframe.value}/{PARTITION_KEY[asset]}={quote(key, safe='')}"


def partition_relpath(asset: AssetClass, timeframe: Timeframe, key: str, date: dt.date) -> str:
    """The partition file (relative to the store root) holding ``key``'s rows of the flat file dated ``date``."""
    return f"{partition_dir(asset, timeframe, key)}/{_period(asset, timeframe, date)}.parquet"


def _periods(asset: AssetClass, timeframe: Timeframe, first: dt.date, last: dt.date) -> list[str]:
    if asset is AssetClass.OPTIONS and timeframe is Timeframe.MINUTE:
        return [f"{first + dt.timedelta(days=i):%Y-%m-%d}" for i in range((last - first).days + 1)]
    if timeframe is Timeframe.DAY:
        return [str(y) for y in range(first.year, last.year + 1)]
    out = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def read_json_file(fs: pafs.FileSystem, path: str, *, name: str, mend: str) -> Any:
    """The JSON value in ``path`` on ``fs``, or None when there is no such file. A malformed file raises a
    ValueError that starts with ``name`` (how messages name the file), says where the JSON breaks, and ends
    with ``mend`` (how to mend it)."""
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        text = f.read().decode("utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {mend}") from exc


def read_manifest(fs: pafs.FileSystem, base: str) -> dict:
    """The store manifest (``{"format": 1, "files": {relpath: entry}}``); empty if none was written yet."""
    path = f"{base}/{MANIFEST_NAME}"
    manifest = read_json_file(
        fs,
        path,
        name=f"{path} (the store manifest)",
        mend="delete it and re-run `search data ingest` to rebuild it (stored data is re-ingested, not lost)",
    )
    if manifest is None:
        return {"format": STORE_FORMAT, "files": {}}
    manifest.setdefault("files", {})
    return manifest


def data_origin_label(synthetic: object) -> str:
    """One line on where a store's data came from, for report headers and provenance blocks.

    ``synthetic`` is :meth:`Store.synthetic` (or the ``data_synthetic`` field of a study's provenance):
    ``"synthetic data, planted edge zrce:0.5"``, ``"synthetic data, null market (no planted edge)"``, or
    for None ``"flat files (no synthetic marker: real data)"``.
    """
    if not isinstance(synthetic, dict):
        return "flat files (no synthetic marker: real data)"
    plant = synthetic.get("plant")
    if isinstance(plant, dict) and plant.get("name"):
        return f"synthetic data, planted edge {plant.get('label') or plant['name']}"
    return "synthetic data, null market (no planted edge)"


# ----------------------------------------------------------------------------- helpers


@dataclass(frozen=True, slots=True)
class _Series:
    """What a ticker names in the store."""

    asset: AssetClass
    key: str  # partition key value
    contract: str | None = None  # futures: one contract instead of the continuous front month

    @property
    def label(self) -> str:
        kind = {AssetClass.STOCKS: "stock", AssetClass.FOREX: "forex pair", AssetClass.FUTURES: "futures root"}
        if self.contract:
            return f"futures contract {self.contract}"
        return f"{kind.get(self.asset, self.asset.value)} {self.key}"


def _as_utc_ns(value: dt.datetime) -> int:
    aware = value.replace(tzinfo=_NY) if value.tzinfo is None else value
    return int(aware.timestamp()) * 10**9 + aware.microsecond * 1000


def _ny_date(value: dt.datetime) -> dt.date:
    return value.astimezone(_NY).date() if value.tzinfo is not None else value.date()


def _bounds(start: dt.date | dt.datetime, end: dt.date | dt.datetime) -> tuple[dt.date, dt.date]:
    """The flat-file dates that can hold bars between ``start`` and ``end``."""
    # A file's date and the New York date of its bars differ by at most a day (forex files are UTC days).
    first = _ny_date(start) - dt.timedelta(days=1) if isinstance(start, dt.datetime) else start
    last = _ny_date(end) + dt.timedelta(days=1) if isinstance(end, dt.datetime) else end
    if first > last:
        raise ValueError(f"start {start} is after end {end}")
    return first, last


def _utc_ts(value: dt.datetime) -> pl.Expr:
    return pl.lit(_as_utc_ns(value), pl.Int64).cast(pl.Datetime("ns", "UTC"))


def _range_filter(start: dt.date | dt.datetime, end: dt.date | dt.datetime) -> pl.Expr:
    low = pl.col("ts") >= _utc_ts(start) if isinstance(start, dt.datetime) else pl.col("date") >= pl.lit(start)
    high = pl.col("ts") <= _utc_ts(end) if isinstance(end, dt.datetime) else pl.col("date") <= pl.lit(end)
    return low & high


def _ny_midnight_ns(dates: Sequence[dt.date]) -> list[int]:
    return [_as_utc_ns(dt.datetime(d.year, d.month, d.day, tzinfo=_NY)) for d in dates]


def _to_ny(frame: pl.DataFrame, column: str = "ts") -> pl.DataFrame:
    return frame.with_columns(pl.col(column).dt.convert_time_zone(NY))


def _ohlcv_agg() -> list[pl.Expr]:
    return [
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
        pl.col("volume").sum(),
        pl.col("transactions").sum(),
    ]


def _front_month(frame: pl.DataFrame) -> pl.DataFrame:
    """Per session, the contract that traded the most volume (ties: the earlier-sorting ticker)."""
    return (
        frame.group_by("date", "contract")
        .agg(pl.col("volume").sum().alias("_session_volume"))
        .sort(["date", "_session_volume", "contract"], descending=[False, True, False])
        .unique("date", keep="first", maintain_order=True)
        .select("date", "contract")
    )


# ----------------------------------------------------------------------------- the store


class Store:
    """Read access to a Parquet store written by ``data.ingest.ingest``.

    Safe to share between threads; cheap to create (nothing is read until asked). A store being
    re-ingested while it is read shows each partition either before or after its update, never half.
    """

    def __init__(self, root: str | Path, *, filesystem: pafs.FileSystem | None = None) -> None:
        """``root``: a folder or URL (``s3://bucket/prefix``, credentials from the environment), or a path
        inside ``filesystem`` when one is given (for example an ``S3FileSystem`` with explicit options)."""
        self.root = str(root)
        if filesystem is None:
            self._fs, self._base = resolve_root(root)
        else:
            self._fs, self._base = filesystem, self.root.rstrip("/")
        self._kinds: dict[str, _Series] = {}

    def __repr__(self) -> str:
        return f"Store({self.root!r})"

    # ------------------------------------------------------------------ low level

    def _path(self, rel: str) -> str:
        return f"{self._base}/{rel}"

    def _is_dir(self, rel: str) -> bool:
        return self._fs.get_file_info(self._path(rel)).type == pafs.FileType.Directory

    def _existing(self, rels: Sequence[str]) -> list[str]:
        infos = self._fs.get_file_info([self._path(r) for r in rels])
        return [info.path for info in infos if info.type == pafs.FileType.File]

    def _read(self, paths: Sequence[str], columns: Sequence[str], where: pl.Expr | None) -> pl.DataFrame:
        # One scan over exactly the partitions needed: row groups are pruned by their statistics, only the
        # projected columns are decoded, files in parallel. Polars' own reader is ~2x faster than a
        # pyarrow dataset on local files; other filesystems go through pyarrow's (same pushdown).
        local = self._fs.type_name == "local"
        if local:
            frame = pl.scan_parquet(list(paths), hive_partitioning=False)
        else:
            frame = pl.scan_pyarrow_dataset(pads.dataset(list(paths), filesystem=self._fs, format="parquet"))
        if where is not None:
            frame = frame.filter(where)
        frame = frame.select(columns)
        order = [c for c in ("ticker", "date", "ts", "contract") if c in columns]
        if not local and order:
            # Polars keeps file and row order; a threaded pyarrow scan need not, so restore the stored order.
            frame = frame.sort(order, maintain_order=True)
        return frame.collect()

    def _not_found(self, what: str, start: object, end: object, tickers: str, extra: str = "") -> DataNotFound:
        return DataNotFound(
            f"no data for {what} from {start} to {end} in the store at {self.root}{extra}. "
            f"Ingest it with: search data ingest --src <flat-file root> --dst {self.root} "
            f"--tickers {tickers} --from {_day(start)} --to {_day(end)}"
        )

    def _available(self, asset: AssetClass, timeframe: Timeframe, key: str) -> str:
        """ ' (the store has SPY minute bars for 2024-01 .. 2024-06)' or '' ."""
        selector = pafs.FileSelector(self._path(partition_dir(asset, timeframe, key)), allow_not_found=True)
        names = sorted(
            info.base_name.removesuffix(".parquet")
            for info in self._fs.get_file_info(selector)
            if info.base_name.endswith(".parquet")
        )
        if not names:
            return ""
        return f" (the store has {key} {timeframe.value} data for {names[0]} .. {names[-1]})"

    def _series(self, ticker: str) -> _Series:
        cached = self._kinds.get(ticker)
        if cached is not None:
            return cached
        found = self._resolve(ticker)
        self._kinds[ticker] = found
        return found

    def _resolve(self, ticker: str) -> _Series:
        def has(asset: AssetClass, key: str) -> bool:
            return any(self._is_dir(partition_dir(asset, tf, key)) for tf in Timeframe)

        if ticker.startswith("C:"):
            return _Series(AssetClass.FOREX, ticker[2:])
        if ticker.startswith("O:"):
            raise ValueError(f"{ticker!r} is an option contract: use Store.contract_bars or Store.option_chain")
        if has(AssetClass.STOCKS, ticker):
            return _Series(AssetClass.STOCKS, ticker)
        if has(AssetClass.FOREX, ticker.replace("/", "")):
            return _Series(AssetClass.FOREX, ticker.replace("/", ""))
        if has(AssetClass.FUTURES, ticker):
            return _Series(AssetClass.FUTURES, ticker)
        try:
            root, _, _ = parse_future_ticker(ticker)
        except ValueError:
            root = None
        if root is not None and has(AssetClass.FUTURES, root):
            return _Series(AssetClass.FUTURES, root, contract=ticker)
        raise DataNotFound(
            f"{ticker!r} is not in the store at {self.root}: no stock, forex pair (C:{ticker}), futures root "
            f"or futures contract of that name was ingested. Ingest it with: search data ingest "
            f"--src <flat-file root> --dst {self.root} --tickers {ticker}"
        )

    def _load(
        self,
        series: _Series,
        timeframe: Timeframe,
        start: dt.date | dt.datetime,
        end: dt.date | dt.datetime,
        columns: Sequence[str],
        where: pl.Expr | None = None,
    ) -> pl.DataFrame | None:
        """Rows of one series in the window, ``ts`` still UTC; ``None`` if no partition exists."""
        first, last = _bounds(start, end)
        rels = [
            f"{partition_dir(series.asset, timeframe, series.key)}/{p}.parquet"
            for p in _periods(series.asset, timeframe, first, last)
        ]
        paths = self._existing(rels)
        if not paths:
            return None
        condition = _range_filter(start, end)
        if series.contract is not None:
            condition &= pl.col("contract") == series.contract
        if where is not None:
            condition &= where
        return self._read(paths, columns, condition)

    # ------------------------------------------------------------------ bars

    def bars(
        self,
        ticker: str,
        start: dt.date | dt.datetime,
        end: dt.date | dt.datetime,
        timeframe: str = "1min",
        session: str = "regular",
    ) -> pl.DataFrame:
        """OHLCV bars of a stock/ETF, forex pair or futures root/contract, sorted by ``ts``.

        ``timeframe``: "1min", "5min", "15min", "1h" or "1d". Resampled bars are labelled by the start of
        their window and never span sessions: stocks' regular-session windows are anchored at 09:30
        (so 1h bars are 09:30, 10:30, ...), pre- and post-market windows on the clock; forex and futures on
        the clock. "1d" bars are one per session (flat-file date), labelled 00:00 New York of that date;
        for stocks they are Polygon's day bars where those were ingested, else the session's minute bars.
        ``session``: "regular" or "extended" (all bars). Regular hours (``data.calendar``): stocks 09:30 to
        the close (13:00 on half days); futures the root's day session (equity index 09:30-16:00 New York,
        whose resampled windows then count from 09:30 like stocks'; metals 08:20-13:30), with "1d" bars
        built from those minutes; forex trades around the clock, so both mean every bar.
        A futures root (``MES``) is the continuous front month: for each session, the bars of the contract
        with the highest volume that session.
        """
        if timeframe not in TIMEFRAMES:
            raise ValueError(f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
        if session not in SESSIONS:
            raise ValueError(f"session {session!r} is not one of {', '.join(SESSIONS)}")
        series = self._series(ticker)
        regular_only = series.asset in (AssetClass.STOCKS, AssetClass.FUTURES) and session == "regular"
        every = TIMEFRAMES[timeframe]
        if every is None:
            frame = self._daily(series, start, end, regular_only)
        else:
            frame = self._minutes(series, start, end, regular_only, keep_session_columns=every != TIMEFRAMES["1min"])
            if frame is not None and every != TIMEFRAMES["1min"]:
                frame = _resample(
                    frame,
                    every,
                    stocks=series.asset is AssetClass.STOCKS,
                    regular_only=regular_only,
                    regular_open=futures_regular_hours(series.key)[0]
                    if series.asset is AssetClass.FUTURES and regular_only
                    else None,
                )
        if frame is None or frame.is_empty():
            extra = self._available(series.asset, Timeframe.MINUTE, series.key)
            raise self._not_found(f"{series.label} ({timeframe}, {session} session)", start, end,
                                  series.contract or ticker, extra)
        return _to_ny(frame.select(BAR_COLUMNS))

    def _minutes(
        self,
        series: _Series,
        start: dt.date | dt.datetime,
        end: dt.date | dt.datetime,
        regular_only: bool,
        keep_session_columns: bool,
        where: pl.Expr | None = None,
    ) -> pl.DataFrame | None:
        columns = list(BAR_COLUMNS)
        if regular_only:
            regular = pl.col("regular") if series.asset is AssetClass.STOCKS else _futures_regular(series.key)
            where = regular if where is None else where & regular
        if keep_session_columns or series.asset is AssetClass.FUTURES:
            columns.append("date")
        if keep_session_columns and series.asset is AssetClass.STOCKS and not regular_only:
            columns.append("regular")
        if series.asset is AssetClass.FUTURES and series.contract is None:
            columns.append("contract")
        frame = self._load(series, Timeframe.MINUTE, start, end, columns, where)
        if frame is None:
            return None
        if series.asset is AssetClass.FUTURES and series.contract is None:
            frame = frame.join(_front_month(frame), on=["date", "contract"], how="semi", maintain_order="left")
        return frame

    def _daily(
        self, series: _Series, start: dt.date | dt.datetime, end: dt.date | dt.datetime, regular_only: bool
    ) -> pl.DataFrame | None:
        first = _ny_date(start) if isinstance(start, dt.datetime) else start
        last = _ny_date(end) if isinstance(end, dt.datetime) else end
        continuous = series.asset is AssetClass.FUTURES and series.contract is None
        columns = [*BAR_COLUMNS, "date", *(["contract"] if continuous else [])]
        parts = []
        # a futures day file spans the whole Globex session: regular-hours days come from the minutes
        use_day_files = not (regular_only and series.asset is AssetClass.FUTURES)
        day = self._load(series, Timeframe.DAY, first, last, columns) if use_day_files else None
        if day is not None and continuous:
            day = day.join(_front_month(day), on=["date", "contract"], how="semi", maintain_order="left")
        if day is not None and not day.is_empty():
            parts.append(day.select("date", *BAR_COLUMNS[1:]))
        # Sessions the day files cover are not re-aggregated from minute bars (and not even decoded).
        covered = None if not parts else ~pl.col("date").is_in(pl.lit(parts[0]["date"].unique().implode()))
        minute = self._minutes(series, first, last, regular_only, keep_session_columns=True, where=covered)
        if minute is not None and not minute.is_empty():
            parts.append(minute.sort("ts").group_by("date", maintain_order=True).agg(_ohlcv_agg()))
        if not parts:
            return None
        frame = pl.concat(parts, how="vertical_relaxed").sort("date")
        labels = pl.Series("ts", _ny_midnight_ns(frame["date"].to_list()), dtype=pl.Int64)
        return frame.with_columns(labels.cast(pl.Datetime("ns", "UTC")))

    def sessions(self, ticker: str, start: dt.date, end: dt.date) -> list[dt.date]:
        """The flat-file dates in ``[start, end]`` that have data for ``ticker`` (any kind, options included)."""
        if ticker.startswith("O:"):
            contract = parse_occ_ticker(ticker)
            frame = self._option_rows(contract.underlying, start, min(end, contract.expiry),
                                      ["date"], pl.col("ticker") == ticker)
        else:
            try:
                series = self._series(ticker)
            except DataNotFound:
                if not self._is_dir(partition_dir(AssetClass.OPTIONS, Timeframe.MINUTE, ticker)):
                    raise
                frame = self._option_rows(ticker, start, end, ["date"], None)
            else:
                frames = [self._load(series, tf, start, end, ["date"]) for tf in Timeframe]
                frame = pl.concat([f for f in frames if f is not None]) if any(f is not None for f in frames) else None
        if frame is None:
            return []
        return sorted(frame["date"].unique().to_list())

    # ------------------------------------------------------------------ options

    def _option_rows(
        self, underlying: str, first: dt.date, last: dt.date, columns: Sequence[str], where: pl.Expr | None
    ) -> pl.DataFrame | None:
        rels = [
            f"{partition_dir(AssetClass.OPTIONS, Timeframe.MINUTE, underlying)}/{p}.parquet"
            for p in _periods(AssetClass.OPTIONS, Timeframe.MINUTE, first, last)
        ]
        paths = self._existing(rels)
        if not paths:
            return None
        return self._read(paths, columns, where)

    def option_day_bars(self, underlying: str, day: dt.date, *, dte_max: int | None = None) -> pl.DataFrame:
        """Every contract's minute bars on ``day`` (expiring within ``dte_max`` days), sorted by ticker, ts."""
        where = None
        if dte_max is not None:
            where = pl.col("expiry") <= pl.lit(day + dt.timedelta(days=dte_max))
        frame = self._option_rows(underlying, day, day, [*OPTION_COLUMNS, *BAR_COLUMNS], where)
        if frame is None or frame.is_empty():
            raise self._not_found(f"{underlying} options", day, day, underlying,
                                  self._available(AssetClass.OPTIONS, Timeframe.MINUTE, underlying))
        return _to_ny(frame.sort("ticker", "ts", maintain_order=True))

    def option_chain(
        self,
        underlying: str,
        at: dt.datetime,
        *,
        dte_min: int = 0,
        dte_max: int | None = None,
        strike_min: float | None = None,
        strike_max: float | None = None,
        right: str | None = None,
        max_staleness: dt.timedelta = dt.timedelta(minutes=30),
    ) -> pl.DataFrame:
        """Contracts with a bar on ``at``'s date, with their last price as of ``at``.

        Columns: ticker, expiry, dte, strike, right, last (the last close at or before ``at``; null when
        there is none or it is older than ``max_staleness``), last_ts (that bar's time, null when none).
        Sorted by expiry, strike, right.
        """
        at_ny = at.replace(tzinfo=_NY) if at.tzinfo is None else at.astimezone(_NY)
        day = at_ny.date()
        where = pl.col("expiry") >= pl.lit(day + dt.timedelta(days=dte_min))
        if dte_max is not None:
            where &= pl.col("expiry") <= pl.lit(day + dt.timedelta(days=dte_max))
        if strike_min is not None:
            where &= pl.col("strike") >= strike_min
        if strike_max is not None:
            where &= pl.col("strike") <= strike_max
        if right is not None:
            side = right.upper()[:1]
            if side not in ("C", "P"):
                raise ValueError(f"right must be 'C' or 'P' (or 'call'/'put'), got {right!r}")
            where &= pl.col("right") == side
        frame = self._option_rows(underlying, day, day, [*OPTION_COLUMNS, "ts", "close"], where)
        if frame is None:
            raise self._not_found(f"{underlying} options", day, day, underlying,
                                  self._available(AssetClass.OPTIONS, Timeframe.MINUTE, underlying))
        at_ns = _as_utc_ns(at_ny)
        stale_ns = at_ns - int(max_staleness.total_seconds() * 10**9)
        ts_ns = pl.col("ts").cast(pl.Int64)
        seen = ts_ns <= at_ns
        chain = (
            frame.sort("ticker", "ts")
            .group_by("ticker", maintain_order=True)
            .agg(
                pl.col("expiry").first(),
                pl.col("strike").first(),
                pl.col("right").first(),
                pl.col("close").filter(seen).last().alias("last"),
                pl.col("ts").filter(seen).last().alias("last_ts"),
            )
            .with_columns(
                (pl.col("expiry") - pl.lit(day)).dt.total_days().cast(pl.Int32).alias("dte"),
                pl.when(pl.col("last_ts").cast(pl.Int64) >= stale_ns).then(pl.col("last")).alias("last"),
            )
            .select("ticker", "expiry", "dte", "strike", "right", "last", "last_ts")
            .sort("expiry", "strike", "right")
        )
        return _to_ny(chain, "last_ts")

    def contract_bars(self, occ_ticker: str, start: dt.date | dt.datetime, end: dt.date | dt.datetime) -> pl.DataFrame:
        """Minute bars of one option contract (``O:SPY240307C00510000``), sorted by ``ts``."""
        contract = parse_occ_ticker(occ_ticker)
        first, last = _bounds(start, end)
        last = min(last, contract.expiry)
        where = (pl.col("ticker") == occ_ticker) & _range_filter(start, end)
        frame = None
        if first <= last:
            frame = self._option_rows(contract.underlying, first, last, list(BAR_COLUMNS), where)
        if frame is None or frame.is_empty():
            raise self._not_found(f"option contract {occ_ticker}", start, end, contract.underlying,
                                  self._available(AssetClass.OPTIONS, Timeframe.MINUTE, contract.underlying))
        return _to_ny(frame.sort("ts"))

    # ------------------------------------------------------------------ provenance

    def synthetic(self) -> dict | None:
        """What generated this store's data, if ``data.synth`` did: the ``_synthetic.json`` ingest recorded
        (``{"seed", "start", "end", "tickers", "options", "plant": {"name", "strength", "label", "params",
        ...} or None, "label"}``); None for real flat files. :func:`data_origin_label` turns it into text."""
        info = read_manifest(self._fs, self._base).get(SYNTHETIC_KEY)
        return info if isinstance(info, dict) else None

    def manifest_hash(self, start: dt.date, end: dt.date, tickers: Sequence[str] | None = None) -> str:
        """sha256 over the source files (their content hashes) whose data lies in ``[start, end]``.

        With ``tickers``, only files that put rows into those tickers' partitions count (options by
        underlying, futures by root). It changes whenever a file the data came from is re-ingested with
        different content, or a file is added or removed, so it is a sound cache key for results.
        """
        manifest = read_manifest(self._fs, self._base)
        markers = None if tickers is None else _partition_markers(tickers)
        digest = hashlib.sha256(f"store-format={STORE_FORMAT}\n".encode())
        used = 0
        for relpath in sorted(manifest["files"]):
            entry = manifest["files"][relpath]
            day = dt.date.fromisoformat(entry["date"])
            if not start <= day <= end:
                continue
            outputs = sorted(entry.get("outputs", []))
            if markers is not None:
                outputs = [o for o in outputs if any(m in o for m in markers)]
                if not outputs:
                    continue
            used += 1
            digest.update(f"{relpath}\n{entry['sha256']}\n{chr(31).join(outputs)}\n".encode())
        if used == 0:
            what = "any ticker" if tickers is None else ", ".join(tickers)
            raise self._not_found(what, start, end, ",".join(tickers or ["<tickers>"]))
        return digest.hexdigest()


def _partition_markers(tickers: Sequence[str]) -> set[str]:
    """Path fragments (``/ticker=SPY/``) of every partition that can hold the given tickers."""
    markers = set()
    for ticker in tickers:
        keys = {ticker, ticker.removeprefix("C:").replace("/", "")}
        if ticker.startswith("O:"):
            keys = {parse_occ_ticker(ticker).underlying}
        with contextlib.suppress(ValueError):
            keys.add(parse_future_ticker(ticker)[0])
        for key in keys:
            for name in set(PARTITION_KEY.values()):
                markers.add(f"/{name}={quote(key, safe='')}/")
    return markers


def _day(value: object) -> object:
    return value.date() if isinstance(value, dt.datetime) else value


def _futures_regular(root: str) -> pl.Expr:
    """Rows within a futures root's regular hours (New York clock, bar start)."""
    open_minute, close_minute = futures_regular_hours(root)
    local = pl.col("ts").dt.convert_time_zone(NY)
    minute = local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)
    return (minute >= open_minute) & (minute < close_minute)


def _resample(
    frame: pl.DataFrame, every: int, *, stocks: bool, regular_only: bool, regular_open: int | None = None
) -> pl.DataFrame:
    """Left-labelled OHLCV windows of ``every`` ns that never cross a session (or a stocks sub-session).
    ``regular_open``: futures' regular-hours bars count their windows from this New York minute."""
    ts_ns = pl.col("ts").cast(pl.Int64)
    keys = ["date"]
    if regular_open is not None:
        dates = frame["date"].unique().sort()
        opens = pl.DataFrame(
            {
                "date": dates,
                "_anchor": [
                    _as_utc_ns(dt.datetime(d.year, d.month, d.day, regular_open // 60, regular_open % 60, tzinfo=_NY))
                    for d in dates
                ],
            },
            schema={"date": pl.Date, "_anchor": pl.Int64},
        )
        frame = frame.join(opens, on="date", how="left", maintain_order="left")
        anchor = pl.col("_anchor")
    elif stocks:
        # NYSE always opens at 09:30 New York; regular windows count from there. Pre- and post-market
        # windows are clock-aligned (the close is on the hour, so post-market windows start at it).
        dates = frame["date"].unique().sort()
        opens = pl.DataFrame(
            {
                "date": dates,
                "_anchor": [_as_utc_ns(dt.datetime(d.year, d.month, d.day, 9, 30, tzinfo=_NY)) for d in dates],
            },
            schema={"date": pl.Date, "_anchor": pl.Int64},
        )
        frame = frame.join(opens, on="date", how="left", maintain_order="left")
        if regular_only:
            anchor = pl.col("_anchor")
        else:
            anchor = pl.when(pl.col("regular")).then(pl.col("_anchor")).otherwise(pl.lit(0, pl.Int64))
            keys.append("regular")
    else:
        anchor = pl.lit(0, pl.Int64)
    label = anchor + ((ts_ns - anchor) // every) * every
    return (
        frame.with_columns(label.alias("_label"))
        .group_by([*keys, "_label"], maintain_order=True)
        .agg(_ohlcv_agg())
        .sort("_label")
        .with_columns(pl.col("_label").cast(pl.Datetime("ns", "UTC")).alias("ts"))
    )
