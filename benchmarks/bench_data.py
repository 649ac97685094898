"""Ingest throughput and read latency of the Parquet store against reading the flat files directly.

    python -m benchmarks.bench_data [--year 2024] [--ticker SPY] [--runs 7] [--workers N] [--keep DIR]

Generates one year of synthetic minute (and day) flat files for one ticker with ``data.synth`` (options
off) in a temporary folder, ingests them, then loads the year of 1-minute bars from the store (median
of ``--runs``) and the same bars from the csv.gz files with polars, and prints both side by side.
Target: one year of one ticker's minute bars loads in under 100 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.flatfiles import AssetClass, Timeframe, flat_file_relpath
from data.ingest import ingest
from data.store import NY, Store
from data.synth import generate


def _median_ms(run: Callable[[], pl.DataFrame], runs: int) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        rows = run().height
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), rows


def _from_csv(files: list[Path], ticker: str, regular: bool) -> pl.DataFrame:
    """The direct route: read every day's csv.gz with polars and keep the ticker's bars."""
    frames = [
        pl.read_csv(f, schema_overrides={"volume": pl.Float64, "window_start": pl.Int64}).filter(
            pl.col("ticker") == ticker
        )
        for f in files
    ]
    bars = (
        pl.concat(frames)
        .select(
            pl.col("window_start").cast(pl.Datetime("ns", "UTC")).dt.convert_time_zone(NY).alias("ts"),
            "open", "high", "low", "close", "volume", "transactions",
        )
        .sort("ts")
    )
    if regular:  # a plain 09:30-16:00 window: the csv route has no calendar (half days are wrong here)
        clock = pl.col("ts").dt.time()
        bars = bars.filter((clock >= dt.time(9, 30)) & (clock < dt.time(16, 0)))
    return bars


def _wide_day(src: Path, day: dt.date, n_tickers: int, bars: int) -> int:
    """A full-market-sized stocks minute file: ``n_tickers`` x ``bars`` rows in Polygon's format."""
    rng = np.random.default_rng(1)
    n = n_tickers * bars
    first = int(dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=dt.UTC).timestamp()) * 10**9
    close = np.round(50 + rng.random(n) * 100, 2)
    frame = pl.DataFrame({
        "ticker": np.repeat([f"T{i:04d}" for i in range(n_tickers)], bars),
        "volume": np.round(rng.random(n) * 1000, 3),  # fractional, as in recent files
        "open": close, "close": close, "high": close + 0.05, "low": close - 0.05,
        "window_start": first + np.tile(np.arange(bars, dtype=np.int64) * 60 * 10**9, n_tickers),
        "transactions": rng.integers(1, 50, n),
    })
    path = src / flat_file_relpath(AssetClass.STOCKS, Timeframe.MINUTE, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(frame.write_csv().encode(), compresslevel=1))
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--ticker", default="SPY")
    parser.add_argument("--runs", type=int, default=7, help="store reads per measurement (median)")
    parser.add_argument("--csv-runs", type=int, default=3, help="csv reads per measurement (median)")
    parser.add_argument("--workers", type=int, default=None, help="ingest workers (default: cores)")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--wide-tickers", type=int, default=1000,
                        help="tickers in the full-market-sized day file (0: skip that measurement)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-data-") as scratch:
        work = args.keep or Path(scratch)
        src, dst = work / "flatfiles", work / "store"
        start, end = dt.date(args.year, 1, 1), dt.date(args.year, 12, 31)

        began = time.perf_counter()
        generate(src, tickers=[args.ticker], start=start, end=end, seed=7, options=False)
        synth_s = time.perf_counter() - began

        report = ingest(src, dst, workers=args.workers)
        if report.failed:
            raise SystemExit(report.summary())

        store = Store(dst)
        minute_files = sorted((src / flat_file_relpath(AssetClass.STOCKS, Timeframe.MINUTE, start)).parents[2].rglob(
            "*.csv.gz"))
        rows = {}
        results = []
        for session in ("regular", "extended"):
            store_ms, rows[session] = _median_ms(lambda s=session: store.bars(args.ticker, start, end, session=s),
                                                 args.runs)
            csv_ms, csv_rows = _median_ms(lambda s=session: _from_csv(minute_files, args.ticker, s == "regular"),
                                          args.csv_runs)
            results.append((f"1min {session}", store_ms, csv_ms, rows[session], csv_rows))
        for timeframe in ("5min", "1h", "1d"):
            store_ms, n = _median_ms(lambda tf=timeframe: store.bars(args.ticker, start, end, timeframe=tf), args.runs)
            results.append((f"{timeframe} regular", store_ms, None, n, None))

        wide = []
        if args.wide_tickers:
            wide_rows = _wide_day(work / "wide", start, args.wide_tickers, 960)
            for label, tickers in (("filtered to 1 ticker", ["T0000"]), ("all tickers", None)):
                run = ingest(work / "wide", work / f"wide-store-{len(wide)}", tickers=tickers, workers=1)
                wide.append((label, wide_rows, run.elapsed, run.partitions_written))

    print(f"\n{args.ticker} {args.year}: {len(minute_files)} minute files, synthetic data in {synth_s:.1f} s")
    print(f"ingest: {report.rows_read:,} rows from {report.files_found} files in {report.elapsed:.2f} s "
          f"= {report.rows_read / report.elapsed:,.0f} rows/s ({report.partitions_written} partitions)")
    for label, n, seconds, partitions in wide:
        print(f"ingest one {n:,}-row day file, {label}: {seconds:.2f} s = {n / seconds:,.0f} rows/s "
              f"({partitions} partitions, 1 worker)")
    print(f"\n{'load one year':<18}{'store [ms]':>12}{'csv.gz [ms]':>14}{'ratio':>9}{'rows':>10}")
    for name, store_ms, csv_ms, n, csv_rows in results:
        csv_text = f"{csv_ms:14.1f}" if csv_ms is not None else f"{'-':>14}"
        ratio = f"{csv_ms / store_ms:8.0f}x" if csv_ms is not None else f"{'-':>9}"
        mismatch = "" if csv_rows in (None, n) else f"  (csv route: {csv_rows:,} rows)"
        print(f"{name:<18}{store_ms:12.1f}{csv_text}{ratio}{n:10,}{mismatch}")
    verdict = "meets" if results[1][1] < 100 else "MISSES"
    print(f"\n1-minute extended year load {results[1][1]:.1f} ms: {verdict} the 100 ms target")


if __name__ == "__main__":
    main()
