"""data.store.Store on a tiny hand-written store: sessions, resampling, option chains, futures, errors."""

from __future__ import annotations

import datetime as dt
import gzip
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from data.flatfiles import HEADER, AssetClass, Timeframe, flat_file_relpath
from data.ingest import ingest
from data.store import DataNotFound, Store

NY = ZoneInfo("America/New_York")
D1, D2 = dt.date(2024, 3, 7), dt.date(2024, 3, 8)
HALF = dt.date(2024, 11, 29)  # the day after Thanksgiving: NYSE closes at 13:00
STOCKS, OPTIONS, FOREX, FUTURES = AssetClass.STOCKS, AssetClass.OPTIONS, AssetClass.FOREX, AssetClass.FUTURES
OHLCV = ["open", "high", "low", "close", "volume", "transactions"]

# (hour, minute, open, high, low, close, volume, transactions) of SPY on D1.
SPY_D1 = [
    (8, 0, 99.0, 99.5, 98.5, 99.2, 10, 1),
    (9, 0, 99.2, 99.9, 99.0, 99.5, 20, 2),
    (9, 29, 99.5, 100.2, 99.4, 100.0, 30, 3),
    (9, 30, 100.0, 101.0, 99.5, 100.5, 100, 10),
    (9, 31, 100.5, 102.0, 100.0, 101.5, 110, 11),
    (9, 33, 101.5, 101.8, 100.2, 100.8, 120, 12),
    (9, 34, 100.8, 103.0, 100.7, 102.9, 130, 13),
    (9, 35, 102.9, 103.5, 102.0, 103.0, 140, 14),
    (9, 39, 103.0, 103.2, 101.0, 101.1, 150, 15),
    (10, 29, 101.1, 101.4, 100.9, 101.2, 160, 16),
    (10, 30, 101.2, 104.0, 101.0, 103.9, 170, 17),
    (15, 59, 103.9, 104.5, 103.8, 104.2, 180, 18),
    (16, 0, 104.2, 104.3, 104.0, 104.1, 40, 4),
    (16, 30, 104.1, 104.2, 103.9, 104.0, 50, 5),
]


def ns(day: dt.date, hour: int, minute: int) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY).timestamp()) * 10**9


def at(day: dt.date, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


def write_flat(root: Path, asset: AssetClass, day: dt.date, rows: list[tuple],
               timeframe: Timeframe = Timeframe.MINUTE) -> Path:
    path = root / flat_file_relpath(asset, timeframe, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows)
    path.write_bytes(gzip.compress(text.encode()))
    return path


def stock_row(day: dt.date, bar: tuple) -> tuple:
    hour, minute, o, h, low, c, v, n = bar
    return ("SPY", v, o, c, h, low, ns(day, hour, minute), n)  # Polygon's column order


def option_row(ticker: str, day: dt.date, hour: int, minute: int, close: float) -> tuple:
    return (ticker, 3, close, close, close, close, ns(day, hour, minute), 1)


def write_sources(src: Path) -> None:
    write_flat(src, STOCKS, D1, [stock_row(D1, b) for b in SPY_D1])
    write_flat(src, STOCKS, D2, [stock_row(D2, (9, 30, 200, 201, 199, 200.5, 10, 1)),
                                 stock_row(D2, (10, 0, 200.5, 202, 200, 201, 20, 2))])
    write_flat(src, STOCKS, D2, [("SPY", 999, 1.0, 1.5, 2.0, 0.5, ns(D2, 0, 0), 9)], Timeframe.DAY)
    write_flat(src, STOCKS, HALF, [stock_row(HALF, (h, m, 50, 51, 49, 50.5, 1, 1))
                                   for h, m in [(12, 58), (12, 59), (13, 0), (13, 30)]])
    write_flat(src, OPTIONS, D1, [
        option_row("O:SPY240307C00100000", D1, 9, 30, 1.0),
        option_row("O:SPY240307C00100000", D1, 9, 50, 1.2),
        option_row("O:SPY240307C00100000", D1, 10, 5, 1.4),
        option_row("O:SPY240307P00100000", D1, 9, 30, 0.8),
        option_row("O:SPY240308C00105000", D1, 10, 20, 0.5),  # trades only after 10:15
        option_row("O:SPY240317C00110000", D1, 10, 10, 0.3),
        option_row("O:SPY240307C00090000", D1, 10, 0, 10.5),
    ])
    for day, volumes in ((D1, {"MESH24": 100, "MESM24": 10}), (D2, {"MESH24": 5, "MESM24": 500})):
        rows = []
        for contract, volume in volumes.items():
            price = 5000.0 if contract == "MESH24" else 5100.0
            rows += [(contract, volume, price, price + 1, price + 2, price - 1, ns(day, 9, m), 7) for m in (30, 31)]
        write_flat(src, FUTURES, day, rows)
    utc = [int(dt.datetime(2024, 3, 7, 1, m, tzinfo=dt.UTC).timestamp()) * 10**9 for m in (0, 30)]
    write_flat(src, FOREX, D1, [("C:EURUSD", 0, 1.08, 1.081, 1.082, 1.079, utc[0], 5),
                                ("C:EURUSD", 0, 1.081, 1.083, 1.085, 1.080, utc[1], 6)])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("store")
    write_sources(root / "src")
    report = ingest(root / "src", root / "dst", workers=1)
    assert report.failed == [], report.summary()
    return Store(root / "dst")


def values(frame: pl.DataFrame) -> list[tuple]:
    return frame.select(OHLCV).rows()


def times(frame: pl.DataFrame) -> list[tuple[int, int]]:
    return [(t.hour, t.minute) for t in frame["ts"].to_list()]


# ----------------------------------------------------------------------------- minute bars and sessions


def test_timestamps_are_new_york_and_sorted(store: Store) -> None:
    bars = store.bars("SPY", D1, D1, session="extended")
    assert bars.columns == ["ts", *OHLCV]
    assert bars.schema["ts"] == pl.Datetime("ns", "America/New_York")
    assert bars["ts"].is_sorted()
    assert times(bars) == [(b[0], b[1]) for b in SPY_D1]
    assert values(bars)[3] == (100.0, 101.0, 99.5, 100.5, 100.0, 10)


def test_regular_session_is_0930_to_the_close(store: Store) -> None:
    regular = store.bars("SPY", D1, D1)
    assert times(regular) == [(9, 30), (9, 31), (9, 33), (9, 34), (9, 35), (9, 39), (10, 29), (10, 30), (15, 59)]
    assert store.bars("SPY", D1, D1, session="extended").height == len(SPY_D1)


def test_half_day_regular_session_ends_at_1300(store: Store) -> None:
    assert times(store.bars("SPY", HALF, HALF)) == [(12, 58), (12, 59)]
    assert times(store.bars("SPY", HALF, HALF, session="extended")) == [(12, 58), (12, 59), (13, 0), (13, 30)]


def test_dates_include_the_whole_end_day_and_datetimes_select_by_time(store: Store) -> None:
    assert store.bars("SPY", D1, D2)["ts"].dt.date().unique().sort().to_list() == [D1, D2]
    window = store.bars("SPY", at(D1, 9, 31), at(D1, 9, 35))
    assert times(window) == [(9, 31), (9, 33), (9, 34), (9, 35)]
    naive = store.bars("SPY", dt.datetime(2024, 3, 7, 9, 31), dt.datetime(2024, 3, 7, 9, 35))
    assert naive.equals(window)


# ----------------------------------------------------------------------------- resampling


def test_5min_bars_are_left_labelled(store: Store) -> None:
    bars = store.bars("SPY", D1, D1, timeframe="5min")
    assert times(bars) == [(9, 30), (9, 35), (10, 25), (10, 30), (15, 55)]
    assert values(bars)[:3] == [
        (100.0, 103.0, 99.5, 102.9, 460.0, 46),
        (102.9, 103.5, 101.0, 101.1, 290.0, 29),
        (101.1, 101.4, 100.9, 101.2, 160.0, 16),
    ]


def test_1h_regular_bars_are_anchored_at_0930(store: Store) -> None:
    bars = store.bars("SPY", D1, D1, timeframe="1h")
    assert times(bars) == [(9, 30), (10, 30), (15, 30)]
    assert values(bars) == [
        (100.0, 103.5, 99.5, 101.2, 910.0, 91),
        (101.2, 104.0, 101.0, 103.9, 170.0, 17),
        (103.9, 104.5, 103.8, 104.2, 180.0, 18),
    ]


def test_1h_extended_bars_do_not_mix_pre_regular_and_post_market(store: Store) -> None:
    bars = store.bars("SPY", D1, D1, timeframe="1h", session="extended")
    assert times(bars) == [(8, 0), (9, 0), (9, 30), (10, 30), (15, 30), (16, 0)]
    assert values(bars)[1] == (99.2, 100.2, 99.0, 100.0, 50.0, 5)
    assert values(bars)[5] == (104.2, 104.3, 103.9, 104.0, 90.0, 9)


def test_1d_bars_from_minutes_and_from_day_files(store: Store) -> None:
    bars = store.bars("SPY", D1, D2, timeframe="1d")
    assert bars["ts"].to_list() == [at(D1, 0, 0), at(D2, 0, 0)]
    assert values(bars) == [
        (100.0, 104.5, 99.5, 104.2, 1260.0, 126),  # D1 aggregated from its regular-session minutes
        (1.0, 2.0, 0.5, 1.5, 999.0, 9),  # D2 has a Polygon day file
    ]
    extended = store.bars("SPY", D1, D1, timeframe="1d", session="extended")
    assert values(extended) == [(99.0, 104.5, 98.5, 104.0, 1410.0, 141)]


def test_bad_timeframe_or_session_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timeframe '2min'"):
        store.bars("SPY", D1, D1, timeframe="2min")
    with pytest.raises(ValueError, match="session 'overnight'"):
        store.bars("SPY", D1, D1, session="overnight")


# ----------------------------------------------------------------------------- futures and forex


def test_futures_root_is_the_continuous_front_month(store: Store) -> None:
    bars = store.bars("MES", D1, D2)
    # D1: MESH24 traded 200 vs 20 -> H24; D2: 10 vs 1000 -> M24.
    assert bars["close"].to_list() == [5001.0, 5001.0, 5101.0, 5101.0]
    assert bars["volume"].to_list() == [100.0, 100.0, 500.0, 500.0]
    daily = store.bars("MES", D1, D2, timeframe="1d")
    assert values(daily) == [(5000.0, 5002.0, 4999.0, 5001.0, 200.0, 14), (5100.0, 5102.0, 5099.0, 5101.0, 1000.0, 14)]


MES_DAY = dt.date(2024, 3, 8)  # a Friday; its Globex session opens Thursday 18:00
MES_TIMES = [(D1, 18, 0), (D1, 23, 0), (MES_DAY, 3, 0), (MES_DAY, 9, 29), (MES_DAY, 9, 30), (MES_DAY, 9, 31),
             (MES_DAY, 10, 0), (MES_DAY, 15, 59), (MES_DAY, 16, 0), (MES_DAY, 16, 30)]


@pytest.fixture(scope="module")
def globex_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One MES trade date with bars from the Globex open to after the cash close (price k on bar k)."""
    root = tmp_path_factory.mktemp("globex")
    rows = [("MESH24", 10 + k, 5000 + k, 5000 + k, 5000.5 + k, 4999.5 + k, ns(day, h, m), 1)
            for k, (day, h, m) in enumerate(MES_TIMES)]
    write_flat(root / "src", FUTURES, MES_DAY, rows)
    assert ingest(root / "src", root / "dst", workers=1).failed == []
    return Store(root / "dst")


def test_futures_regular_session_is_the_day_session(globex_store: Store) -> None:
    regular = globex_store.bars("MES", MES_DAY, MES_DAY)
    assert times(regular) == [(9, 30), (9, 31), (10, 0), (15, 59)]  # 09:30 <= t < 16:00 New York
    extended = globex_store.bars("MES", MES_DAY, MES_DAY, session="extended")
    assert times(extended) == [(h, m) for _, h, m in MES_TIMES]
    # hourly regular bars count from 09:30 like stocks': 09:30 (09:30, 09:31, 10:00) and 15:30 (15:59)
    hourly = globex_store.bars("MES", MES_DAY, MES_DAY, timeframe="1h")
    assert times(hourly) == [(9, 30), (15, 30)]
    assert values(hourly)[0] == (5004.0, 5006.5, 5003.5, 5006.0, 14.0 + 15.0 + 16.0, 3)
    # the day bar of the regular session is built from those minutes, not from the whole Globex day
    daily = globex_store.bars("MES", MES_DAY, MES_DAY, timeframe="1d")
    assert values(daily) == [(5004.0, 5007.5, 5003.5, 5007.0, 14.0 + 15.0 + 16.0 + 17.0, 4)]
    assert values(globex_store.bars("MES", MES_DAY, MES_DAY, timeframe="1d", session="extended"))[0][:2] == (
        5000.0, 5009.5)


def test_futures_contract_reads_one_contract(store: Store) -> None:
    bars = store.bars("MESH24", D1, D2)
    assert bars["volume"].to_list() == [100.0, 100.0, 5.0, 5.0]


def test_forex_pair_with_or_without_prefix_and_sessions_ignored(store: Store) -> None:
    bars = store.bars("C:EURUSD", D1, D1)
    assert bars.equals(store.bars("EURUSD", D1, D1, session="extended"))
    assert bars.height == 2
    hourly = store.bars("C:EURUSD", D1, D1, timeframe="1h")
    assert hourly.height == 1
    assert values(hourly) == [(1.08, 1.085, 1.079, 1.083, 0.0, 11)]
    assert hourly["ts"].to_list() == [dt.datetime(2024, 3, 6, 20, 0, tzinfo=NY)]


# ----------------------------------------------------------------------------- options


def test_option_chain_last_prices_and_staleness(store: Store) -> None:
    chain = store.option_chain("SPY", at(D1, 10, 15))
    assert chain.columns == ["ticker", "expiry", "dte", "strike", "right", "last", "last_ts"]
    assert chain.select("ticker", "dte", "strike", "right", "last").rows() == [
        ("O:SPY240307C00090000", 0, 90.0, "C", 10.5),
        ("O:SPY240307C00100000", 0, 100.0, "C", 1.4),
        ("O:SPY240307P00100000", 0, 100.0, "P", None),  # last bar 09:30: 45 minutes old
        ("O:SPY240308C00105000", 1, 105.0, "C", None),  # first bar after 10:15
        ("O:SPY240317C00110000", 10, 110.0, "C", 0.3),
    ]
    assert chain["last_ts"].to_list()[2] == at(D1, 9, 30)
    assert chain["last_ts"].to_list()[3] is None
    relaxed = store.option_chain("SPY", dt.datetime(2024, 3, 7, 10, 15), max_staleness=dt.timedelta(hours=1))
    assert relaxed["last"].to_list()[2] == 0.8


def test_option_chain_filters(store: Store) -> None:
    when = at(D1, 10, 15)

    def tickers(**kw) -> list[str]:
        return store.option_chain("SPY", when, **kw)["ticker"].to_list()

    assert len(tickers(dte_max=1)) == 4
    assert tickers(dte_min=1) == ["O:SPY240308C00105000", "O:SPY240317C00110000"]
    assert tickers(strike_min=95, strike_max=105) == [
        "O:SPY240307C00100000", "O:SPY240307P00100000", "O:SPY240308C00105000"]
    assert tickers(right="P") == tickers(right="put") == ["O:SPY240307P00100000"]
    with pytest.raises(ValueError, match="right"):
        tickers(right="X")


def test_option_day_bars_and_contract_bars(store: Store) -> None:
    day = store.option_day_bars("SPY", D1, dte_max=0)
    assert day["ticker"].unique().sort().to_list() == [
        "O:SPY240307C00090000", "O:SPY240307C00100000", "O:SPY240307P00100000"]
    assert day.schema["ts"] == pl.Datetime("ns", "America/New_York")
    assert store.option_day_bars("SPY", D1).height == 7
    bars = store.contract_bars("O:SPY240307C00100000", D1, D2)
    assert bars.columns == ["ts", *OHLCV]
    assert bars["close"].to_list() == [1.0, 1.2, 1.4]


def test_sessions(store: Store) -> None:
    assert store.sessions("SPY", D1, HALF) == [D1, D2, HALF]
    assert store.sessions("MES", D1, D2) == [D1, D2]
    assert store.sessions("O:SPY240307C00100000", D1, HALF) == [D1]


# ----------------------------------------------------------------------------- errors and provenance


def test_data_not_found_says_what_to_ingest(store: Store) -> None:
    with pytest.raises(DataNotFound) as unknown:
        store.bars("NOPE", D1, D2)
    assert isinstance(unknown.value, LookupError)
    assert "NOPE" in str(unknown.value) and store.root in str(unknown.value)
    assert "search data ingest" in str(unknown.value)

    with pytest.raises(DataNotFound) as out_of_range:
        store.bars("SPY", dt.date(2023, 1, 3), dt.date(2023, 1, 31))
    message = str(out_of_range.value)
    for fragment in ("SPY", "2023-01-03", "2023-01-31", store.root, "search data ingest", "--tickers SPY",
                     "2024-03 .. 2024-11"):
        assert fragment in message

    with pytest.raises(DataNotFound, match="QQQ options"):
        store.option_chain("QQQ", at(D1, 10, 0))
    with pytest.raises(DataNotFound, match="O:SPY240307C00100000"):
        store.contract_bars("O:SPY240307C00100000", D2, D2)


def test_manifest_hash_changes_only_when_the_data_used_changes(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_sources(src)
    ingest(src, dst, workers=1)
    store = Store(dst)
    whole, first_day, futures = (store.manifest_hash(D1, D2), store.manifest_hash(D1, D1),
                                 store.manifest_hash(D1, D2, ["MES"]))
    spy = store.manifest_hash(D1, D2, ["SPY"])
    assert ingest(src, dst, workers=1).ingested == []
    assert store.manifest_hash(D1, D2) == whole

    changed = write_flat(src, STOCKS, D2, [stock_row(D2, (9, 30, 300, 301, 299, 300.5, 10, 1))])
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    assert ingest(src, dst, workers=1).ingested == [flat_file_relpath(STOCKS, Timeframe.MINUTE, D2)]

    assert store.manifest_hash(D1, D2) != whole
    assert store.manifest_hash(D1, D2, ["SPY"]) != spy
    assert store.manifest_hash(D1, D1) == first_day
    assert store.manifest_hash(D1, D2, ["MES"]) == futures
    assert store.bars("SPY", D2, D2)["open"].to_list() == [300.0]
    with pytest.raises(DataNotFound):
        store.manifest_hash(dt.date(2020, 1, 1), dt.date(2020, 1, 31))


def test_non_local_filesystems_read_and_write_through_pyarrow(tmp_path: Path, monkeypatch, store: Store) -> None:
    """An object store is not "local": ingest writes partitions directly, reads go through pyarrow datasets."""
    import pyarrow.fs as pafs

    import data.ingest as ingest_module

    write_sources(tmp_path / "src")
    remote = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    assert remote.type_name != "local"
    real_resolve = ingest_module.resolve_root
    monkeypatch.setattr(ingest_module, "resolve_root",
                        lambda root: (remote, "bucket/store") if str(root) == "mem://bucket/store" else real_resolve(root))

    report = ingest(tmp_path / "src", "mem://bucket/store", workers=1)

    assert report.failed == [] and (tmp_path / "bucket/store/stocks/minute/ticker=SPY/2024-03.parquet").exists()
    assert not list((tmp_path / "bucket").rglob("*.tmp"))
    remote_store = Store("bucket/store", filesystem=remote)
    for timeframe in ("1min", "1h", "1d"):
        assert remote_store.bars("SPY", D1, D2, timeframe=timeframe).equals(store.bars("SPY", D1, D2, timeframe=timeframe))
    assert remote_store.option_chain("SPY", at(D1, 10, 15), dte_max=1).equals(
        store.option_chain("SPY", at(D1, 10, 15), dte_max=1))
