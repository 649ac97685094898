"""Trading days and opening ranges follow each market's session (data.calendar), in both engines'
shared signal code: MES from the session the spec names, forex days rolling at 17:00 New York."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from data.flatfiles import AssetClass
from data.ingest import ingest
from data.store import Store
from evaluator.market import load_market
from evaluator.signals import evaluate
from spec_space.models import StrategySpec
from tests.data.test_store import ns, write_flat
from tests.evaluator import builders as b

THU, FRI = dt.date(2024, 3, 7), dt.date(2024, 3, 8)

# MES around the clock for trade date Friday: Globex opens Thursday 18:00 (an evening spike to 5020),
# Europe at 03:00, then the cash open. (New York time, open, high, low, close, volume)
MES_ROWS = [
    ("2024-03-07 18:00", 5000, 5020, 4999, 5000, 10),
    ("2024-03-08 03:00", 5000, 5010, 4995, 5000, 10),
    ("2024-03-08 09:30", 5000, 5001, 4998, 5000, 10),
    ("2024-03-08 09:31", 5000, 5002, 4997, 5001, 10),
    ("2024-03-08 10:00", 5001, 5004, 5001, 5003.5, 10),
]


def _mes_spec(session: str) -> StrategySpec:
    return StrategySpec.model_validate({
        "name": "orb", "instrument": {"type": "future", "symbol": "MES"}, "session": session,
        "entry": {"long": "crosses_above(close, opening_range_high('10:00'))"},
    })


@pytest.fixture(scope="module")
def mes_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("mes")
    rows = []
    for stamp, o, h, lo, c, v in MES_ROWS:
        t = dt.datetime.fromisoformat(stamp)
        rows.append(("MESH24", v, o, c, h, lo, ns(t.date(), t.hour, t.minute), 1))  # Polygon's column order
    write_flat(root / "src", AssetClass.FUTURES, FRI, rows)
    assert ingest(root / "src", root / "dst", workers=1).failed == []
    return Store(root / "dst")


def test_mes_opening_range_of_the_regular_session_starts_at_0930(mes_store: Store):
    market = load_market(mes_store, _mes_spec("regular"), FRI, FRI, warmup_days=0)
    bars = market.bars
    assert bars.session_dates == [FRI] and len(bars) == 3  # 09:30, 09:31, 10:00
    # the range is 09:30..09:59: high max(5001, 5002) = 5002, not the night's 5020 or 5010; the 10:00
    # bar, the first after it, closes 5003.5 above it: a cross on that bar
    assert evaluate("opening_range_high('10:00')", bars)[-1] == 5002.0
    assert evaluate("opening_range_low('10:00')", bars)[-1] == 4997.0
    assert evaluate(_mes_spec("regular").entry.long, bars).tolist() == [False, False, True]


def test_mes_extended_session_is_one_trade_date_from_the_globex_open(mes_store: Store):
    market = load_market(mes_store, _mes_spec("extended"), FRI, FRI, warmup_days=0)
    bars = market.bars
    # Thursday 18:00 belongs to Friday's trade date: one session, not a Thursday stub and a Friday
    assert bars.session_dates == [FRI] and bars.day.tolist() == [0] * 5
    assert bars.session_minute.tolist() == [18 * 60 - 1440, 180, 570, 571, 600]
    # the range runs from the Globex open (18:00 the evening before) to 10:00: high 5020, low 4995
    assert evaluate("opening_range_high('10:00')", bars)[-1] == 5020.0
    assert evaluate("opening_range_low('10:00')", bars)[-1] == 4995.0
    assert not evaluate(_mes_spec("extended").entry.long, bars).any()


def test_forex_days_roll_at_1700_new_york():
    rows = [
        ("2024-03-07 16:58", 1.0800, 1.0810, 1.0790, 1.0800, 100),  # Thursday's day
        ("2024-03-07 16:59", 1.0800, 1.0830, 1.0795, 1.0820, 100),
        ("2024-03-07 17:00", 1.0820, 1.0822, 1.0815, 1.0818, 300),  # Friday's day opens
        ("2024-03-07 17:01", 1.0818, 1.0819, 1.0805, 1.0810, 100),
        ("2024-03-08 08:59", 1.0810, 1.0825, 1.0809, 1.0824, 100),
        ("2024-03-08 09:00", 1.0824, 1.0840, 1.0823, 1.0839, 100),
    ]
    bars = b.market(rows, symbol="C:EURUSD", kind="forex").bars
    assert bars.session_dates == [THU, FRI] and bars.day.tolist() == [0, 0, 1, 1, 1, 1]
    # Friday's range up to 09:00 runs from 17:00 Thursday: high max(1.0822, 1.0819, 1.0825)
    assert evaluate("opening_range_high('09:00')", bars)[-1] == 1.0825
    # the prior day is Thursday's 16:58-16:59 session from 17:00 on
    np.testing.assert_array_equal(evaluate("prior_day_high()", bars)[2:], [1.0830] * 4)
    # the session VWAP restarts at 17:00: the 17:00 bar's is its own typical price
    assert evaluate("vwap()", bars)[2] == pytest.approx((1.0822 + 1.0815 + 1.0818) / 3)


def test_stock_days_are_unchanged():
    rows = b.flat("2024-03-07", "15:59", [1.0]) + b.flat("2024-03-08", "09:30", [1.0])
    bars = b.market(rows).bars
    assert bars.day.tolist() == [0, 1] and bars.session_minute.tolist() == bars.minute.tolist()


def test_shipped_mes_space_ranges_start_at_the_cash_open(mes_store: Store):
    from spec_space.loader import load_space
    from spec_space.space import DefaultSource

    space = load_space(Path(__file__).resolve().parents[2] / "spec_space" / "mes_orb.yaml")
    spec = space.build(space.suggest(DefaultSource(space)))
    assert spec.session == "regular"
    bars = load_market(mes_store, spec, FRI, FRI, warmup_days=0).bars
    assert dt.time(9, 30) == dt.time(*divmod(int(bars.minute[0]), 60))


def test_live_forex_sessions_end_where_the_day_rolls():
    import pandas as pd

    from brokers.live import bars as _live
    from evaluator.market import NY

    spec = StrategySpec.model_validate({
        "name": "fx", "instrument": {"type": "forex", "symbol": "EURUSD"}, "entry": {"long": "close > 0"},
    })

    def ns_at(text: str) -> int:
        return int(pd.Timestamp(text, tz=NY).tz_convert("UTC").value)

    assert _live.is_last_bar(spec, ns_at("2026-11-24 16:59"), 1)  # reaches 17:00
    assert not _live.is_last_bar(spec, ns_at("2026-11-24 17:00"), 1)  # opens the next day
    assert not _live.is_last_bar(spec, ns_at("2026-11-24 23:59"), 1)  # before: every evening bar was "last"
    assert _live.is_last_bar(spec, ns_at("2026-11-24 16:45"), 15)
    assert not _live.is_last_bar(spec, ns_at("2026-11-24 16:30"), 15)
    # a broker frame around 17:00 becomes two trading days
    index = pd.DatetimeIndex(["2026-11-24 16:59", "2026-11-24 17:00"]).tz_localize(NY)
    frame = pd.DataFrame({c: [1.0, 1.0] for c in ("open", "high", "low", "close", "volume")}, index=index)
    market = _live.frame_market("C:EURUSD", frame, intraday=True)
    assert market.bars.session_dates == [dt.date(2026, 11, 24), dt.date(2026, 11, 25)]
