"""The seeding agents end to end: real OpenAI / Gemini clients against local fakes, and offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from seeds_llm_kit import TEST_KEY, VendorKit

from seeds.agents import SeedPipeline, critique, offline_provider, provenance, write_space
from seeds.idea_parser import parse_idea
from seeds.providers import ProviderError, extract_facts, split_ideas
from spec_space.loader import load_space
from spec_space.space import DefaultSource

REPO = Path(__file__).resolve().parents[2]
IDEAS = split_ideas((REPO / "seeds" / "strat_ideas_sample.txt").read_text())
ZRCE = IDEAS[0]


def _research_answer() -> dict:
    facts = extract_facts(ZRCE)
    return {**facts, "market": "US options", "timeframe": "1min", "entry_logic": "zone breakout",
            "exit_logic": "tp/sl/trailing", "risk": "premium"}


def _good_space() -> dict:
    """What a model that keeps the idea answers: the space with its whole clause record."""
    space = parse_idea(ZRCE, name="ignored").space
    return json.loads(json.dumps(space, default=str))


def test_a_sum_parameter_gets_the_idea_s_number_through_its_last_term():
    params = parse_idea(ZRCE, name="z").space["params"]
    # "a volume ratio of 1.5", "1.2 is enough the second time": relaxed 1.2, so the gap is 0.3
    assert (params["relaxed_ratio"]["default"], params["volume_ratio_gap"]["default"]) == (1.2, 0.3)
    assert params["volume_ratio"] == {"sum": ["relaxed_ratio", "volume_ratio_gap"]}
    # an idea whose full ratio is below its relaxed one cannot invert them: the gap stays at zero
    inverted = parse_idea(ZRCE.replace("volume ratio of 1.5", "volume ratio of 1.1"), name="z").space
    assert inverted["params"]["volume_ratio_gap"]["default"] == 0.0


def _no_dry_run(space):  # the dry-run is exercised by the offline test below
    return {"n_trades": 1.0}


def test_good_answer_becomes_a_valid_space(vendor: VendorKit, tmp_path):
    vendor.server.enqueue(vendor.ok(_research_answer()), vendor.ok(_good_space()),
                          vendor.ok({"issues": [{"severity": "info", "message": "looks fine"}]}))
    provider = vendor.make()
    pipeline = SeedPipeline(provider, dry_run=_no_dry_run)
    outcome = pipeline.seed_idea(ZRCE, source="ideas.txt", index=1)
    assert outcome.accepted and outcome.attempts == 1
    path = write_space(outcome.space, provenance(outcome, provider=provider, text=ZRCE, calls=pipeline.calls), tmp_path)
    space = load_space(path)
    # volume_ratio is relaxed_ratio + volume_ratio_gap (a sum: never below the relaxed ratio)
    assert space.resolved(space.suggest(DefaultSource(space)))["volume_ratio"] == 1.5
    record = yaml.safe_load(path.read_text())["provenance"]
    assert record["provider"] == vendor.name and record["models"]["architect"] == vendor.architect_model
    assert TEST_KEY not in path.read_text()
    assert [vendor.model_in_request(r) for r in vendor.server.requests][:2] == [vendor.researcher_model,
                                                                               vendor.architect_model]


def test_schema_breaking_answer_goes_through_the_fix_loop(vendor: VendorKit):
    broken = _good_space()
    broken["spec"]["exits"]["stop_lose"] = {"pct": 0.07}  # a typo: unknown keys are errors
    vendor.server.enqueue(vendor.ok(_research_answer()), vendor.ok(broken), vendor.ok(_good_space()),
                          vendor.ok({"issues": []}))
    pipeline = SeedPipeline(vendor.make(), dry_run=_no_dry_run)
    outcome = pipeline.seed_idea(ZRCE, source="ideas.txt", index=1)
    assert outcome.accepted and outcome.attempts == 2
    assert "stop_lose" in outcome.errors[0]
    _, fix_prompt = vendor.texts_sent(vendor.server.requests[2])
    assert "stop_lose" in fix_prompt and "<error>" in fix_prompt  # the exact error went back


def test_unfixable_answer_is_reported_after_bounded_retries(vendor: VendorKit):
    broken = _good_space()
    broken["spec"]["entry"]["long"] = "zone_breakout_now('up')"
    vendor.server.enqueue(vendor.ok(_research_answer()), *[vendor.ok(broken)] * 3)
    pipeline = SeedPipeline(vendor.make(), dry_run=_no_dry_run, max_fixes=2)
    outcome = pipeline.seed_idea(ZRCE, source="ideas.txt", index=1)
    # the fixer answered the same broken space: the loop stops instead of paying for the same question
    assert not outcome.accepted and outcome.attempts == 1
    assert "zone_breakout_now" in outcome.errors[0] and "unchanged" in outcome.errors[-1]
    assert len(vendor.server.requests) == 3


def test_fix_loop_is_bounded(vendor: VendorKit):
    answers = []
    for i in range(3):
        broken = _good_space()
        broken["spec"]["entry"]["long"] = f"zone_breakout_now('up', {i})"
        answers.append(vendor.ok(broken))
    vendor.server.enqueue(vendor.ok(_research_answer()), *answers)
    outcome = SeedPipeline(vendor.make(), dry_run=_no_dry_run, max_fixes=2).seed_idea(ZRCE, source="x", index=1)
    assert not outcome.accepted and outcome.attempts == 3 and len(outcome.errors) == 3
    assert len(vendor.server.requests) == 4  # researcher, architect, two fixer rounds


def test_runtime_error_in_dry_run_goes_to_the_fixer(vendor: VendorKit):
    repaired = _good_space()
    repaired["data"]["start"] = "2024-02-01"
    vendor.server.enqueue(vendor.ok(_research_answer()), vendor.ok(_good_space()), vendor.ok(repaired),
                          vendor.ok({"issues": []}))
    calls = []

    def flaky(space):
        calls.append(space.name)
        if len(calls) == 1:
            raise LookupError("no SPY bars between 2024-01-02 and 2024-01-22")
        return {"n_trades": 3.0}

    outcome = SeedPipeline(vendor.make(), dry_run=flaky).seed_idea(ZRCE, source="x", index=1)
    assert outcome.accepted and outcome.attempts == 2 and "no SPY bars" in outcome.errors[0]


def test_500_from_the_provider_is_a_clear_error(vendor: VendorKit):
    vendor.server.enqueue(*[vendor.error(500, "internal")] * 3)
    with pytest.raises(ProviderError) as info:
        SeedPipeline(vendor.make(), dry_run=_no_dry_run).seed_idea(ZRCE, source="x", index=1)
    assert "500" in str(info.value) and TEST_KEY not in str(info.value)


def test_offline_pipeline_maps_numbers_and_runs_a_dry_run(tmp_path):
    from seeds.dry_run import DryRunner

    provider = offline_provider()
    pipeline = SeedPipeline(provider, dry_run=DryRunner(None, cache_dir=tmp_path / "cache", synth_missing=True))
    outcome = pipeline.seed_idea(IDEAS[1], source="ideas.txt", index=2)  # the ghetto spread
    assert outcome.accepted, outcome.errors
    params = outcome.space.params
    assert params["delta"].default == 0.25 and params["dte"].default == 7
    assert params["underlying_move"].default == 0.015 and params["max_hold"].default == 60
    assert outcome.dry_run is not None and "n_trades" in outcome.dry_run
    path = write_space(outcome.space, provenance(outcome, provider=provider, text=IDEAS[1], calls=pipeline.calls),
                       tmp_path)
    text = path.read_text()
    record = yaml.safe_load(text)["provenance"]
    assert "OFFLINE provider" in text and record["offline"] is True
    # generated data is never passed off as market data
    assert "SYNTHETIC" in text and "SYNTHETIC" in record["dry_run_data"]
    assert any(c["clause"] == "7 DTE" and c["fields"] == ["instrument.legs[0].dte"] for c in record["clause_map"])
    assert load_space(path).name == outcome.space.name


def test_critic_flags_budget_and_costs():
    space = _good_space()
    space["spec"]["costs"] = {}
    messages = [i["message"] for i in critique(space, trials=50)]
    assert any("parameters for a budget of 50 trials" in m for m in messages)
    assert any("costs ignored" in m for m in messages)


def test_offline_dry_run_without_data_names_the_ticker_and_the_command(tmp_path):
    from seeds.dry_run import DryRunner

    pipeline = SeedPipeline(offline_provider(), dry_run=DryRunner(tmp_path / "store", cache_dir=tmp_path / "c"))
    outcome = pipeline.seed_idea(IDEAS[2], source="ideas.txt", index=3)  # MES
    assert not outcome.accepted and outcome.attempts == 1  # offline: a rejection, no fixer round
    error = outcome.errors[0]
    assert "no future data for MES" in error and "search data ingest" in error and "--synth-missing" in error
    assert "search data synth" in error and "--tickers MES" in error
    assert not (tmp_path / "c").exists()  # nothing generated unless asked


def test_zero_trades_is_an_error_not_a_space():
    pipeline = SeedPipeline(offline_provider(), dry_run=lambda space: {"n_trades": 0.0, "sessions": 10.0})
    outcome = pipeline.seed_idea(IDEAS[2], source="ideas.txt", index=3)
    assert not outcome.accepted and outcome.space is None
    assert "0 trades on MES" in outcome.errors[0]


def test_offline_rejects_an_idea_it_cannot_read_and_names_its_clauses():
    idea = "IDEA: fade the gap\nWhen TSLA gaps up more than 2% sell it short. Stop 1%, target 2%."
    outcome = SeedPipeline(offline_provider(), dry_run=_no_dry_run).seed_idea(idea, source="x", index=1)
    assert not outcome.accepted and outcome.space is None
    assert any("no entry rule" in e for e in outcome.errors)
    assert any("gap" in e and "prior close" in e for e in outcome.errors)


def test_critic_lists_unmapped_clauses():
    space = json.loads(json.dumps(parse_idea(IDEAS[4], name="s").space, default=str))
    messages = [i["message"] for i in critique(space, trials=500)]
    assert any(m.startswith("not mapped: 'Check it against buy and hold.'") for m in messages)


def test_a_model_that_drops_a_clause_is_sent_back_with_the_clause_named(vendor: VendorKit):
    dropped = _good_space()
    record = dropped["provenance"]
    record["clause_map"] = [c for c in record["clause_map"] if c["clause"] != "SL 7%."]
    vendor.server.enqueue(vendor.ok(_research_answer()), vendor.ok(dropped), vendor.ok(_good_space()),
                          vendor.ok({"issues": []}))
    outcome = SeedPipeline(vendor.make(), dry_run=_no_dry_run).seed_idea(ZRCE, source="x", index=1)
    assert outcome.accepted and outcome.attempts == 2
    assert "'SL 7%.'" in outcome.errors[0] and "neither" in outcome.errors[0]
    _, fix_prompt = vendor.texts_sent(vendor.server.requests[2])
    assert "SL 7%." in fix_prompt and "<error>" in fix_prompt
    # the architect was asked for the record: the numbered clauses went out, the schema requires it
    _, architect_prompt = vendor.texts_sent(vendor.server.requests[1])
    assert "<clauses>\n1. ZRCE second chance on SPY 0DTE\n" in architect_prompt
    assert "provenance" in vendor.schema_sent(vendor.server.requests[1])["required"]


def test_a_symbol_the_idea_does_not_name_is_an_error(vendor: VendorKit):
    invented = _good_space()
    invented["spec"]["instrument"]["symbol"] = "IDEA"
    vendor.server.enqueue(vendor.ok(_research_answer()), vendor.ok(invented), vendor.ok(invented))
    outcome = SeedPipeline(vendor.make(), dry_run=_no_dry_run).seed_idea(ZRCE, source="x", index=1)
    assert not outcome.accepted
    assert "instrument 'IDEA' is not named in the idea (it names SPY)" in outcome.errors[0]


def test_an_unmapped_entry_clause_is_an_error(vendor: VendorKit):
    lazy = _good_space()
    record = lazy["provenance"]
    moved = [c for c in record["clause_map"] if c["clause"].startswith("After 10:30")]
    record["clause_map"] = [c for c in record["clause_map"] if c not in moved]
    record["unmapped"] += [{"clause": c["clause"], "reason": "too hard"} for c in moved]
    vendor.server.enqueue(vendor.ok(_research_answer()), vendor.ok(lazy), vendor.ok(_good_space()),
                          vendor.ok({"issues": []}))
    outcome = SeedPipeline(vendor.make(), dry_run=_no_dry_run).seed_idea(ZRCE, source="x", index=1)
    assert outcome.accepted and "reads as an entry rule but is unmapped" in outcome.errors[0]


def test_zero_trades_on_daily_bars_says_when_the_look_back_outruns_the_data():
    pipeline = SeedPipeline(offline_provider(), dry_run=lambda space: {"n_trades": 0.0, "sessions": 125.0})
    outcome = pipeline.seed_idea(IDEAS[4], source="ideas.txt", index=5)  # the 50/200-day SMA cross
    assert not outcome.accepted
    assert "0 trades on SPY in 125 session(s)" in outcome.errors[0] and "(200 daily bars)" in outcome.errors[0]


def test_critic_compares_window_end_and_flat_time_within_the_trading_session():
    import spec_space

    space = yaml.safe_load((Path(spec_space.__file__).parent / "forex_trend.yaml").read_text())

    def warned(window_end: str, flat: str) -> bool:
        space["spec"]["entry"]["window_end"] = window_end
        space["spec"]["exits"]["eod_flat_time"] = flat
        return any("entries allowed until" in i["message"] for i in critique(space, trials=500))

    assert not warned("20:00", "16:55")  # the forex session opens at 17:00: 20:00 comes before 16:55
    assert warned("12:00", "11:00")
