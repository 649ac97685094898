"""The whole seeding through an OpenAI-compatible server named by OPENAI_BASE_URL (issue 15).

The fake answers any prompt the way a local model server would (a responder, not a script): the
researcher from the idea, the architect with the idea's space but one clause dropped from its
record the first time, the fixer with the whole record, the critic with no issues. The real
``search seed`` command and the real OpenAI client run against it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from click.testing import CliRunner
from seeds_llm_fakes import FakeOpenAIServer, openai_ok

from seeds.idea_parser import parse_idea
from seeds.providers import split_ideas
from spec_space.loader import load_space

REPO = Path(__file__).resolve().parents[2]
MES = split_ideas((REPO / "seeds" / "strat_ideas_sample.txt").read_text())[2]
DROPPED = "target 2R."


class LocalModel:
    """Answers chat completions from the prompt, as a model server would."""

    def __init__(self) -> None:
        self.roles: list[str] = []

    def __call__(self, body: dict) -> object:
        system, prompt = body["messages"][0]["content"], body["messages"][1]["content"]
        role = re.match(r"You are the (\w+)", system).group(1).lower()  # type: ignore[union-attr]
        self.roles.append(role)
        if role == "critic":
            return openai_ok({"issues": [{"severity": "info", "message": "reviewed"}]})
        idea = json.loads(re.search(r"<idea>\n(.*?)\n</idea>", prompt, re.S).group(1))  # type: ignore[union-attr]
        parsed = parse_idea(idea, name="from_the_model")
        if role == "researcher":
            return openai_ok({"title": parsed.title, "symbols": parsed.named_symbols, "numbers": []})
        space = json.loads(json.dumps(parsed.space))
        if role == "architect":  # a model that loses a clause on the way
            record = space["provenance"]
            record["clause_map"] = [c for c in record["clause_map"] if c["clause"] != DROPPED]
        return openai_ok(space)


def test_search_seed_against_an_openai_compatible_server(tmp_path: Path, monkeypatch):
    from search.seed_cli import seed

    model = LocalModel()
    server = FakeOpenAIServer(responder=model).start()
    try:
        ideas = tmp_path / "strat_ideas_mes.txt"
        ideas.write_text(MES)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-anything")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("FARM_LLM_CACHE_DIR", str(tmp_path / "llm_cache"))
        monkeypatch.setenv("FARM_MODEL_ARCHITECT", "local-model")
        result = CliRunner().invoke(seed, ["--provider", "openai", "--ideas", str(ideas), "--out", str(tmp_path / "out"),
                                           "--data", str(tmp_path / "no_store"), "--synth-missing",
                                           "--trials", "500"])
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert model.roles == ["researcher", "architect", "fixer", "critic"]
    # the fixer was told which clause the record dropped
    fix_prompt = server.requests[2].body["messages"][1]["content"]
    assert f"{DROPPED!r} is in neither provenance.clause_map nor provenance.unmapped" in fix_prompt
    written = tmp_path / "out" / "mes_opening_range_breakout.yaml"
    space = load_space(written)
    assert space.spec["instrument"] == {"type": "future", "symbol": "MES"}
    record = yaml.safe_load(written.read_text())["provenance"]
    assert record["provider"] == "openai" and record["fix_attempts"] == 1
    assert any(c["clause"] == DROPPED for c in record["clause_map"])
    assert "SYNTHETIC" in record["dry_run_data"]
    # the model named for a local server went over the wire
    assert server.requests[1].body["model"] == "local-model"
