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


def test_spec_validate_names_the_file_of_a_yaml_syntax_error(tmp_path):
    from click.testing import CliRunner

    from search.spec_cli import validate

    path = _write(tmp_path, GOOD.replace("params:\n", "params:\n  a: {int: [5, 1]\n", 1))
    result = CliRunner().invoke(validate, [str(path)])
    assert result.exit_code == 1
    assert f"{path}:" in result.output and "not valid YAML" in result.output
    assert "<unicode string>" not in result.output and "Traceback" not in result.output
