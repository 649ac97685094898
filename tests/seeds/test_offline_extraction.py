"""The offline provider and the text helpers it is built on, on the shipped sample ideas."""

from __future__ import annotations

from pathlib import Path

import pytest

from seeds.providers import (
    ExtractedNumber,
    OfflineProvider,
    OfflineRequest,
    UsageLedger,
    classify_idea,
    extract_facts,
    extract_numbers,
    find_symbols,
    idea_keywords,
    split_ideas,
)


@pytest.fixture(scope="module")
def ideas(repo_root: Path) -> list[str]:
    return split_ideas((repo_root / "seeds" / "strat_ideas_sample.txt").read_text(encoding="utf-8"))


def pairs(text: str) -> set[tuple[float, str]]:
    return {(n.value, n.unit) for n in extract_numbers(text)}


def test_sample_has_five_ideas_classified_in_order(ideas: list[str]):
    assert [classify_idea(i) for i in ideas] == ["zrce", "ghetto_spread", "futures_breakout", "forex_trend", "sma_cross"]


def test_zrce_idea_numbers(ideas: list[str]):
    found = pairs(ideas[0])
    assert {
        (630.0, "time"),  # zones drawn up to 10:30
        (1.5, ""),  # volume ratio
        (0.10, "$"),  # trigger buffer
        (1.2, ""),  # relaxed second-chance ratio
        (0.0, "dte"),
        (10.0, "%"), (7.0, "%"), (8.0, "%"), (3.0, "%"),  # TP, SL, trailing, activation
        (15.0, "minutes"),  # max hold
        (570.0, "time"), (945.0, "time"),  # trading hours
    } <= found
    volume = next(n for n in extract_numbers(ideas[0]) if n.value == 1.5)
    assert "volume ratio" in volume.context
    trailing = [n for n in extract_numbers(ideas[0]) if n.unit == "%" and n.value in (8.0, 3.0)]
    assert all("trailing" in n.context or "up 3%" in n.context for n in trailing)


def test_ghetto_spread_idea_numbers(ideas: list[str]):
    assert {
        (0.25, "delta"), (7.0, "dte"), (1.5, "%"), (15.0, "%"), (1.0, "$"),
        (30.0, "%"), (40.0, "%"), (60.0, "minutes"), (585.0, "time"),
    } <= pairs(ideas[1])
    assert find_symbols(ideas[1]) == ["AMD"]


def test_futures_and_forex_ideas(ideas: list[str]):
    assert {(15.0, "minutes"), (570.0, "time"), (5.0, "minutes"), (2.0, "R"), (20.0, "points"), (955.0, "time")} \
        <= pairs(ideas[2])
    assert find_symbols(ideas[2]) == ["MES"]
    assert {(1.5, "atr"), (3.0, "atr"), (40.0, "pips"), (1.0, "%"), (20.0, ""), (50.0, "")} <= pairs(ideas[3])
    assert find_symbols(ideas[3]) == ["EURUSD", "XAUUSD"]
    assert {(50.0, "days"), (200.0, "days"), (5.0, "%")} <= pairs(ideas[4])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0DTE", [(0.0, "dte")]),
        ("7 DTE", [(7.0, "dte")]),
        ("DTE of 14", [(14.0, "dte")]),
        ("7 days to expiration", [(7.0, "dte")]),
        ("25 delta put", [(0.25, "delta")]),
        ("delta 0.30", [(0.30, "delta")]),
        ("sell the $2.50 wider strike", [(2.5, "$")]),
        ("risk $1,000 per trade", [(1000.0, "$")]),
        ("12.5% of the account", [(12.5, "%")]),
        ("exit at 3:45 pm", [(945.0, "time")]),
        ("enter at 10am", [(600.0, "time")]),
        ("hold 1 day", [(1.0, "days")]),
        ("a 90-minute window", [(90.0, "minutes")]),
        ("2 hours", [(2.0, "hours")]),
        ("stop 30 pips", [(30.0, "pips")]),
        ("1.5x the average volume", [(1.5, "x")]),
        ("2 ATR trailing", [(2.0, "atr")]),
        ("trade MESZ24 and M2K", []),  # digits inside tickers are not numbers
        ("on 2024-03-15", [(20240315.0, "date")]),
        ("EMA 9/21", [(9.0, ""), (21.0, "")]),
    ],
)
def test_extract_numbers_units(text: str, expected: list[tuple[float, str]]):
    got = [(round(n.value, 6), n.unit) for n in extract_numbers(text)]
    assert got == expected


def test_extracted_numbers_are_plain_tuples_with_context():
    [number] = extract_numbers("Stop at 1.5 ATR (14) from entry, take profit later")[:1]
    assert isinstance(number, tuple) and len(number) == 3
    value, unit, context = number
    assert (value, unit) == (1.5, "atr") and context.startswith("Stop at 1.5 ATR")
    assert isinstance(number, ExtractedNumber)


@pytest.mark.parametrize(
    ("text", "template"),
    [
        ("Draw supply and demand zones on QQQ", "zrce"),
        ("ZRCE with a second-chance entry", "zrce"),
        ("Buy a call then convert it into a debit spread", "ghetto_spread"),
        ("ghetto spread on NVDA", "ghetto_spread"),
        ("Breakout on /MNQ after the open", "futures_breakout"),
        ("ES futures gap fill", "futures_breakout"),
        ("GBP/USD London breakout, 20 pips stop", "forex_trend"),
        ("trend following on forex majors", "forex_trend"),
        ("moving average crossover on QQQ", "sma_cross"),
        ("buy the dip and hold", "sma_cross"),  # default
        ("es ist gut, nq", "sma_cross"),  # lower-case words are not futures roots
    ],
)
def test_classify_idea_keywords(text: str, template: str):
    assert classify_idea(text) == template


def test_idea_keywords_explain_the_choice(ideas: list[str]):
    hits = idea_keywords(ideas[1])
    assert "convert to a vertical" in hits["ghetto_spread"] and hits["zrce"] == []


def test_split_ideas_ignores_blank_blocks():
    assert split_ideas("one\n---\n\n---\n two \n--- \n") == ["one", "two"]


def test_offline_provider_is_deterministic_and_says_offline(ideas: list[str]):
    ledger = UsageLedger()
    provider = OfflineProvider(ledger=ledger)
    schema = {"type": "object", "required": ["template", "numbers"]}
    first = provider.complete_json(role="researcher", system="s", prompt=ideas[0], schema=schema, schema_name="facts")
    again = OfflineProvider().complete_json(role="researcher", system="s", prompt=ideas[0], schema=schema,
                                            schema_name="facts")
    assert first.parsed == again.parsed and first.raw_text == again.raw_text
    assert first.provider == "offline" and first.model == "offline-rules-v1"
    assert first.cost_usd == 0.0 and first.schema_errors == ()
    assert first.parsed["template"] == "zrce" and first.parsed["symbols"] == ["SPY"]
    assert first.parsed == extract_facts(ideas[0]) | {"numbers": first.parsed["numbers"]}
    assert ledger.totals().calls == 1 and ledger.total_cost_usd == 0.0


def test_offline_provider_takes_per_role_responders():
    def architect(request: OfflineRequest) -> dict:
        return {"template": classify_idea(request.prompt), "schema": request.schema_name}

    provider = OfflineProvider(responders={"architect": architect})
    schema = {"type": "object", "properties": {"template": {"type": "string"}}, "required": ["template", "name"]}
    result = provider.complete_json(role="architect", system="", prompt="MES breakout", schema=schema,
                                    schema_name="spec")
    assert result.parsed == {"template": "futures_breakout", "schema": "spec"}
    assert any("name" in e for e in result.schema_errors)  # the responder's output is checked like any answer

    provider.register("critic", lambda request: ["not", "a", "dict"])  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="critic"):
        provider.complete_json(role="critic", system="", prompt="x", schema={}, schema_name="c")
