"""Spec and space files: shipped spaces load, and every bad input names file, line, field and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spec_space import catalogue
from spec_space.expressions import ExpressionError, parse_expression
from spec_space.loader import SpecError, load_space, load_spec, read_yaml, spec_json_schema
from spec_space.space import DefaultSource, FixedSource, RandomSource

SPACE_DIR = Path(__file__).resolve().parents[2] / "spec_space"
SPACES = sorted(SPACE_DIR.glob("*.yaml"))


def test_every_shipped_space_loads_and_samples():
    assert {p.stem for p in SPACES} >= {"zrce", "ghetto_spread", "sma_cross", "mes_orb", "forex_trend"}
    for path in SPACES:
        space = load_space(path)
        for seed in range(5):
            values, spec = space.sample(seed)
            assert spec.name
            # a stored trial's parameters rebuild the same spec
            assert space.build(space.suggest(FixedSource(values))) == spec


def test_sampling_is_deterministic_and_respects_conditions():
    space = load_space(SPACE_DIR / "zrce.yaml")
    assert space.sample(3) == space.sample(3)
    seen_inactive = False
    for seed in range(40):
        values, spec = space.sample(seed)
        if values["use_trailing"] is False:
            seen_inactive = True
            assert "trailing_pct" not in values and spec.exits.trailing is None
        else:
            assert spec.exits.trailing is not None and spec.exits.trailing.pct == values["trailing_pct"]
    assert seen_inactive


def test_default_source_uses_defaults_and_overrides():
    space = load_space(SPACE_DIR / "sma_cross.yaml")
    values = space.suggest(DefaultSource(space, {"fast": 7}))
    assert values == {"fast": 7, "slow": 30, "stop_pct": 0.005}
    with pytest.raises(KeyError, match="unknown parameter"):
        DefaultSource(space, {"nope": 1})


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


GOOD = (SPACE_DIR / "sma_cross.yaml").read_text()


def test_unknown_key_names_file_line_and_field(tmp_path):
    path = _write(tmp_path, GOOD.replace("  direction: long\n", "  direction: long\n  directoin: short\n"))
    with pytest.raises(SpecError) as info:
        load_space(path)
    message = str(info.value)
    line = GOOD.splitlines().index("  direction: long") + 2
    assert f"bad.yaml:{line}: spec.directoin: Extra inputs are not permitted" in message
    assert "check its spelling" in message


def test_bad_value_points_at_its_line(tmp_path):
    text = GOOD.replace('eod_flat_time: "15:55"', 'eod_flat_time: "25:99"')
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_space(path)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "25:99" in t)
    assert f":{line}: spec.exits.eod_flat_time: expected a time like '09:45'" in str(info.value)


def test_bad_distribution_and_undefined_reference(tmp_path):
    path = _write(tmp_path, GOOD.replace("fast: {int: [5, 30], default: 10}", "fast: {int: [30, 5]}"))
    with pytest.raises(SpecError, match=r"params\.fast: low 30 is above high 5; write \[5, 30\]"):
        load_space(path)
    path = _write(tmp_path, GOOD.replace("sma(close, $slow))\"\n    window", "sma(close, $slowest))\"\n    window"))
    with pytest.raises(SpecError, match=r"undefined params: \$slowest"):
        load_space(path)


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ("{int: [5, 1]}", "params.a: low 5 is above high 1; write [1, 5]"),
        ("{float: [0.5, 0.1]}", "params.a: low 0.5 is above high 0.1; write [0.1, 0.5]"),
        ("{int: [1, 5], stp: 2}", "params.a.stp: Extra inputs are not permitted (got 2); remove it"),
        ("{choice: []}", "params.a.choice: List should have at least 1 item"),
        ("{foo: 1}", "params.a: a parameter is one mapping with exactly one of the keys int: [low, high]"),
        ("{int: [1, 5], float: [0.1, 0.2]}", "params.a: a parameter is one mapping with exactly one of the keys"),
        ("7", "params.a: a parameter is one mapping"),
    ],
)
def test_a_bad_parameter_is_one_line_naming_the_field_and_the_fix(tmp_path, param, expected):
    text = GOOD.replace("params:\n", f"params:\n  a: {param}\n", 1)
    with pytest.raises(SpecError) as info:
        load_space(_write(tmp_path, text))
    line = text.splitlines().index(f"  a: {param}") + 1
    (message,) = str(info.value).splitlines()  # one problem, one line: no error per union member
    assert message.startswith(f"{tmp_path / 'bad.yaml'}:{line}: {expected}"), message


def test_bad_expression_is_located(tmp_path):
    path = _write(tmp_path, GOOD.replace("crosses_above(sma(close, $fast)", "crosses_above(smaa(close, $fast)"))
    with pytest.raises(SpecError, match=r"unknown function 'smaa'"):
        load_space(path)
    with pytest.raises(ExpressionError) as info:
        parse_expression("sma(close, 10) > __import__('os')")
    assert info.value.column is not None


def test_yaml_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"bad.yaml:\d+: .*not valid YAML"):
        load_space(_write(tmp_path, "name: [unclosed\n"))
    text = GOOD.replace("params:\n", "params:\n  a: {int: [5, 1]\n", 1)
    with pytest.raises(SpecError) as info:
        read_yaml(_write(tmp_path, text))
    line = text.splitlines().index("  a: {int: [5, 1]") + 2  # PyYAML notices at the next key
    assert str(info.value).startswith(f"{tmp_path / 'bad.yaml'}:{line}: (top level): not valid YAML: expected ',' or '}}'")
    assert "<unicode string>" not in str(info.value)
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "missing.yaml")


def test_incoherent_spec_is_rejected(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "name: x\ninstrument: {type: option, symbol: SPY, legs: [{dte: 0, select: delta, value: 0.5}]}\n"
        "entry: {long: 'close > 1'}\nexits: {stop_loss: {points: 2}}\n"
    )
    with pytest.raises(SpecError, match="options use pct of the premium"):
        load_spec(path)


def test_random_source_ranges():
    source = RandomSource(1)
    for _ in range(200):
        assert 5 <= source.suggest_int("a", 5, 30, step=5) <= 30
        assert source.suggest_int("a", 5, 30, step=5) % 5 == 0
        assert 0.01 <= source.suggest_float("b", 0.01, 1.0, log=True) <= 1.0


def test_json_schema_is_exported():
    schema = spec_json_schema()
    assert schema["title"] == "SpecSpace"
    json.dumps(schema)


def test_committed_catalogue_is_current():
    assert catalogue.CATALOGUE_PATH.read_text() == catalogue.render(), "run: search spec catalogue --write"


# --------------------------------------------------------------------------- sum parameters


SUMS = """\
name: sums
data: {start: 2024-01-02, end: 2024-03-28}
params:
  use_partial: {choice: [true, false]}
  take_profit: {float: [0.05, 0.5], default: 0.1, when: {use_partial: false}}
  first_tp: {float: [0.05, 0.3], default: 0.1, when: {use_partial: true}}
  step: {float: [0.02, 0.3], default: 0.1, when: {use_partial: true}}
  final: {sum: [take_profit, first_tp, step]}
spec:
  name: s
  instrument: {type: stock, symbol: SPY}
  entry: {long: "close > 0"}
  exits:
    take_profit: {pct: $final}
    partial_take_profits: [{pct: $first_tp, fraction: 0.5}]
"""


def test_a_sum_is_computed_from_its_active_terms_and_never_drawn(tmp_path):
    space = load_space(_write(tmp_path, SUMS))
    values = space.suggest(DefaultSource(space))
    assert "final" not in values  # not a dimension of the search: stored trials do not hold it
    spec = space.build(values)
    assert (spec.exits.take_profit.pct, spec.exits.partial_take_profits[0].pct) == (0.2, 0.1)
    # without partials the sum is take_profit alone, and the partial block is dropped with first_tp
    alone = space.build({"use_partial": False, "take_profit": 0.15})
    assert (alone.exits.take_profit.pct, alone.exits.partial_take_profits) == (0.15, [])
    # a value given for the sum itself is recomputed, not trusted
    assert space.build({**values, "final": 0.01}).exits.take_profit.pct == 0.2
    assert space.size_estimate() == 2 * 100 * 100 * 100
    with pytest.raises(KeyError, match=r"final is computed \(take_profit \+ first_tp \+ step\), not drawn"):
        DefaultSource(space, {"final": 0.3})
    for seed in range(100):
        _, sampled = space.sample(seed)
        partials = sampled.exits.partial_take_profits
        assert all(p.pct < sampled.exits.take_profit.pct for p in partials)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("final: {sum: [take_profit, first_tp, nope]}", r"params\.final\.sum: 'nope' is not an int, float or sum"),
        ("final: {sum: [take_profit, use_partial]}", r"params\.final\.sum: 'use_partial' is not an int, float"),
        ("final: {sum: []}", r"params\.final\.sum"),
    ],
)
def test_bad_sums_are_refused(tmp_path, change, message):
    with pytest.raises(SpecError, match=message):
        load_space(_write(tmp_path, SUMS.replace("final: {sum: [take_profit, first_tp, step]}", change)))


# --------------------------------------------------------------------------- the seed's ZRCE, field for field

#: The trader's "zrce_second_chance" strategy_spec.json (seed conversation), the fields a backtest reads.
SEED_ZRCE = {
    "entry": {"zone_drawing_time": "10:30", "confirmation_trigger_buffer": 0.10, "min_volume_threshold": 1.5,
              "second_chance": {"enabled": True, "relaxed_volume_ratio": 1.2}},
    "trading": {"symbol": "SPY", "trading_hours": {"start": "09:30", "end": "15:45"}, "max_trades_per_day": 1,
                "prefer_0dte": True},
    "risk_exits": {"trailing_stop_percentage": 0.08, "trail_activation_profit_pct": 0.03,
                   "break_even_buffer_pct": 0.01, "fixed_stop_loss_pct": 0.07, "tp_mode": "fixed_pct",
                   "tp_fixed_pct": 0.10, "partial_tp_enabled": True, "first_tp_pct": 0.10, "first_tp_size": 0.5,
                   "second_tp_pct": 0.20, "max_hold_minutes": 15},
    "sizing": {"position_size": 0.10},
    "backtest": {"cash": 100000, "fees": {"percent_fee": 0.001}},
}


def test_zrce_space_defaults_are_the_seed_spec():
    space = load_space(SPACE_DIR / "zrce.yaml")
    values = space.suggest(DefaultSource(space))
    spec = space.build(values)
    entry, trading, risk = SEED_ZRCE["entry"], SEED_ZRCE["trading"], SEED_ZRCE["risk_exits"]
    zone = f"'{entry['zone_drawing_time']}', {entry['confirmation_trigger_buffer']}, {entry['min_volume_threshold']}, "
    zone += f"{entry['second_chance']['relaxed_volume_ratio']}, 20, {int(entry['second_chance']['enabled'])}, 0)"
    assert spec.entry.long == f"zone_breakout('up', {zone}" and spec.entry.short == f"zone_breakout('down', {zone}"
    assert spec.instrument.symbol == trading["symbol"] and [leg.dte for leg in spec.instrument.legs] == [0]
    assert (spec.entry.window_start, spec.entry.window_end) == (
        trading["trading_hours"]["start"], trading["trading_hours"]["end"])
    assert spec.sizing.max_trades_per_day == trading["max_trades_per_day"]
    ex = spec.exits
    assert (ex.trailing.pct, ex.trailing.activation_pct) == (
        risk["trailing_stop_percentage"], risk["trail_activation_profit_pct"])
    assert ex.break_even.buffer_pct == risk["break_even_buffer_pct"]
    assert ex.stop_loss.pct == risk["fixed_stop_loss_pct"]
    assert [(p.pct, p.fraction) for p in ex.partial_take_profits] == [(risk["first_tp_pct"], risk["first_tp_size"])]
    assert ex.take_profit.pct == risk["second_tp_pct"]
    assert ex.max_hold_minutes == risk["max_hold_minutes"]
    assert (spec.sizing.mode, spec.sizing.pct_equity) == ("pct_equity", SEED_ZRCE["sizing"]["position_size"])
    assert spec.costs.commission_pct == SEED_ZRCE["backtest"]["fees"]["percent_fee"]
    assert spec.initial_cash == SEED_ZRCE["backtest"]["cash"]
    # partials off: the seed's fixed take-profit is the target
    no_partial = space.build({**values, "use_partial": False, "take_profit": risk["tp_fixed_pct"]})
    assert (no_partial.exits.take_profit.pct, no_partial.exits.partial_take_profits) == (risk["tp_fixed_pct"], [])


def test_zrce_space_orders_its_targets_and_ratios_by_construction():
    space = load_space(SPACE_DIR / "zrce.yaml")
    for seed in range(300):
        values, spec = space.sample(seed)  # build() would raise on relaxed_ratio > volume_ratio
        full = space.resolved(values)
        assert "volume_ratio" not in values and full["relaxed_ratio"] <= full["volume_ratio"]
        assert all(p.pct < spec.exits.take_profit.pct for p in spec.exits.partial_take_profits)


def test_spec_validate_names_the_file_of_a_yaml_syntax_error(tmp_path):
    from click.testing import CliRunner

    from search.spec_cli import validate

    path = _write(tmp_path, GOOD.replace("params:\n", "params:\n  a: {int: [5, 1]\n", 1))
    result = CliRunner().invoke(validate, [str(path)])
    assert result.exit_code == 1
    assert f"{path}:" in result.output and "not valid YAML" in result.output
    assert "<unicode string>" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("symbol", "accepted"), [("EURUSD", True), ("C:XAUUSD", True), ("USDJPY", False), ("EURGBP", False)])
def test_forex_pairs_must_be_quoted_in_the_account_currency(tmp_path, symbol, accepted):
    # The engines book price moves as dollars; a yen-quoted pair would overstate PnL about 150x.
    path = tmp_path / "spec.yaml"
    path.write_text(
        f"name: x\ninstrument: {{type: forex, symbol: '{symbol}'}}\ntimeframe: 15min\n"
        "entry: {long: 'close > 1'}\nexits: {stop_loss: {pct: 1}}\n"
    )
    if accepted:
        assert load_spec(path).instrument.symbol == symbol
    else:
        with pytest.raises(SpecError, match=f"quoted in {symbol[-3:]}.*trade a USD-quoted pair"):
            load_spec(path)
