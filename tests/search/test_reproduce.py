"""``search reproduce`` and trial provenance on real studies made by the search driver (inline, synthetic SPY).

Each study runs on its own copy of the sample store, so a test may change the data under it.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from search.cli import main
from search.records import read_meta, record_path
from search.reproduce import reproduce_trial
from search.run import RunConfig, run_search
from search.study import open_storage, storage_url
from search.study_access import TrialRef
from search.verdicts import REPRODUCE_ATTR
from spec_space.loader import load_space
from tests.search.conftest import write_space

SINGLE = [{"metric": "sharpe", "direction": "maximize"}]
#: Six weeks, two folds of 8 training and 4 test sessions: a trial takes milliseconds.
SMALL = {
    "data": {"start": "2024-01-02", "end": "2024-02-15"},
    "walk_forward": {"scheme": "rolling", "train_days": 8, "test_days": 4, "embargo_days": 0, "folds": 2},
    "objectives": SINGLE,
    "constraints": [],
}


def _quiet(_: str) -> None:
    pass


def make_study(
    root: Path, sample_store: str, name: str, trials: int = 4, objectives: list[str] | None = None
) -> dict[str, Any]:
    """A study of ``trials`` trials on a private copy of the sample store under ``root``."""
    store = root / "store"
    shutil.copytree(sample_store, store)
    space = write_space(root, name, **SMALL)
    summary = run_search(
        RunConfig(
            space_path=space,
            trials=trials,
            objectives=objectives,
            use_ray=False,
            workers=1,
            data_root=str(store),
            studies_root=root / "studies",
            progress=False,
        ),
        echo=_quiet,
    )
    assert summary.complete == trials, summary
    return {"root": root / "studies", "store": store, "space": space, "name": name}


def load(env: dict[str, Any]) -> optuna.Study:
    return optuna.load_study(study_name=env["name"], storage=open_storage(storage_url(None, env["root"])))


def cli(env: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(
        main, list(args), env={"FARM_STUDIES": str(env["root"])}, catch_exceptions=False
    )


def rewrite_meta(path: Path, change: Callable[[dict[str, Any]], None]) -> bytes:
    """Edit a record's JSON meta in place (arrays kept); returns the original bytes to restore it."""
    original = path.read_bytes()
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return original


@pytest.fixture(scope="module")
def study_env(tmp_path_factory: pytest.TempPathFactory, sample_store: str) -> dict[str, Any]:
    return make_study(tmp_path_factory.mktemp("reproduce"), sample_store, "repro_small")


def _record(env: dict[str, Any], number: int) -> Path:
    return record_path(Path(load(env).user_attrs["records_dir"]), number)


# ----------------------------------------------------------------------------------------- provenance


def test_every_trial_record_holds_its_spec_and_provenance(study_env: dict[str, Any]) -> None:
    study = load(study_env)
    attrs = study.user_attrs
    space = load_space(study_env["space"])
    assert attrs["project_version"] and attrs["fill_model_version"] and attrs["seed"] == 0
    assert set(attrs["packages"]) >= {"optuna", "lumibot", "numba", "polars", "ray"}
    files = attrs["data_files"]  # the source files behind the manifest hash, one sha256 each
    assert any("minute_aggs_v1/2024/01/2024-01-02" in k for k in files)
    assert all(len(v) == 64 for v in files.values())
    for trial in study.get_trials(deepcopy=False):
        meta = read_meta(_record(study_env, trial.number))
        prov = meta["provenance"]
        # the concrete spec is stored as it ran: recoverable without re-deriving it from code
        assert prov["spec"] == space.build(trial.params).model_dump(mode="json")
        assert prov["spec_hash"] == trial.user_attrs["info"]["spec_hash"]
        assert prov["data_manifest_hash"] == attrs["data_manifest_hash"]
        assert prov["space_hash"] == attrs["space_hash"]
        assert (prov["engine"], prov["seed"], prov["fill_model_version"]) == (
            "fast",
            0,
            attrs["fill_model_version"],
        )
        assert prov["packages"] == attrs["packages"] and prov["project_version"] == attrs["project_version"]


def test_best_prints_a_provenance_block(study_env: dict[str, Any]) -> None:
    result = cli(study_env, "best", "--study", study_env["name"], "--top", "2")
    assert result.exit_code == 0, result.output
    block = result.output[result.output.index("provenance:") :]
    attrs = load(study_env).user_attrs
    assert f"strategy-search-farm {attrs['project_version']}" in block
    assert attrs["space_hash"][:12] in block and attrs["data_manifest_hash"][:12] in block
    assert f"fill model {attrs['fill_model_version']}" in block and "lumibot 4.6.30" in block
    assert "spec sha256" in block and "reproduce:" in block


# ----------------------------------------------------------------------------------------- reproduce


def test_an_untouched_trial_reproduces_exactly(study_env: dict[str, Any]) -> None:
    from search.run import top_trials

    best = top_trials(load(study_env), 1)[0].number
    result = cli(study_env, "reproduce", "--study", study_env["name"], "--trial", str(best))
    assert result.exit_code == 0, result.output
    assert "REPRODUCED" in result.output and "match the records exactly" in result.output
    assert result.output.count(": same (") == 4  # 2 folds x (in-sample, out-of-sample)
    (entry,) = load(study_env).user_attrs[REPRODUCE_ATTR]["candidates"]
    assert (entry["trial"], entry["passed"], entry["causes"]) == (best, True, [])
    detail = json.loads(Path(entry["file"]).read_text())
    assert Path(entry["file"]).parent.name == "reproduce" and detail["exact"] is True
    assert [w["ok"] for w in detail["windows"]] == [True] * 4
    assert sum(w["trades"][1] for w in detail["windows"]) > 0
    shown = cli(study_env, "best", "--study", study_env["name"], "--top", "5")
    assert "reproduce: passed" in shown.output and "match the records exactly" in shown.output


def test_a_changed_fill_model_is_named(study_env: dict[str, Any]) -> None:
    study = load(study_env)
    current = study.user_attrs["fill_model_version"]
    study.set_user_attr("fill_model_version", "0-old")
    try:
        result = cli(study_env, "reproduce", "--study", study_env["name"], "--trial", "2")
    finally:
        study.set_user_attr("fill_model_version", current)
    assert result.exit_code == 1, result.output
    assert "cause: fill_model:" in result.output and "fill model version 0-old" in result.output
    assert "NOT reproduced" in result.output
    entry = next(c for c in load(study_env).user_attrs[REPRODUCE_ATTR]["candidates"] if c["trial"] == 2)
    assert entry["passed"] is False and entry["causes"] == ["fill_model"]

    # the trial's own record names the version it ran on
    path = _record(study_env, 2)
    original = rewrite_meta(path, lambda m: m["provenance"].update(fill_model_version="0-old"))
    try:
        again = reproduce_trial(TrialRef(study_env["name"], 2, studies_root=study_env["root"]), echo=_quiet)
    finally:
        path.write_bytes(original)
    assert not again.passed and [c.cause for c in again.causes] == ["fill_model"]
    assert "version 0-old then" in again.summary
    assert reproduce_trial(TrialRef(study_env["name"], 2, studies_root=study_env["root"]), echo=_quiet).passed


def test_a_code_version_change_warns_and_is_named_when_results_differ(study_env: dict[str, Any]) -> None:
    path = _record(study_env, 3)

    def older_code(meta: dict[str, Any]) -> None:
        meta["provenance"].update(project_version="0.0.1", git={"commit": "0" * 40, "dirty": False})

    original = rewrite_meta(path, older_code)
    try:
        same = reproduce_trial(TrialRef(study_env["name"], 3, studies_root=study_env["root"]), echo=_quiet)
        assert same.passed, same.summary  # same results: the version change is only a warning
        assert [w.cause for w in same.warnings] == ["code"] and "project version 0.0.1 then" in same.summary

        def other_result(meta: dict[str, Any]) -> None:
            meta["folds"][1]["val"]["n_trades"] = meta["folds"][1]["val"]["n_trades"] + 1

        rewrite_meta(path, other_result)
        differs = reproduce_trial(TrialRef(study_env["name"], 3, studies_root=study_env["root"]), echo=_quiet)
    finally:
        path.write_bytes(original)
    assert not differs.passed and not differs.causes
    assert "fold 1 validation" in differs.summary and "trades" in differs.summary
    assert "likely cause: code: project version 0.0.1 then" in differs.summary


def test_a_changed_data_store_fails_naming_the_changed_file(
    tmp_path: Path, sample_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data.ingest import ingest
    from data.synth import generate

    env = make_study(tmp_path, sample_store, "repro_data", trials=2)
    assert cli(env, "reproduce", "--study", env["name"], "--trial", "0").exit_code == 0
    # one session inside the last test window, generated again with another seed and re-ingested
    date = dt.date.fromisoformat(load(env).user_attrs["folds"][-1]["test_start"])
    generate(tmp_path / "flat2", tickers=["SPY"], start=date, end=date, seed=99, options=False)
    report = ingest(tmp_path / "flat2", env["store"], tickers=["SPY"])
    assert not report.failed, report.summary()

    result = cli(env, "reproduce", "--study", env["name"], "--trial", "0")
    assert result.exit_code == 1, result.output
    relpath = f"us_stocks_sip/minute_aggs_v1/{date:%Y/%m/%Y-%m-%d}.csv.gz"
    assert "cause: data: the data store changed since the study ran" in result.output
    assert "source files changed: " in result.output and relpath in result.output
    assert "NOT reproduced" in result.output
    entry = load(env).user_attrs[REPRODUCE_ATTR]["candidates"][0]
    assert entry["passed"] is False and entry["causes"] == ["data"]
    detail = json.loads(Path(entry["file"]).read_text())
    assert detail["now"]["data_manifest_hash"] != load(env).user_attrs["data_manifest_hash"]
    assert any(not w["ok"] for w in detail["windows"])  # and the changed day does change the results


def test_a_study_run_with_other_objectives_reproduces(tmp_path: Path, sample_store: str) -> None:
    # --objectives overrides the space's; the stored space hash and the trial values follow the override
    env = make_study(
        tmp_path, sample_store, "repro_objectives", trials=2, objectives=["total_return", "n_trades"]
    )
    result = reproduce_trial(TrialRef(env["name"], 1, studies_root=env["root"]), echo=_quiet)
    assert result.passed, result.summary


def test_nothing_to_reproduce_exits_2(study_env: dict[str, Any]) -> None:
    result = cli(study_env, "reproduce", "--study", study_env["name"], "--trial", "99")
    assert result.exit_code == 2 and "has no trial 99" in result.output
    result = cli(study_env, "reproduce", "--study", "nope", "--trial", "0")
    assert result.exit_code == 2 and "no study 'nope'" in result.output


@pytest.mark.slow
def test_reproduce_on_lumibot_compares_within_parity_tolerances(study_env: dict[str, Any]) -> None:
    result = reproduce_trial(
        TrialRef(study_env["name"], 0, studies_root=study_env["root"]), engine="lumibot", echo=_quiet
    )
    assert result.passed, result.summary
    assert not result.exact and "within the parity tolerances" in result.summary
    assert [w.cause for w in result.warnings if w.cause == "engine"] == ["engine"]


# ----------------------------------------------------------------------------------------- promote


def test_promote_needs_a_passed_reproduction(study_env: dict[str, Any]) -> None:
    from search.promote import _provenance, find_candidates

    study = load(study_env)
    number = 0
    study.set_user_attr(
        "gate", {"candidates": [{"rank": 1, "trial": number, "passed": True, "summary": "ok"}]}
    )
    study.set_user_attr("confirm", {"candidates": [{"trial": number, "passed": True, "summary": "parity"}]})
    saved = study.user_attrs.get(REPRODUCE_ATTR)
    try:
        study.set_user_attr(REPRODUCE_ATTR, {"candidates": []})
        found, rejected = find_candidates(load(study_env), top=1, studies_root=study_env["root"])
        assert found == [] and rejected[0].reason.startswith("reproduce: no reproduce verdict")
        assert f"search reproduce --study {study_env['name']} --trial {number}" in rejected[0].reason

        fill = study.user_attrs["fill_model_version"]
        study.set_user_attr("fill_model_version", "0-old")
        failed = reproduce_trial(TrialRef(study_env["name"], number, studies_root=study_env["root"]), echo=_quiet)
        study.set_user_attr("fill_model_version", fill)
        assert not failed.passed
        found, rejected = find_candidates(load(study_env), top=1, studies_root=study_env["root"])
        assert found == [] and "reproduce: NOT reproduced: fill_model" in rejected[0].reason

        assert reproduce_trial(TrialRef(study_env["name"], number, studies_root=study_env["root"]), echo=_quiet).passed
        fresh = load(study_env)
        (cand,) = find_candidates(fresh, top=1, studies_root=study_env["root"])[0]
        assert cand.reproduce_summary.startswith("reproduced:")
        prov = _provenance(fresh, cand, "sqlite:///x.db")
        # the deployment carries the study's provenance and the trial's own (its spec as it ran)
        assert prov["trial_provenance"]["spec"] == cand.spec.model_dump(mode="json")
        assert prov["study_provenance"]["data_manifest_hash"] == fresh.user_attrs["data_manifest_hash"]
        assert REPRODUCE_ATTR not in prov["study_provenance"] and prov["reproduce"].startswith("reproduced:")
        assert prov["code"]["packages"]["lumibot"] and prov["code"]["fill_model_version"]
    finally:
        study.set_user_attr(REPRODUCE_ATTR, saved)
        for key in ("gate", "confirm"):
            study._storage.set_study_user_attr(study._study_id, key, None)
