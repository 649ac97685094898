"""`search dashboard` serves the study (API and page in headless Chromium); `search studies` / `best` print it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from search.run import RunConfig, run_search
from search.run_cli import best, dashboard, run, studies

# the four commands as `search` registers them, without importing every other sub-command's module
main = click.Group("search", commands={c.name: c for c in (run, studies, best, dashboard)})


def test_the_search_cli_registers_the_commands():
    from search.cli import main as search_main

    for command in (run, studies, best, dashboard):
        assert search_main.get_command(click.Context(search_main), command.name) is command


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def studies_root(tmp_path_factory, space_file, sample_store) -> Path:
    root = tmp_path_factory.mktemp("dash") / "studies"
    config = RunConfig(
        space_path=space_file,
        trials=5,
        use_ray=False,
        workers=1,
        data_root=sample_store,
        studies_root=root,
        progress=False,
    )
    run_search(config, echo=lambda _: None)
    return root


def test_studies_and_best_print_the_study(studies_root, monkeypatch):
    monkeypatch.setenv("FARM_STUDIES", str(studies_root))
    runner = CliRunner()
    listed = runner.invoke(main, ["studies"])
    assert listed.exit_code == 0, listed.output
    assert "sma_small" in listed.output and "sharpe:max" in listed.output
    best = runner.invoke(main, ["best", "--study", "sma_small", "--top", "3"])
    assert best.exit_code == 0, best.output
    assert "top 3 of sma_small" in best.output and "val sharpe" in best.output
    assert "walk-forward optimisation" in best.output and "stitched validation: 24 days" in best.output and "holdout" in best.output
    missing = runner.invoke(main, ["best", "--study", "nope"])
    assert missing.exit_code == 2 and "no study 'nope'" in missing.output and "sma_small" in missing.output


def test_run_cli_prints_the_table_and_reports_bad_input(tmp_path, space_file, sample_store, monkeypatch):
    monkeypatch.setenv("FARM_STUDIES", str(tmp_path / "studies"))
    runner = CliRunner()
    args = [
        "run",
        "--space",
        str(space_file),
        "--trials",
        "3",
        "--no-ray",
        "--data",
        sample_store,
        "--no-progress",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "3/3 trials finished" in result.output and "top 3 of sma_small" in result.output
    bad = runner.invoke(main, [*args, "--timeout", "soon"])
    assert bad.exit_code == 2 and "expected e.g. 90s" in bad.output
    two = runner.invoke(main, [*args[:-1], "--workers", "2"])
    assert two.exit_code == 2 and "use --workers 1 with --no-ray" in two.output


@pytest.mark.slow
def test_dashboard_serves_the_api_and_the_study_page_renders(studies_root):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "FARM_STUDIES": str(studies_root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from search.run_cli import dashboard; dashboard()", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/dashboard/", line)
        assert match, f"no URL in the dashboard's first line: {line!r}"
        base = f"http://127.0.0.1:{match.group(1)}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=5) as response:
                    payload = json.loads(response.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        summaries = payload["study_summaries"]
        assert [s["study_name"] for s in summaries] == ["sma_small"]
        study_id = summaries[0]["study_id"]

        errors: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"{base}/dashboard/studies/{study_id}", wait_until="networkidle")
                page.get_by_text(f"sma_small (id={study_id})").wait_for(timeout=15_000)
                page.get_by_text("Pareto Front").first.wait_for(timeout=15_000)
                page.get_by_text("Best Trials").first.wait_for(timeout=15_000)
                body = page.inner_text("body")
            finally:
                browser.close()
        assert errors == []
        assert "IS sharpe" in body  # the objective names set on the study
    finally:
        proc.terminate()
        proc.wait(timeout=10)
