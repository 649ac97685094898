"""The README's path through the command line: synth -> ingest -> spec -> backtest, on a few days."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from search.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_every_subcommand():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("data", "spec", "backtest", "seed"):
        assert f"  {command} " in result.output


def test_synth_ingest_backtest(tmp_path, monkeypatch):
    monkeypatch.setenv("FARM_STUDIES", str(tmp_path / "studies"))
    runner = CliRunner()
    flat, store = tmp_path / "flat", tmp_path / "store"
    result = runner.invoke(
        main,
        [
            "data",
            "synth",
            "--root",
            str(flat),
            "--tickers",
            "SPY",
            "--start",
            "2024-03-04",
            "--end",
            "2024-03-08",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main, ["data", "ingest", "--src", str(flat), "--dst", str(store), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    again = runner.invoke(main, ["data", "ingest", "--src", str(flat), "--dst", str(store), "--workers", "1"])
    assert "0 failed" in again.output and "unchanged" in again.output
    result = runner.invoke(main, ["spec", "validate", str(REPO / "spec_space" / "sma_cross.yaml")])
    assert result.exit_code == 0 and "ok" in result.output
    out = tmp_path / "run"
    result = runner.invoke(
        main,
        [
            "backtest",
            "--spec",
            str(REPO / "spec_space" / "sma_cross.yaml"),
            "--set",
            "fast=5",
            "--data",
            str(store),
            "--from",
            "2024-03-04",
            "--to",
            "2024-03-08",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "sharpe" in result.output and "params: fast=5" in result.output
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    trades = (out / "trades.csv").read_text().splitlines()
    assert metrics["n_trades"] == len(trades) - 1
    assert "plotly" in (out / "equity.html").read_text()[:2_000_000]


def test_backtest_reports_missing_data_clearly(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "backtest",
            "--spec",
            str(REPO / "spec_space" / "sma_cross.yaml"),
            "--data",
            str(tmp_path / "nothing"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "search data ingest" in result.output


def test_corrupt_flat_file_fails_alone(tmp_path):
    runner = CliRunner()
    flat, store = tmp_path / "flat", tmp_path / "store"
    assert (
        runner.invoke(
            main,
            [
                "data",
                "synth",
                "--root",
                str(flat),
                "--tickers",
                "SPY",
                "--start",
                "2024-03-04",
                "--end",
                "2024-03-06",
            ],
        ).exit_code
        == 0
    )
    victim = sorted(flat.rglob("*.csv.gz"))[0]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated download
    result = runner.invoke(
        main, ["data", "ingest", "--src", str(flat), "--dst", str(store), "--workers", "1"]
    )
    assert result.exit_code == 1
    assert victim.name in result.output and "1 failed" in result.output
