"""Writing the flat files: :func:`generate`, the writer, the day tables and ``_synthetic.json``."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from data.flatfiles import (
    COLUMNS,
    AssetClass,
    Timeframe,
    flat_file_relpath,
)
from data.plants import Plant, parse_plant
from data.store import SYNTHETIC_INFO_NAME, data_origin_label
from data.synth._base import DEFAULT_END, DEFAULT_START, DEFAULT_TICKERS, GZIP_LEVEL, ticker_kind
from data.synth._grid import _build_grid, _date_of, _Grid, _ny_midnight_ns
from data.synth._model import _forex_minutes, _futures_minutes, _Minutes, _Model, _stock_minutes
from data.synth._options import _option_day, _Underlying


@dataclass
class SynthReport:
    """What :func:`generate` wrote."""

    root: Path
    start: dt.date
    end: dt.date
    tickers: tuple[str, ...]
    files: int = 0
    bytes_written: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # minute bars per asset class
    day_rows: dict[str, int] = field(default_factory=dict)  # day bars per asset class
    elapsed: float = 0.0
    plant: Plant | None = None

    def summary(self) -> str:
        lines = [
            f"Synthetic Polygon flat files in {self.root}",
            f"  {self.start} .. {self.end}, tickers {', '.join(self.tickers)}",
            f"  planted edge: {self.plant.label}" if self.plant is not None else "  no planted edge (null market)",
            f"  {self.files} files, {self.bytes_written / 1e6:.1f} MB, {self.elapsed:.1f} s",
        ]
        for asset in AssetClass:
            if asset.value in self.rows:
                lines.append(
                    f"  {asset.value:<8} {self.rows[asset.value]:>10,} minute bars"
                    f"  {self.day_rows.get(asset.value, 0):>8,} day bars"
                )
        return "\n".join(lines)


# ============================================================================= instrument tables


class _Writer:
    """Gzip CSV files written atomically on worker threads (polars and zlib release the GIL)."""

    def __init__(self, root: Path, workers: int = 2) -> None:
        self.root = root
        self.files = 0
        self.bytes = 0
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._pending: list[Future[int]] = []

    def write(self, relpath: str, frame: pl.DataFrame) -> None:
        self._pending.append(self._pool.submit(self._store, self.root / relpath, frame))
        while len(self._pending) > 8:  # bound the memory held by queued files
            self._collect(self._pending.pop(0))

    @staticmethod
    def _store(path: Path, frame: pl.DataFrame) -> int:
        buffer = io.BytesIO()
        frame.select(COLUMNS).write_csv(buffer)
        data = gzip.compress(buffer.getvalue(), compresslevel=GZIP_LEVEL, mtime=0)  # mtime=0: same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return len(data)

    def _collect(self, future: Future[int]) -> None:
        self.bytes += future.result()
        self.files += 1

    def close(self) -> None:
        for future in self._pending:
            self._collect(future)
        self._pending.clear()
        self._pool.shutdown()


def _minute_table(parts: list[_Minutes], g: _Grid) -> pl.DataFrame | None:
    if not parts:
        return None
    return pl.concat([p.frame(g) for p in parts]).sort(["_day", "ticker", "window_start"])


def _day_table(minutes: pl.DataFrame) -> pl.DataFrame:
    # Day bars take open/high/low/close from the regular session (extended-hours prints do not set
    # the consolidated OHLC) and volume/transactions from every trade of the day.
    reg = pl.col("_reg")
    daily = (
        minutes.group_by(["_day", "ticker"], maintain_order=True)
        .agg(
            volume=pl.col("volume").sum(),
            open=pl.col("open").filter(reg).first(),
            close=pl.col("close").filter(reg).last(),
            high=pl.col("high").filter(reg).max(),
            low=pl.col("low").filter(reg).min(),
            transactions=pl.col("transactions").sum(),
        )
        .drop_nulls("open")
    )
    days = daily["_day"].unique().to_list()
    midnight = {d: _ny_midnight_ns(_date_of(d)) for d in days}
    return daily.with_columns(
        window_start=pl.col("_day").replace_strict(midnight, return_dtype=pl.Int64)
    )


def _by_day(frame: pl.DataFrame | None) -> dict[int, pl.DataFrame]:
    if frame is None:
        return {}
    return {key[0]: part for key, part in frame.partition_by("_day", as_dict=True, maintain_order=True).items()}


# ============================================================================= planted edges
#
# A planted edge is a known, documented regularity written into an otherwise random market, so that a
# search can be scored on whether it finds it (power) and on how often it promotes something in a
# market with none (false promotions). Each plant draws from its own random stream, never from the
# streams of the null market, so a planted market and the null market of the same seed share every
# other draw: the difference between them is the plant and nothing else. Strength 0 plants nothing
# at all (byte-identical files to ``--plant none``).


#: Bumped when the fields of ``_synthetic.json`` (:data:`data.store.SYNTHETIC_INFO_NAME`) change meaning.
SYNTHETIC_INFO_FORMAT = 1


def synthetic_info(
    *, seed: int, start: dt.date, end: dt.date, tickers: Sequence[str], options: bool, plant: Plant | None
) -> dict[str, object]:
    """What :func:`generate` writes to ``<root>/_synthetic.json`` (and ingest copies into the manifest)."""
    info: dict[str, object] = {
        "format": SYNTHETIC_INFO_FORMAT,
        "generator": "data.synth",
        "seed": seed,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "tickers": list(tickers),
        "options": options,
        "plant": plant.to_json() if plant is not None else None,
    }
    info["label"] = data_origin_label(info)
    return info


# ============================================================================= entry point


def _normalise_tickers(tickers: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(tickers, str):  # "SPY,QQQ" rather than a list: not three one-letter tickers
        tickers = tickers.split(",")
    out: list[str] = []
    for raw in tickers:
        ticker = raw.strip().upper()
        if ticker and ticker not in out:
            ticker_kind(ticker)  # raises on a malformed ticker
            out.append(ticker)
    if not out:
        raise ValueError("no tickers given; pass e.g. SPY,QQQ,C:EURUSD,MES")
    return tuple(out)


def generate(
    root: str | Path,
    *,
    tickers: Sequence[str] = DEFAULT_TICKERS,
    start: dt.date = DEFAULT_START,
    end: dt.date = DEFAULT_END,
    seed: int = 7,
    options: bool = True,
    plant: Plant | str | None = None,
    progress: bool = False,
) -> SynthReport:
    """Write synthetic Polygon flat files for ``tickers`` between ``start`` and ``end`` under ``root``.

    Stocks/ETFs get minute and day files per NYSE session (with options unless ``options=False``),
    ``C:`` pairs per UTC day with trading, futures roots per trade date. Same arguments, same bytes.
    ``plant`` (a :class:`Plant`, or text for :func:`parse_plant` such as ``"zrce:0.5"``; None = a null
    market) plants a known edge; what was planted, with the seed and window, goes to
    ``<root>/_synthetic.json`` (see :func:`synthetic_info`).
    """
    if isinstance(plant, str):
        plant = parse_plant(plant, flag="plant")
    began = time.perf_counter()
    if isinstance(start, dt.datetime):
        start = start.date()
    if isinstance(end, dt.datetime):
        end = end.date()
    if start > end:
        raise ValueError(f"start {start} is after end {end}; give start <= end")
    names = _normalise_tickers(tickers)
    root = Path(root)
    report = SynthReport(root=root, start=start, end=end, tickers=names, plant=plant)

    grid = _build_grid(start, end)
    model = _Model(grid, seed, start, end, plant)
    kinds = {t: ticker_kind(t) for t in names}
    stocks = sorted(t for t in names if kinds[t] is AssetClass.STOCKS)
    stock_parts = {t: _stock_minutes(model, t) for t in stocks}
    tables: dict[AssetClass, pl.DataFrame | None] = {
        AssetClass.STOCKS: _minute_table(list(stock_parts.values()), grid),
        AssetClass.FOREX: _minute_table([_forex_minutes(model, t) for t in names if kinds[t] is AssetClass.FOREX], grid),
        AssetClass.FUTURES: _minute_table(
            [m for t in names if kinds[t] is AssetClass.FUTURES for m in _futures_minutes(model, t)], grid
        ),
    }
    minute_parts: dict[AssetClass, dict[int, pl.DataFrame]] = {}
    day_parts: dict[AssetClass, dict[int, pl.DataFrame]] = {}
    for asset, table in tables.items():
        if table is None:
            continue
        minute_parts[asset] = _by_day(table)
        day_parts[asset] = _by_day(_day_table(table))
        report.rows[asset.value] = table.height
        report.day_rows[asset.value] = sum(p.height for p in day_parts[asset].values())
    underlyings = {t: _Underlying.from_minutes(stock_parts[t], grid.n) for t in stocks} if options else {}
    if underlyings:
        report.rows[AssetClass.OPTIONS.value] = 0
        report.day_rows[AssetClass.OPTIONS.value] = 0
    option_days = set(minute_parts.get(AssetClass.STOCKS, {})) if underlyings else set()

    all_days = sorted(set().union(*(parts.keys() for parts in minute_parts.values()), option_days))
    writer = _Writer(root)
    try:
        for day_number in _progress(all_days, progress):
            day = _date_of(day_number)
            for asset in (AssetClass.STOCKS, AssetClass.FOREX, AssetClass.FUTURES):
                if day_number in minute_parts.get(asset, {}):
                    writer.write(flat_file_relpath(asset, Timeframe.MINUTE, day), minute_parts[asset][day_number])
                    writer.write(flat_file_relpath(asset, Timeframe.DAY, day), day_parts[asset][day_number])
            if day_number in option_days:
                pieces = [_option_day(model, t, underlyings[t], day) for t in stocks]
                minute = pl.concat([m for m, _ in pieces])
                daily = pl.concat([d for _, d in pieces])
                writer.write(flat_file_relpath(AssetClass.OPTIONS, Timeframe.MINUTE, day), minute)
                writer.write(flat_file_relpath(AssetClass.OPTIONS, Timeframe.DAY, day), daily)
                report.rows[AssetClass.OPTIONS.value] += minute.height
                report.day_rows[AssetClass.OPTIONS.value] += daily.height
    finally:
        writer.close()
    info = synthetic_info(seed=seed, start=start, end=end, tickers=names, options=options, plant=plant)
    info_path = root / SYNTHETIC_INFO_NAME
    root.mkdir(parents=True, exist_ok=True)
    info_path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    report.files = writer.files
    report.bytes_written = writer.bytes
    report.elapsed = time.perf_counter() - began
    return report


def _progress(days: list[int], show: bool) -> Iterable[int]:
    if not show:
        return days
    from tqdm import tqdm

    return tqdm(days, desc="synth", unit="day")
