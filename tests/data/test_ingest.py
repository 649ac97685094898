"""data.ingest: good files land, re-runs are incremental, bad files fail alone with a precise error."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import data.ingest as ingest_module
from data.flatfiles import HEADER, AssetClass, Timeframe, flat_file_relpath
from data.ingest import FileError, ingest
from data.store import Store

NY = ZoneInfo("America/New_York")
D1, D2 = dt.date(2024, 3, 7), dt.date(2024, 3, 8)
STOCKS, OPTIONS, FOREX, FUTURES = AssetClass.STOCKS, AssetClass.OPTIONS, AssetClass.FOREX, AssetClass.FUTURES
MINUTE, DAY = Timeframe.MINUTE, Timeframe.DAY


def ns(day: dt.date, hour: int, minute: int) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY).timestamp()) * 10**9


def csv_text(rows: list[tuple], header: str = HEADER) -> str:
    return header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def write_flat(root: Path, asset: AssetClass, day: dt.date, rows: list[tuple], *, timeframe: Timeframe = MINUTE,
               header: str = HEADER, raw: bytes | None = None) -> Path:
    path = root / flat_file_relpath(asset, timeframe, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw if raw is not None else gzip.compress(csv_text(rows, header).encode()))
    return path


def stock_rows(day: dt.date, tickers: tuple[str, ...] = ("SPY", "QQQ"), base: float = 100.0) -> list[tuple]:
    rows = []
    for i, (hour, minute) in enumerate([(8, 0), (9, 30), (9, 31), (15, 59), (16, 5)]):
        for j, ticker in enumerate(tickers):
            price = base + 10 * j + i
            rows.append((ticker, 100 + i, price, price + 0.5, price + 1, price - 1, ns(day, hour, minute), 10 + i))
    return rows


def mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def read_partition(dst: Path, rel: str) -> pl.DataFrame:
    return pl.from_arrow(pq.read_table(dst / rel))


SPY_MARCH = "stocks/minute/ticker=SPY/2024-03.parquet"


# ----------------------------------------------------------------------------- good files, incremental runs


def test_good_files_land_with_the_store_schema(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_flat(src, STOCKS, D1, stock_rows(D1))
    write_flat(src, STOCKS, D2, stock_rows(D2))
    (src / "README.txt").write_text("not a flat file")

    report = ingest(src, dst, workers=1)

    assert report.failed == []
    assert sorted(report.ingested) == sorted(flat_file_relpath(STOCKS, MINUTE, d) for d in (D1, D2))
    assert report.rows_read == report.rows_written == 20
    spy = read_partition(dst, SPY_MARCH)
    assert spy.columns == ["ts", "open", "high", "low", "close", "volume", "transactions", "date", "regular"]
    assert spy.schema["ts"] == pl.Datetime("ns", "UTC")
    assert spy["ts"].is_sorted()
    assert spy.height == 10
    # 08:00 and 16:05 are outside 09:30 <= t < 16:00.
    assert spy["regular"].to_list() == [False, True, True, True, False] * 2
    assert spy["date"].unique().sort().to_list() == [D1, D2]
    metadata = pq.ParquetFile(dst / SPY_MARCH).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    assert metadata.row_group(0).column(0).statistics.has_min_max
    manifest = json.loads((dst / "_manifest.json").read_text())
    entry = manifest["files"][flat_file_relpath(STOCKS, MINUTE, D1)]
    assert entry["rows"] == 10 and entry["tickers"] is None and len(entry["sha256"]) == 64
    assert entry["outputs"] == ["stocks/minute/ticker=QQQ/2024-03.parquet", SPY_MARCH]


def test_second_run_with_unchanged_files_writes_nothing(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_flat(src, STOCKS, D1, stock_rows(D1))
    write_flat(src, STOCKS, D2, stock_rows(D2))
    ingest(src, dst, workers=1)
    before = mtimes(dst)

    report = ingest(src, dst, workers=1)

    assert report.ingested == [] and report.failed == []
    assert len(report.skipped) == 2
    assert mtimes(dst) == before
    assert "2 unchanged" in report.summary()


def test_changed_file_is_reingested_and_its_rows_replaced(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    first = write_flat(src, STOCKS, D1, stock_rows(D1))
    write_flat(src, STOCKS, D2, stock_rows(D2))
    ingest(src, dst, workers=1)

    # The new version of D1 has other prices and no QQQ at all.
    write_flat(src, STOCKS, D1, stock_rows(D1, tickers=("SPY",), base=500.0))
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
    report = ingest(src, dst, workers=1)

    assert report.ingested == [flat_file_relpath(STOCKS, MINUTE, D1)]
    assert report.skipped == [flat_file_relpath(STOCKS, MINUTE, D2)]
    spy = read_partition(dst, SPY_MARCH)
    assert spy.filter(pl.col("date") == D1)["open"].to_list() == [500.0, 501.0, 502.0, 503.0, 504.0]
    assert spy.filter(pl.col("date") == D2)["open"].to_list() == [100.0, 101.0, 102.0, 103.0, 104.0]
    qqq = read_partition(dst, "stocks/minute/ticker=QQQ/2024-03.parquet")
    assert qqq["date"].unique().to_list() == [D2]


def test_touched_but_identical_file_is_hashed_and_skipped(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    path = write_flat(src, STOCKS, D1, stock_rows(D1))
    ingest(src, dst, workers=1)
    partition_mtime = (dst / SPY_MARCH).stat().st_mtime_ns
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5 * 10**9))

    report = ingest(src, dst, workers=1)

    assert report.ingested == [] and report.skipped == [flat_file_relpath(STOCKS, MINUTE, D1)]
    assert (dst / SPY_MARCH).stat().st_mtime_ns == partition_mtime
    manifest = json.loads((dst / "_manifest.json").read_text())
    assert manifest["files"][flat_file_relpath(STOCKS, MINUTE, D1)]["mtime_ns"] == path.stat().st_mtime_ns


def test_asking_for_more_tickers_reingests_with_the_union(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_flat(src, STOCKS, D1, stock_rows(D1, tickers=("SPY", "QQQ", "AMD")))
    ingest(src, dst, tickers=["SPY"], workers=1)
    assert not (dst / "stocks/minute/ticker=QQQ").exists()

    report = ingest(src, dst, tickers=["QQQ"], workers=1)

    assert report.ingested == [flat_file_relpath(STOCKS, MINUTE, D1)]
    assert read_partition(dst, SPY_MARCH).height == 5
    assert read_partition(dst, "stocks/minute/ticker=QQQ/2024-03.parquet").height == 5
    assert not (dst / "stocks/minute/ticker=AMD").exists()
    manifest = json.loads((dst / "_manifest.json").read_text())
    assert manifest["files"][flat_file_relpath(STOCKS, MINUTE, D1)]["tickers"] == ["QQQ", "SPY"]
    assert ingest(src, dst, tickers=["SPY"], workers=1).ingested == []  # covered by the recorded filter
    assert ingest(src, dst, workers=1).ingested == [flat_file_relpath(STOCKS, MINUTE, D1)]  # all > {QQQ, SPY}
    assert (dst / "stocks/minute/ticker=AMD/2024-03.parquet").exists()


def test_date_window_limits_the_files(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_flat(src, STOCKS, D1, stock_rows(D1))
    write_flat(src, STOCKS, D2, stock_rows(D2))
    report = ingest(src, dst, date_from=D2, date_to=D2, workers=1)
    assert report.ingested == [flat_file_relpath(STOCKS, MINUTE, D2)]
    assert read_partition(dst, SPY_MARCH)["date"].unique().to_list() == [D2]


def test_no_flat_files_found_says_what_layout_was_expected(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    report = ingest(tmp_path / "src", tmp_path / "dst", workers=1)
    assert report.files_found == 0 and report.failed == []
    assert "us_stocks_sip/minute_aggs_v1" in report.summary()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ingest(tmp_path / "missing", tmp_path / "dst", workers=1)


# ----------------------------------------------------------------------------- bad files fail alone


def _edit(rows: list[tuple], line: int, column: str, value: str) -> bytes:
    """The CSV of ``rows`` with one field (line numbers count the header as 1) replaced."""
    lines = csv_text(rows).splitlines()
    fields = lines[line - 1].split(",")
    fields[HEADER.split(",").index(column)] = value
    lines[line - 1] = ",".join(fields)
    return gzip.compress(("\n".join(lines) + "\n").encode())


def _bad_file_cases() -> dict[str, tuple[object, dict]]:
    good = gzip.compress(csv_text(stock_rows(D2)).encode())
    rows = stock_rows(D2)
    short = csv_text(rows).splitlines()
    short[8] = "SPY,1,2,3"  # line 9 has 4 fields
    return {
        "corrupt gzip": (good[:40] + bytes(b ^ 0xFF for b in good[40:60]) + good[60:], {"row": None}),
        "truncated gzip": (good[: len(good) // 2], {"row": None}),
        "not gzip": (csv_text(rows).encode(), {"row": None}),
        "wrong header": (
            gzip.compress(csv_text(rows, header="ticker,volume,open,close,high,low,timestamp,transactions").encode()),
            {"row": 1, "problem": ["missing column(s) window_start", "unexpected column(s) timestamp"]},
        ),
        "non-numeric field": (_edit(rows, 4, "close", "abc"),
                              {"row": 4, "column": "close", "problem": ["'abc'"], "expected": "float64"}),
        "empty field": (_edit(rows, 7, "open", ""), {"row": 7, "column": "open", "expected": "float64"}),
        "non-integer transactions": (_edit(rows, 10, "transactions", "3.5"),
                                     {"row": 10, "column": "transactions", "expected": "int64"}),
        "short line": (gzip.compress(("\n".join(short) + "\n").encode()), {"row": 9, "expected": "8 comma"}),
        "bad window_start": (_edit(rows, 5, "window_start", "1.7e18"),
                             {"row": 5, "column": "window_start", "expected": "int64"}),
    }


@pytest.mark.parametrize("case", list(_bad_file_cases()))
def test_bad_file_fails_alone_with_a_precise_error(tmp_path: Path, case: str) -> None:
    raw, want = _bad_file_cases()[case]
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_flat(src, STOCKS, D1, stock_rows(D1))
    bad = write_flat(src, STOCKS, D2, [], raw=raw)  # type: ignore[arg-type]

    report = ingest(src, dst, workers=1)

    assert report.ingested == [flat_file_relpath(STOCKS, MINUTE, D1)]
    assert len(report.failed) == 1
    error = report.failed[0]
    assert isinstance(error, FileError)
    assert error.file == str(bad)
    assert error.row == want["row"]
    assert error.column == want.get("column")
    for fragment in want.get("problem", []):
        assert fragment in error.problem
    if "expected" in want:
        assert want["expected"] in (error.expected or "")
    assert "search data ingest" in error.hint
    assert str(bad) in report.summary() and "FAILED" in report.summary()
    # The good file landed; the bad one left no trace and is retried next time.
    assert read_partition(dst, SPY_MARCH)["date"].unique().to_list() == [D1]
    manifest = json.loads((dst / "_manifest.json").read_text())
    assert flat_file_relpath(STOCKS, MINUTE, D2) not in manifest["files"]
    assert ingest(src, dst, workers=1).failed[0].file == str(bad)


def test_a_failed_reingest_keeps_the_previously_stored_rows(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    path = write_flat(src, STOCKS, D1, stock_rows(D1))
    ingest(src, dst, workers=1)
    write_flat(src, STOCKS, D1, [], raw=gzip.compress(csv_text(stock_rows(D1)).encode())[:30])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    report = ingest(src, dst, workers=1)

    assert len(report.failed) == 1 and "gzip" in report.failed[0].problem
    assert read_partition(dst, SPY_MARCH).height == 5


def test_cli_exits_1_when_a_file_failed(tmp_path: Path) -> None:
    from search.data_cli import data

    src, dst = tmp_path / "src", tmp_path / "dst"
    write_flat(src, STOCKS, D1, stock_rows(D1))
    write_flat(src, STOCKS, D2, [], raw=b"garbage")
    result = CliRunner().invoke(data, ["ingest", "--src", str(src), "--dst", str(dst), "--workers", "1"])
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output and "2024-03-08.csv.gz" in result.output
    (src / flat_file_relpath(STOCKS, MINUTE, D2)).unlink()
    result = CliRunner().invoke(data, ["ingest", "--src", str(src), "--dst", str(dst), "--workers", "1"])
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------------------- atomic writes


def test_a_crash_while_writing_leaves_the_previous_partition_intact(tmp_path: Path, monkeypatch) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_flat(src, STOCKS, D1, stock_rows(D1, tickers=("SPY",)))
    ingest(src, dst, workers=1)
    before = (dst / SPY_MARCH).read_bytes()
    manifest_before = (dst / "_manifest.json").read_bytes()
    write_flat(src, STOCKS, D2, stock_rows(D2, tickers=("SPY",)))
    real_write = pq.write_table

    def dying_write(table, where, **kwargs) -> None:
        real_write(table.slice(0, 2), where, **kwargs)  # a partial file exists at this point...
        raise RuntimeError("power cut")  # ...when the process dies

    monkeypatch.setattr(ingest_module.pq, "write_table", dying_write)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest(src, dst, workers=1)

    assert (dst / SPY_MARCH).read_bytes() == before
    assert sorted(p.name for p in (dst / SPY_MARCH).parent.iterdir()) == ["2024-03.parquet"]
    assert (dst / "_manifest.json").read_bytes() == manifest_before
    monkeypatch.setattr(ingest_module.pq, "write_table", real_write)
    report = ingest(src, dst, workers=1)
    assert report.ingested == [flat_file_relpath(STOCKS, MINUTE, D2)]
    assert read_partition(dst, SPY_MARCH).height == 10


def test_a_write_error_is_reported_and_the_store_kept(tmp_path: Path, monkeypatch) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_flat(src, STOCKS, D1, stock_rows(D1, tickers=("SPY",)))
    ingest(src, dst, workers=1)
    before = (dst / SPY_MARCH).read_bytes()
    write_flat(src, STOCKS, D2, stock_rows(D2, tickers=("SPY",)))

    def full_disk(table, where, **kwargs) -> None:
        Path(where).write_bytes(b"PAR1 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ingest_module.pq, "write_table", full_disk)
    report = ingest(src, dst, workers=1)

    assert report.ingested == [] and len(report.failed) == 1
    assert "No space left" in report.failed[0].problem
    assert (dst / SPY_MARCH).read_bytes() == before
    assert [p.name for p in (dst / SPY_MARCH).parent.iterdir()] == ["2024-03.parquet"]


# ----------------------------------------------------------------------------- filters and asset classes


def test_stock_ticker_filter_and_fractional_volume(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    rows = [("SPY", 12.75, 1, 2, 3, 0.5, ns(D1, 10, 0), 3), ("SPYG", 1, 1, 2, 3, 0.5, ns(D1, 10, 0), 3),
            ("QQQ", 0.125, 1, 2, 3, 0.5, ns(D1, 10, 0), "")]
    write_flat(src, STOCKS, D1, rows)

    report = ingest(src, dst, tickers=["SPY", "QQQ"], workers=1)

    assert report.rows_read == 3 and report.rows_written == 2
    assert sorted(p.name for p in (dst / "stocks/minute").iterdir()) == ["ticker=QQQ", "ticker=SPY"]
    assert read_partition(dst, SPY_MARCH)["volume"].to_list() == [12.75]
    qqq = read_partition(dst, "stocks/minute/ticker=QQQ/2024-03.parquet")
    assert qqq["volume"].to_list() == [0.125]
    assert qqq["transactions"].to_list() == [None]  # an empty transactions field is allowed


def test_option_filter_keeps_whole_underlyings_and_parses_contracts(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    rows = [
        ("O:SPY240308C00510000", 5, 1.5, 1.6, 1.7, 1.4, ns(D1, 9, 31), 2),
        ("O:SPY240308P00505500", 5, 1.5, 1.6, 1.7, 1.4, ns(D1, 9, 30), 2),
        ("O:SPYG240308C00050000", 5, 1, 1, 1, 1, ns(D1, 9, 30), 1),  # another root that starts with SPY
        ("O:QQQ240308C00400000", 5, 1, 1, 1, 1, ns(D1, 9, 30), 1),
    ]
    write_flat(src, OPTIONS, D1, rows)

    report = ingest(src, dst, tickers=["SPY"], workers=1)

    assert report.failed == [] and report.rows_written == 2
    assert [p.name for p in (dst / "options/minute").iterdir()] == ["underlying=SPY"]
    frame = read_partition(dst, "options/minute/underlying=SPY/2024-03-07.parquet")
    assert frame.select("ticker", "expiry", "right", "strike").rows() == [
        ("O:SPY240308C00510000", dt.date(2024, 3, 8), "C", 510.0),
        ("O:SPY240308P00505500", dt.date(2024, 3, 8), "P", 505.5),
    ]


@pytest.mark.parametrize("bad", ["SPY", "O:SPY241332C00510000"])
def test_invalid_option_ticker_names_the_row(tmp_path: Path, bad: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    rows = [("O:SPY240308C00510000", 5, 1, 1, 1, 1, ns(D1, 9, 31), 2), (bad, 5, 1, 1, 1, 1, ns(D1, 9, 31), 2)]
    write_flat(src, OPTIONS, D1, rows)
    (error,) = ingest(src, dst, workers=1).failed
    assert (error.row, error.column) == (3, "ticker") and "OCC" in (error.expected or "")
    assert bad in error.problem


def test_futures_filter_by_root_and_forex_by_pair(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_flat(src, FUTURES, D1, [("MESH24", 10, 1, 2, 3, 0.5, ns(D1, 9, 31), 1),
                                  ("MESM24", 1, 1, 2, 3, 0.5, ns(D1, 9, 30), 1),
                                  ("ESH24", 99, 1, 2, 3, 0.5, ns(D1, 9, 30), 1)])
    write_flat(src, FOREX, D1, [("C:EURUSD", 0, 1.08, 1.09, 1.1, 1.07, ns(D1, 1, 0), 40),
                                ("C:USDJPY", 0, 150, 151, 152, 149, ns(D1, 1, 0), 40)])

    report = ingest(src, dst, tickers=["MES", "EURUSD"], workers=1)

    assert report.failed == [] and report.rows_written == 3
    futures = read_partition(dst, "futures/minute/root=MES/2024-03.parquet")
    assert futures.select("contract", "ts").rows() == [
        ("MESM24", dt.datetime(2024, 3, 7, 14, 30, tzinfo=dt.UTC)),
        ("MESH24", dt.datetime(2024, 3, 7, 14, 31, tzinfo=dt.UTC)),
    ]
    assert not (dst / "futures/minute/root=ES").exists()
    assert [p.name for p in (dst / "forex/minute").iterdir()] == ["pair=EURUSD"]


def test_day_files_go_to_yearly_partitions(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_flat(src, STOCKS, D1, [("SPY", 1e6, 510, 512, 515, 505, ns(D1, 0, 0), 9000)], timeframe=DAY)
    write_flat(src, STOCKS, D2, [("SPY", 2e6, 512, 511, 516, 509, ns(D2, 0, 0), 9500)], timeframe=DAY)
    assert ingest(src, dst, workers=1).failed == []
    frame = read_partition(dst, "stocks/day/ticker=SPY/2024.parquet")
    assert frame["close"].to_list() == [512.0, 511.0]
    assert "regular" not in frame.columns


def test_parallel_workers_give_the_same_store(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for day in (D1, D2):
        write_flat(src, STOCKS, day, stock_rows(day))
        write_flat(src, OPTIONS, day, [("O:SPY240315C00510000", 5, 1, 1, 1, 1, ns(day, 9, 31), 2)])
    write_flat(src, STOCKS, dt.date(2024, 4, 1), [], raw=b"broken")

    serial = ingest(src, tmp_path / "one", workers=1)
    parallel = ingest(src, tmp_path / "two", workers=2)

    assert sorted(parallel.ingested) == sorted(serial.ingested) and len(parallel.ingested) == 4
    assert [e.file for e in parallel.failed] == [e.file for e in serial.failed]
    for rel in (SPY_MARCH, "options/minute/underlying=SPY/2024-03-08.parquet"):
        assert read_partition(tmp_path / "two", rel).equals(read_partition(tmp_path / "one", rel))


def test_synthetic_flat_files_ingest_and_read_back(tmp_path: Path) -> None:
    synth = pytest.importorskip("data.synth")
    src, dst = tmp_path / "src", tmp_path / "dst"
    synth.generate(src, tickers=["SPY", "C:EURUSD", "MES"], start=D1, end=D2, seed=3)
    report = ingest(src, dst, tickers=["SPY", "C:EURUSD", "MES"], workers=1)
    assert report.failed == [], report.summary()
    assert report.rows_written > 0
    store = Store(dst)
    spy = store.bars("SPY", D1, D2)
    assert spy.height > 0 and spy["ts"].is_sorted()
    assert spy["ts"].dt.time().min() >= dt.time(9, 30) and spy["ts"].dt.time().max() < dt.time(16, 0)
    assert store.bars("C:EURUSD", D1, D2, timeframe="1h").height > 0
    assert store.bars("MES", D1, D2, timeframe="1d").height >= 1
    assert ingest(src, dst, tickers=["SPY"], workers=1).ingested == []
