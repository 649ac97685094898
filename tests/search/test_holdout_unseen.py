"""Out-of-sample means unseen: scrambling the holdout's bars changes nothing the search decides.

Two stores hold the same synthetic SPY minute bars except on the holdout sessions, where the second
store's prices are scrambled. The same study (same space, seed and trial count) runs on each. Every
trial's parameters, objective values, constraint values and stored in-sample / validation metrics, the
candidate list and the walk-forward picks must be identical; only what ``search gate`` reads from the
holdout may differ (and does).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl
import pytest

from data.ingest import ingest
from data.store import Store
from data.synth import generate
from evaluator.walkforward import walk_forward_layout
from search.gate import GateRunConfig, run_gates
from search.run import RunConfig, run_search, top_trials
from search.study import open_storage, storage_url
from search.study_access import select_candidates
from spec_space.loader import load_space
from tests.search.conftest import END, START, write_space

TRIALS = 16


def _scramble_day(path: Path, rng: np.random.Generator) -> None:
    """Prices of every bar on this day replaced by a different random walk (volume and times kept)."""
    with gzip.open(path, "rb") as fh:
        frame = pl.read_csv(fh.read())
    n = frame.height
    walk = np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    base = frame.get_column("open").to_numpy()[0] * walk
    noise = np.abs(rng.normal(0.0, 0.001, n)) * base
    scrambled = frame.with_columns(
        pl.Series("open", base),
        pl.Series("close", base * (1 + rng.normal(0.0, 0.002, n))),
    ).with_columns(
        (pl.max_horizontal("open", "close") + pl.Series(noise)).alias("high"),
        (pl.min_horizontal("open", "close") - pl.Series(noise)).alias("low"),
    )
    with gzip.open(path, "wb") as fh:
        fh.write(scrambled.select(frame.columns).write_csv().encode())


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("holdout_unseen")
    space_path = write_space(root, "unseen")
    space = load_space(space_path)
    generate(root / "flat", tickers=["SPY"], start=START, end=END, seed=11, options=False)
    clean = root / "clean"
    ingest(root / "flat", clean, tickers=["SPY"])
    sessions = Store(str(clean)).sessions("SPY", START, END)
    layout = walk_forward_layout(sessions, space.walk_forward)
    holdout = [d for d in sessions if layout.holdout.start <= d <= layout.holdout.end]
    scrambled_flat = root / "flat_scrambled"
    shutil.copytree(root / "flat", scrambled_flat)
    rng = np.random.default_rng(5)
    touched = 0
    for day in holdout:
        for path in scrambled_flat.rglob(f"{day.isoformat()}.csv.gz"):
            _scramble_day(path, rng)
            touched += 1
    assert touched >= len(holdout)  # every holdout session's file was rewritten
    scrambled = root / "scrambled"
    ingest(scrambled_flat, scrambled, tickers=["SPY"])
    return {"root": root, "space": space_path, "clean": str(clean), "scrambled": str(scrambled), "holdout": holdout}


def _study(root: Path, store: str, space: Path) -> optuna.Study:
    summary = run_search(
        RunConfig(
            space_path=space,
            trials=TRIALS,
            use_ray=False,
            workers=1,
            data_root=store,
            studies_root=root,
            seed=3,
            progress=False,
        ),
        echo=lambda _: None,
    )
    return optuna.load_study(study_name=summary.study_name, storage=open_storage(storage_url(None, root)))


def _decisions(study: optuna.Study) -> list[tuple[Any, ...]]:
    return [
        (
            t.number,
            t.state,
            t.params,
            t.values,
            t.constraints,
            t.user_attrs.get("is_mean"),
            t.user_attrs.get("val_mean"),
            t.user_attrs.get("val_folds"),
        )
        for t in study.trials
    ]


def test_scrambled_holdout_changes_no_search_decision_only_the_holdout_figures(two_stores):
    env = two_stores
    # the holdout bars really differ between the stores, and nothing else does
    clean, scrambled = Store(env["clean"]), Store(env["scrambled"])
    first, last = env["holdout"][0], env["holdout"][-1]
    before = clean.bars("SPY", START, first - (first - START) / 2)
    assert before.equals(scrambled.bars("SPY", START, first - (first - START) / 2))
    assert not clean.bars("SPY", first, last).equals(scrambled.bars("SPY", first, last))

    a = _study(env["root"] / "a", env["clean"], env["space"])
    b = _study(env["root"] / "b", env["scrambled"], env["space"])
    assert len(a.trials) == TRIALS
    assert _decisions(a) == _decisions(b)
    assert [t.number for t in top_trials(a, 5)] == [t.number for t in top_trials(b, 5)]
    assert [t.number for t in select_candidates(a, 5)] == [t.number for t in select_candidates(b, 5)]
    assert a.user_attrs["wfo"] == b.user_attrs["wfo"]
    assert a.user_attrs["holdout"] == b.user_attrs["holdout"]

    gate_a = run_gates(GateRunConfig(study="unseen", top=3, studies_root=env["root"] / "a"), echo=lambda _: None)
    gate_b = run_gates(GateRunConfig(study="unseen", top=3, studies_root=env["root"] / "b"), echo=lambda _: None)
    assert [c.number for c in gate_a.candidates] == [c.number for c in gate_b.candidates]
    for ca, cb in zip(gate_a.candidates, gate_b.candidates, strict=True):
        # study-level statistics come from the validation records: identical
        assert ca.values["pbo"] == cb.values["pbo"] or (np.isnan(ca.values["pbo"]) and np.isnan(cb.values["pbo"]))
        assert ca.val_metrics == pytest.approx(cb.val_metrics, nan_ok=True)
        assert ca.rerun["matches_record"] and cb.rerun["matches_record"]
    # ... and what the gates read from the holdout moved with the scrambled bars
    held_a = [c.daily.filter(pl.col("window") == "holdout").get_column("return").to_list() for c in gate_a.candidates]
    held_b = [c.daily.filter(pl.col("window") == "holdout").get_column("return").to_list() for c in gate_b.candidates]
    assert held_a != held_b
    assert [c.values["dsr_single"] for c in gate_a.candidates] != [c.values["dsr_single"] for c in gate_b.candidates]
