"""The OpenAI and Gemini providers, through the real SDKs, against local fake servers.

Most tests run one body against both vendors (the ``vendor`` fixture is parametrized).
"""

from __future__ import annotations

import json
import os
import socket
import traceback
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from seeds_llm_kit import TEST_KEY, SleepRecorder, VendorKit

from seeds.providers import (
    GeminiProvider,
    LLMProvider,
    MissingAPIKeyError,
    ModelRoutes,
    OfflineProvider,
    OpenAIProvider,
    ProviderError,
    ProviderResponseError,
    RetryPolicy,
    UsageLedger,
    cost_usd,
    gemini_schema,
    make_provider,
    price_for,
)
from seeds.providers._retry import parse_retry_after

SCHEMA = {
    "type": "object",
    "properties": {"template": {"type": "string"}, "take_profit_pct": {"type": "number"}},
    "required": ["template", "take_profit_pct"],
}
ANSWER = {"template": "zrce", "take_profit_pct": 10.0}
SYSTEM = "You turn trading ideas into strategy specs."
PROMPT = "ZRCE on SPY 0DTE, TP 10%, SL 7%."


def ask(provider: LLMProvider, role: str = "researcher", prompt: str = PROMPT):
    return provider.complete_json(role=role, system=SYSTEM, prompt=prompt, schema=SCHEMA, schema_name="idea")


# ------------------------------------------------------------------------------ both vendors


def test_good_answer_is_parsed_and_priced(vendor: VendorKit):
    vendor.server.enqueue(vendor.ok(ANSWER, model=vendor.researcher_model, prompt_tokens=1000,
                                    **{"completion_tokens" if vendor.name == "openai" else "output_tokens": 500}))
    provider = vendor.make()
    result = ask(provider)

    assert result.parsed == ANSWER
    assert result.provider == vendor.name and result.model == vendor.researcher_model
    assert (result.input_tokens, result.output_tokens) == (1000, 500)
    expected_cost, note = cost_usd(vendor.researcher_model, 1000, 500)
    assert note is None and expected_cost > 0
    assert result.cost_usd == pytest.approx(expected_cost)
    assert result.cached is False and result.attempts == 1 and result.schema_errors == ()

    [request] = vendor.server.requests
    assert vendor.key_sent(request) == TEST_KEY
    assert vendor.schema_sent(request) == SCHEMA
    assert vendor.texts_sent(request) == (SYSTEM, PROMPT)
    assert vendor.model_in_request(request) == vendor.researcher_model


def test_429_then_success_is_retried_honouring_retry_after(vendor: VendorKit):
    vendor.server.enqueue(vendor.error(429, "slow down", {"Retry-After": "7"}), vendor.ok(ANSWER))
    result = ask(vendor.make())

    assert result.parsed == ANSWER and result.attempts == 2
    assert len(vendor.server.requests) == 2
    assert vendor.sleeps.delays == [7.0]  # the server's Retry-After, not our backoff


def test_503_is_retried_with_backoff(vendor: VendorKit):
    vendor.server.enqueue(vendor.error(503, "overloaded"), vendor.error(503, "overloaded"), vendor.ok(ANSWER))
    result = ask(vendor.make())

    assert result.attempts == 3 and len(vendor.server.requests) == 3
    first, second = vendor.sleeps.delays
    assert 0.01 <= first <= 0.01 * 1.25 and 0.02 <= second <= 0.02 * 1.25  # base 0.01, doubled, +<=25 % jitter


def test_persistent_500_gives_a_clear_error_without_the_key(vendor: VendorKit):
    # the fake echoes the key in its error message, as some proxies do: it must still not leak
    for _ in range(3):
        vendor.server.enqueue(vendor.error(500, f"internal error while serving key {TEST_KEY}"))
    with pytest.raises(ProviderError) as caught:
        ask(vendor.make())

    error = caught.value
    message = str(error)
    assert (error.provider, error.model, error.status, error.attempts) == (vendor.name, vendor.researcher_model, 500, 3)
    assert vendor.name in message and vendor.researcher_model in message
    assert "HTTP 500" in message and "after 3 attempts" in message and "re-run later" in message
    assert TEST_KEY not in message
    assert TEST_KEY not in "".join(traceback.format_exception(error))
    assert "***" in message
    assert len(vendor.server.requests) == 3


def test_400_is_not_retried(vendor: VendorKit):
    vendor.server.enqueue(vendor.error(400, "schema uses an unsupported keyword"))
    with pytest.raises(ProviderError) as caught:
        ask(vendor.make())
    assert caught.value.status == 400 and caught.value.attempts == 1
    assert "unsupported keyword" in str(caught.value)
    assert len(vendor.server.requests) == 1 and vendor.sleeps.delays == []


def test_connection_refused_is_retried_then_reported(vendor: VendorKit):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}" + ("/v1" if vendor.name == "openai" else "")
    with pytest.raises(ProviderError) as caught:
        ask(vendor.make(base_url=base))
    assert caught.value.status is None and caught.value.attempts == 3
    assert "connection error or timeout" in str(caught.value) and base in str(caught.value)
    assert len(vendor.sleeps.delays) == 2


def test_cache_hit_makes_no_request_and_costs_nothing(vendor: VendorKit):
    vendor.server.enqueue(vendor.ok(ANSWER))
    first = ask(vendor.make())
    assert first.cached is False and first.cost_usd > 0

    ledger = UsageLedger()
    second = ask(vendor.make(ledger=ledger))  # a new provider, same cache directory: a re-run

    assert len(vendor.server.requests) == 1
    assert second.cached is True and second.parsed == first.parsed and second.raw_text == first.raw_text
    assert (second.cost_usd, second.input_tokens, second.output_tokens) == (0.0, 0, 0)
    assert second.cache_key == first.cache_key
    [row] = ledger.rows()
    assert (row.calls, row.cached_calls, row.cost_usd) == (1, 1, 0.0)

    # any change in the inputs is a different question
    vendor.server.enqueue(vendor.ok(ANSWER))
    third = ask(vendor.make(), prompt=PROMPT + " Max hold 15 minutes.")
    assert third.cached is False and len(vendor.server.requests) == 2


def test_ledger_sums_tokens_and_cost_per_model_and_role(vendor: VendorKit):
    out = "completion_tokens" if vendor.name == "openai" else "output_tokens"
    vendor.server.enqueue(
        vendor.ok(ANSWER, prompt_tokens=1000, **{out: 200}),
        vendor.ok(ANSWER, prompt_tokens=3000, **{out: 700}),
        vendor.ok(ANSWER, prompt_tokens=500, **{out: 100}),
    )
    ledger = UsageLedger()
    provider = vendor.make(ledger=ledger, cache_dir=None)
    ask(provider, "researcher", "idea one")
    ask(provider, "architect", "idea one")
    ask(provider, "researcher", "idea two")

    rows = {(r.model, r.role): r for r in ledger.rows()}
    research = rows[(vendor.researcher_model, "researcher")]
    architect = rows[(vendor.architect_model, "architect")]
    assert (research.calls, research.input_tokens, research.output_tokens) == (2, 1500, 300)
    assert (architect.calls, architect.input_tokens, architect.output_tokens) == (1, 3000, 700)
    expected = cost_usd(vendor.researcher_model, 1500, 300)[0] + cost_usd(vendor.architect_model, 3000, 700)[0]
    assert ledger.total_cost_usd == pytest.approx(expected)
    assert ledger.totals().calls == 3

    table = ledger.summary_table()
    assert vendor.researcher_model in table and vendor.architect_model in table
    assert f"{expected:.4f}" in table.splitlines()[-1]
    assert json.loads(json.dumps(ledger.to_dict()))["totals"]["calls"] == 3


def test_schema_breaking_answer_is_reported_and_not_cached(vendor: VendorKit):
    broken = {"template": "zrce"}  # take_profit_pct missing
    vendor.server.enqueue(vendor.ok(broken), vendor.ok(ANSWER))
    provider = vendor.make()
    first = ask(provider)
    assert first.parsed == broken
    assert any("take_profit_pct" in e for e in first.schema_errors)

    second = ask(provider)  # asked again, not replayed from the cache
    assert second.cached is False and second.schema_errors == () and len(vendor.server.requests) == 2


def test_non_json_answer_raises_and_is_still_accounted(vendor: VendorKit):
    vendor.server.enqueue(vendor.ok("Sure! Here is your strategy: buy low, sell high."))
    ledger = UsageLedger()
    with pytest.raises(ProviderResponseError) as caught:
        ask(vendor.make(ledger=ledger))
    assert "not valid JSON" in str(caught.value) and "buy low" in caught.value.raw_text
    totals = ledger.totals()
    assert (totals.calls, totals.failed_calls) == (1, 1) and totals.input_tokens == 100 and totals.cost_usd > 0


def test_fenced_json_answer_is_accepted(vendor: VendorKit):
    vendor.server.enqueue(vendor.ok("```json\n" + json.dumps(ANSWER) + "\n```"))
    assert ask(vendor.make()).parsed == ANSWER


def test_missing_key_names_the_variable(vendor: VendorKit, tmp_path: Path):
    with pytest.raises(MissingAPIKeyError) as caught:
        vendor.make(api_key=None, env_file=tmp_path / "absent.env")
    expected = "OPENAI_API_KEY" if vendor.name == "openai" else "GEMINI_API_KEY or GOOGLE_API_KEY"
    assert expected in str(caught.value) and "offline" in str(caught.value)


def test_key_from_dotenv_and_environment_wins(vendor: VendorKit, tmp_path: Path, monkeypatch):
    var = vendor.provider_cls.key_env_vars[0]
    env_file = tmp_path / ".env"
    env_file.write_text(f"{var}=key-from-dotenv-1111\n")
    vendor.server.enqueue(vendor.ok(ANSWER), vendor.ok(ANSWER))

    ask(vendor.make(api_key=None, cache_dir=None))  # found by searching from the working directory
    assert vendor.key_sent(vendor.server.requests[-1]) == "key-from-dotenv-1111"
    assert var not in os.environ  # read, never loaded into the process environment

    monkeypatch.setenv(var, "key-from-environment-2222")
    ask(vendor.make(api_key=None, cache_dir=None, env_file=env_file))
    assert vendor.key_sent(vendor.server.requests[-1]) == "key-from-environment-2222"


def test_base_url_from_environment(vendor: VendorKit, monkeypatch):
    monkeypatch.setenv(vendor.provider_cls.base_url_env_vars[0], vendor.server.base_url)
    vendor.server.enqueue(vendor.ok(ANSWER))
    provider = vendor.make(base_url=None)
    assert ask(provider).parsed == ANSWER and provider.base_url == vendor.server.base_url


def test_env_routes_pick_the_model(vendor: VendorKit, monkeypatch):
    model = "gpt-4.1-mini" if vendor.name == "openai" else "gemini-2.5-flash-lite"
    monkeypatch.setenv("FARM_MODEL_ARCHITECT", model)
    vendor.server.enqueue(vendor.ok(ANSWER))
    result = ask(vendor.make(), role="architect")
    assert result.model == model and vendor.model_in_request(vendor.server.requests[0]) == model


def test_every_provider_satisfies_the_protocol(vendor: VendorKit):
    assert isinstance(vendor.make(), LLMProvider)
    assert isinstance(OfflineProvider(), LLMProvider)


# ------------------------------------------------------------------------------ vendor specifics


class _Leg(BaseModel):
    right: str
    delta: float = 0.25


class _Spec(BaseModel):
    name: str
    leg: _Leg = Field(description="the option leg")


def test_gemini_gets_a_schema_without_ref_siblings(vendor: VendorKit):
    schema = _Spec.model_json_schema()
    assert any("$ref" in p and len(p) > 1 for p in schema["properties"].values())  # what pydantic writes
    cleaned = gemini_schema(schema)
    assert cleaned["properties"]["leg"] == {"$ref": "#/$defs/_Leg"}
    assert cleaned["$defs"] == schema["$defs"]

    vendor.server.enqueue(vendor.ok({"name": "x", "leg": {"right": "CALL"}}))
    result = vendor.make().complete_json(role="architect", system="s", prompt="p", schema=schema, schema_name="spec")
    sent = vendor.schema_sent(vendor.server.requests[0])
    assert sent == (schema if vendor.name == "openai" else cleaned)
    assert result.schema_errors == ()


def test_gemini_thinking_tokens_are_billed_as_output(tmp_path: Path):
    from seeds_llm_fakes import FakeGeminiServer, gemini_ok

    with FakeGeminiServer([gemini_ok(ANSWER, prompt_tokens=100, output_tokens=50, thoughts_tokens=400)]) as server:
        provider = GeminiProvider(api_key=TEST_KEY, base_url=server.base_url, cache_dir=None)
        result = ask(provider)
    assert result.output_tokens == 450
    assert result.cost_usd == pytest.approx(cost_usd("gemini-2.5-flash", 100, 450)[0])


def test_openai_strict_flag_and_schema_name_go_over_the_wire():
    from seeds_llm_fakes import FakeOpenAIServer, openai_ok

    with FakeOpenAIServer([openai_ok(ANSWER)]) as server:
        provider = OpenAIProvider(api_key=TEST_KEY, base_url=server.base_url, cache_dir=None, strict=True)
        provider.complete_json(role="critic", system="s", prompt="p", schema=SCHEMA, schema_name="ZRCE spec v1")
    sent = server.requests[0].body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["strict"] is True and sent["json_schema"]["name"] == "ZRCE_spec_v1"


def test_finish_reason_length_is_an_unusable_answer():
    from seeds_llm_fakes import FakeOpenAIServer, openai_ok

    with FakeOpenAIServer([openai_ok('{"template": "zr', finish_reason="length")]) as server:
        provider = OpenAIProvider(api_key=TEST_KEY, base_url=server.base_url, cache_dir=None)
        with pytest.raises(ProviderResponseError, match="cut off"):
            ask(provider)


# ------------------------------------------------------------------------------ routes, prices, retry


def test_routes_defaults_and_environment_overrides():
    routes = ModelRoutes.from_env({
        "FARM_MODEL_ARCHITECT": "gpt-5",  # an OpenAI name: only the OpenAI route changes
        "FARM_MODEL_CRITIC": "llama-3.1-70b",  # a vendor-neutral name: every remote provider
        "FARM_GEMINI_MODEL_FIXER": "gemini-2.5-flash",  # provider-specific
    })
    assert routes.model_for("openai", "researcher") == "gpt-4o-mini"
    assert routes.model_for("openai", "architect") == "gpt-5"
    assert routes.model_for("gemini", "architect") == "gemini-2.5-pro"
    assert routes.model_for("gemini", "critic") == routes.model_for("openai", "critic") == "llama-3.1-70b"
    assert routes.model_for("gemini", "fixer") == "gemini-2.5-flash"
    assert routes.model_for("offline", "architect") == "offline-rules-v1"
    with pytest.raises(ValueError, match="unknown agent role 'coder'.*known roles"):
        routes.model_for("openai", "coder")
    assert routes.with_model("openai", "coder", "gpt-4.1").model_for("openai", "coder") == "gpt-4.1"


def test_prices_cover_snapshots_and_flag_unknown_models():
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini")
    assert price_for("gpt-4.1-mini") != price_for("gpt-4.1")
    assert price_for("gpt-4o-audio-preview") is None  # a different family, not a gpt-4o snapshot
    assert cost_usd("gpt-4o-mini", 1_000_000, 1_000_000) == (pytest.approx(0.75), None)
    cost, note = cost_usd("my-local-model", 1000, 1000)
    assert cost == 0.0 and "my-local-model" in note and "PRICES_PER_MTOK" in note


def test_retry_after_forms():
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, now=1445412500.0) == 10.0
    assert parse_retry_after({"Retry-After": "soon"}) is None and parse_retry_after(None) is None


def test_retry_policy_bounds_and_validation():
    import random

    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.0, max_retry_after=30.0, sleep=SleepRecorder())
    rng = random.Random(0)
    assert [policy.delay(n, None, rng) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(1, 600.0, rng) == 30.0  # Retry-After honoured up to the cap
    assert RetryPolicy.from_env({"FARM_LLM_MAX_ATTEMPTS": "7"}).max_attempts == 7
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="FARM_LLM_MAX_ATTEMPTS"):
        RetryPolicy.from_env({"FARM_LLM_MAX_ATTEMPTS": "many"})


def test_make_provider_by_name(monkeypatch):
    assert make_provider().name == "offline"  # no keys needed on a fresh checkout
    monkeypatch.setenv("FARM_LLM_PROVIDER", "offline")
    assert isinstance(make_provider(), OfflineProvider)
    with pytest.raises(ValueError, match="unknown LLM provider 'claude'.*gemini.*offline.*openai"):
        make_provider("claude")
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        make_provider("openai", env_file="/nonexistent/.env")
    provider = make_provider("gemini", api_key=TEST_KEY, cache_dir=None)
    assert isinstance(provider, GeminiProvider) and TEST_KEY not in repr(provider)


def test_default_cache_dir_is_under_studies(tmp_path: Path, monkeypatch):
    provider = OpenAIProvider(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1")
    assert provider.cache is not None and provider.cache.directory == Path("studies/.llm_cache")
    monkeypatch.setenv("FARM_LLM_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert OpenAIProvider(api_key=TEST_KEY).cache.directory == tmp_path / "elsewhere"
