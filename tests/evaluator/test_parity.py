"""evaluator.parity counts positions, not exit rows (a partial take-profit adds a row, not a trade)."""

from __future__ import annotations

from evaluator import fast
from evaluator.parity import compare_results
from tests.evaluator import builders as b

DAY = "2024-03-04"


def test_report_counts_positions_and_exit_rows_apart() -> None:
    rows = b.minutes(
        DAY,
        "09:30",
        [
            (100, 100.2, 99.8, 100),  # 0: the signal
            (100, 100.5, 99.5, 100),  # 1: in at 100; stop 95, partial 110
            (100.5, 110.5, 100, 110),  # 2: the partial (half)
            (106, 106, 94, 95),  # 3: the stop: the rest
            (95, 95, 95, 95),  # 4: flat
            (95, 95.2, 94.8, 95),  # 5: a second signal
            (95, 95, 95, 95),  # 6: in; out at the window's end
            (95, 95, 95, 95),
        ],
    )
    strategy = b.spec(
        entry={"long": b.at(rows, 0, 5)},
        exits={"stop_loss": {"pct": 0.05}, "partial_take_profits": [{"pct": 0.10, "fraction": 0.5}]},
        sizing={"mode": "fixed", "quantity": 10},
    )
    mkt = b.market(rows)
    result = fast.run(strategy, mkt, mkt.bars.session_dates[0], mkt.bars.session_dates[-1])
    assert result.trades.height == 3 and result.metrics["n_trades"] == 2.0
    report = compare_results(result, result)
    assert report.ok
    assert report.n_trades == (2, 2)  # positions, as the metrics count them
    assert report.n_rows == (3, 3)
    assert "trades 2 / 2 (exit rows 3 / 3)" in report.summary()
    assert report.to_dict()["n_trades"] == [2, 2]
