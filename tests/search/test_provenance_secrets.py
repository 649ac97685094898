"""No secret reaches anything stored, and no command writes into the working directory.

Fake credentials are put in the environment; then the commands run from an empty working directory as a
user would: seed, run, best, gate, backtest, reproduce, confirm, report. Every stored byte (the Optuna
SQLite database and its WAL, every file under the studies folder, the report, the seeded spaces) is
searched for the secret values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from search.cli import main
from tests.search.conftest import write_space

SECRETS = {
    "OPENAI_API_KEY": "sk-fake-openai-9f8e7d6c5b4a39281706",
    "GEMINI_API_KEY": "AIzaFakeGeminiKey-0123456789abcdef",
    "TRADIER_API_KEY": "tradier-fake-token-5566778899aabb",
    "TRADELOCKER_PASSWORD": "TL-fake-passw0rd-!x7Q",
    "TRADELOCKER_USERNAME": "fake.trader@example.com",
    "POLYGON_API_KEY": "polygon-fake-key-1357924680",
    "FARM_DEPLOYMENTS_DB": "postgresql://farm:PgFakeS3cretPass@db.example.com:5432/farm",
    "FARM_DATABASE_URL": "postgresql://reader:AnotherFakePgPass99@db.example.com/farm",
}
#: The parts that must never appear (whole values, and the bare passwords inside the URLs).
NEEDLES = [*SECRETS.values(), "PgFakeS3cretPass", "AnotherFakePgPass99"]


def _run(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_nothing_stored_holds_a_secret_and_nothing_lands_in_the_working_directory(
    tmp_path: Path, sample_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    studies = tmp_path / "studies"
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FARM_STUDIES", str(studies))
    monkeypatch.setenv("FARM_LLM_PROVIDER", "offline")
    monkeypatch.chdir(cwd)
    space = write_space(
        tmp_path,
        "secret_small",
        data={"start": "2024-01-02", "end": "2024-01-17"},
        walk_forward={"scheme": "rolling", "train_days": 3, "test_days": 2, "embargo_days": 0, "folds": 2},
        objectives=[{"metric": "sharpe", "direction": "maximize"}],
        constraints=[],
        params={"fast": {"int": [3, 8]}, "slow": {"int": [20, 30], "step": 5}},
    )
    ideas = tmp_path / "ideas.txt"
    ideas.write_text(
        "Buy SPY when the 10 minute moving average crosses above the 50 minute one; sell on the cross "
        "down; 0.5% stop.\n"
    )
    report_dir = tmp_path / "report"
    seeded = tmp_path / "seeded"

    steps = [
        ["seed", "--ideas", str(ideas), "--provider", "offline", "--out", str(seeded), "--data", sample_store],
        ["run", "--space", str(space), "--trials", "8", "--no-ray", "--workers", "1", "--data", sample_store,
         "--no-progress"],
        ["best", "--study", "secret_small"],
        ["gate", "--study", "secret_small", "--top", "2"],
        ["backtest", "--spec", str(space), "--data", sample_store, "--set", "fast=5"],
        ["reproduce", "--study", "secret_small", "--trial", "0"],
        ["confirm", "--study", "secret_small", "--trial", "0"],
        ["report", "--study", "secret_small", "--out", str(report_dir)],
    ]  # fmt: skip
    for args in steps:
        result = _run(*args)
        # gate and confirm may reject (exit 1): what matters here is what they wrote
        assert result.exit_code in (0, 1), (args, result.output)
        assert "Traceback" not in result.output, (args, result.output)

    assert sorted(p.name for p in cwd.iterdir()) == [], "a command wrote into the working directory"

    # the run folder of the backtest carries provenance and settings
    (run,) = (studies / "backtests").iterdir()
    provenance = json.loads((run / "provenance.json").read_text())
    settings = json.loads((run / "settings.json").read_text())
    assert provenance["spec"]["entry"]["long"].startswith("crosses_above(sma(close, 5)")
    assert (
        provenance["data_manifest_hash"]
        and provenance["engine"] == "fast"
        and provenance["fill_model_version"]
    )
    assert set(provenance["packages"]) >= {"optuna", "lumibot", "numba", "polars", "ray"}
    assert provenance["project_version"] and "space_hash" in provenance and "seed" in provenance
    assert settings["engine"] == "fast" and settings["window"] == ["2024-01-02", "2024-01-17"]
    assert settings["data_root"] == str(Path(sample_store)) and settings["params"]["fast"] == 5

    # the report's provenance table: the code version, the data's source files, the reproduction
    html = (report_dir / "index.html").read_text()
    assert f"strategy-search-farm {provenance['project_version']}" in html
    assert "data source files" in html and "trial 0: passed" in html

    stored = [p for p in studies.rglob("*") if p.is_file()]
    stored += [p for p in report_dir.rglob("*") if p.is_file()] + [
        p for p in seeded.rglob("*") if p.is_file()
    ]
    names = {p.name for p in stored}
    assert {"farm.db", "index.html", "provenance.json", "settings.json", "trial_0.json"} <= names
    assert any(p.suffix == ".npz" for p in stored) and any(p.suffix == ".yaml" for p in stored)
    for path in stored:
        data = path.read_bytes()
        for needle in NEEDLES:
            assert needle.encode() not in data, f"a secret ({needle[:6]}...) was written to {path}"
