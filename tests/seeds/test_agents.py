"""The seeding agents end to end: real OpenAI / Gemini clients against local fakes, and offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from seeds_llm_kit import TEST_KEY, VendorKit

from seeds.agents import SeedPipeline, critique, offline_provider, provenance, write_space
from seeds.providers import ProviderError, extract_facts, split_ideas
from seeds.templates import fill_template
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
    space, _ = fill_template(extract_facts(ZRCE), name="ignored", description="ZRCE from a model")
    return json.loads(json.dumps(space, default=str))


def test_a_sum_parameter_gets_the_idea_s_number_through_its_last_term():
    space, notes = fill_template(extract_facts(ZRCE), name="z", description="z")
    params = space["params"]
    # "a volume ratio of 1.5", "1.2 is enough the second time": relaxed 1.2, so the gap is 0.3
    assert (params["relaxed_ratio"]["default"], params["volume_ratio_gap"]["default"]) == (1.2, 0.3)
    assert any(n.startswith("volume_ratio = 1.5") and "volume_ratio_gap = 0.3" in n for n in notes)
    # an idea whose full ratio is below its relaxed one cannot invert them: the gap stays at zero
    facts = extract_facts(ZRCE.replace("volume ratio of 1.5", "volume ratio of 1.1"))
    inverted, _ = fill_template(facts, name="z", description="z")
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
    pipeline = SeedPipeline(provider, dry_run=DryRunner(None, cache_dir=tmp_path / "cache"))
    outcome = pipeline.seed_idea(IDEAS[1], source="ideas.txt", index=2)  # the ghetto spread
    assert outcome.accepted, outcome.errors
    params = outcome.space.params
    assert params["delta"].default == 0.25 and params["dte"].default == 7
    assert params["underlying_move"].default == 0.015 and params["max_hold"].default == 60
    assert outcome.dry_run is not None and "n_trades" in outcome.dry_run
    path = write_space(outcome.space, provenance(outcome, provider=provider, text=IDEAS[1], calls=pipeline.calls),
                       tmp_path)
    text = path.read_text()
    assert "OFFLINE provider" in text and yaml.safe_load(text)["provenance"]["offline"] is True
    assert load_space(path).name == outcome.space.name


def test_critic_flags_budget_and_costs():
    space = _good_space()
    space["spec"]["costs"] = {}
    messages = [i["message"] for i in critique(space, trials=50)]
    assert any("parameters for a budget of 50 trials" in m for m in messages)
    assert any("costs ignored" in m for m in messages)
