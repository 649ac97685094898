"""Kirkland signals -> signal-follower spaces that load, and whose events drive trades."""

from __future__ import annotations

from pathlib import Path

import yaml

from seeds.kirkland import parse_kirkland_signals
from seeds.signal_spaces import build_signal_spaces, write_signal_spaces
from spec_space.loader import load_space
from spec_space.space import DefaultSource

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "seeds" / "kirkland_signals_sample.csv"


def test_sample_signals_become_one_space_per_instrument(tmp_path):
    lines, written = write_signal_spaces(SAMPLE, tmp_path)
    assert sorted(p.name for p in written) == ["kirkland_eurusd.yaml", "kirkland_mes.yaml", "kirkland_xauusd.yaml"]
    # the two deliberately bad rows are reported with their line numbers, the rest still load
    assert any("line 13" in line for line in lines) and any("line 28" in line for line in lines)
    for path in written:
        space = load_space(path)
        spec = space.build(space.suggest(DefaultSource(space)))
        assert spec.signals["kirkland"] and spec.exits.stop_loss.signal_stop == 1.0
        assert yaml.safe_load(path.read_text())["provenance"]["source"] == str(SAMPLE)


def test_few_signals_give_no_space_but_say_why():
    text = "date,time,symbol,side,entry,stop,tp1\n2024-01-08,05:15,EURUSD,sell,1.09,1.10,1.08\n"
    built = build_signal_spaces(parse_kirkland_signals(text, source="tiny.csv"), "tiny.csv")
    assert built == [(None, ["only 1 signals for C:EURUSD (< 5): no space written"])]
