"""benchmarks.bench_calibration's scoring (the pipeline it runs is minutes long; see the README)."""

from __future__ import annotations

import math

from benchmarks.bench_calibration import Outcome, closeness, table

WIDE = {"zone_time": "10:30", "trigger_buffer": 0.08, "relaxed_ratio": 1.2, "volume_ratio_gap": 0.3,
        "max_hold": 15, "stop_loss": 0.3, "break_even_trigger": 0.4, "use_trailing": False}


def test_closeness_names_each_part_of_the_planted_edge() -> None:
    assert all(closeness(WIDE).values())
    # the shipped defaults: zone, buffer, ratio and hold are the plant's, the exits are too tight
    assert closeness({}) == {"zone 10:30": True, "buffer<=0.14": True, "vol ratio 1.2-1.8": True,
                             "hold 5-30": True, "wide exits": False}
    assert not closeness({**WIDE, "zone_time": "11:00"})["zone 10:30"]
    assert not closeness({**WIDE, "use_trailing": True, "trailing_pct": 0.05})["wide exits"]
    assert closeness({**WIDE, "use_trailing": True, "trailing_pct": 0.2})["wide exits"]


def test_table_counts_promotions_per_market_kind() -> None:
    def outcome(market: str, promoted: bool, dsr: float) -> Outcome:
        return Outcome(market, 0, promoted, [1] if promoted else [], WIDE, {"dsr": dsr, "pbo": 0.1, "wfe": math.nan},
                       "", 1.0, closeness(WIDE))

    text = table([outcome("null", False, 0.0), outcome("null", False, 0.2), outcome("zrce:1", True, 1.0)])
    null, planted = text.splitlines()[2:]
    assert null.split()[:4] == ["null", "2", "0", "0%"] and "0.10 [0.00, 0.20]" in null
    assert planted.split()[:4] == ["zrce:1", "1", "1", "100%"] and "zone 10:30 1/1" in planted
    assert "- " in null  # WFE all nan
