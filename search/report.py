"""``search report`` as a function: gather what a study stored and write its HTML page.

Reads the study storage (provenance attributes, trials, Pareto front), the trial records and the gate
artifacts; hands plain values to :mod:`reports.html`, which draws them. The one thing computed here is
what the brief of the report asks Optuna for: parameter importances (fANOVA, seeded, so a report is
reproducible), skipped on studies too small for them to mean anything.

The page is also attached to the study as an Optuna artifact (``<study folder>/artifacts``) so
optuna-dashboard lists it; its id is kept in the study user attribute ``report_artifact_id`` and a new
report overwrites the same artifact instead of piling up copies.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import optuna
from optuna.trial import TrialState

from reports.html import CandidateSeries, ReportData, TrialRow, read_gate_artifacts, write_report
from search.gate_artifacts import gates_folder
from search.provenance import data_origin
from search.records import load_records, safe_name
from search.return_series import fold_daily_frame
from search.study import directions_of, mask_url, study_sessions
from search.study_access import (
    StudySetupError,
    find_study,
    load_study_space,
    records_folder,
    select_candidates,
)

__all__ = [
    "MIN_TRIALS_FOR_IMPORTANCE",
    "ReportConfig",
    "ReportSummary",
    "StudiesArtifactStore",
    "attach_report",
    "build_report_data",
    "make_report",
    "param_importances",
]

#: Fewer COMPLETE trials than this and importances are noise: the section says so instead.
MIN_TRIALS_FOR_IMPORTANCE = 10
ARTIFACT_ATTR = "report_artifact_id"


@dataclass
class ReportConfig:
    study: str
    storage: str | None = None
    out: Path | None = None  # folder; the page is <out>/index.html
    studies_root: Path | None = None
    top: int = 3  # candidates drawn when `search gate` has not run
    attach: bool = True


@dataclass
class ReportSummary:
    path: Path
    artifact_id: str | None
    gated: bool
    storage: str


def _feasible(trial: optuna.trial.FrozenTrial) -> bool:
    return all(v <= 0.0 for v in trial.constraints.values())


def param_importances(
    study: optuna.Study, objectives: list[str]
) -> tuple[dict[str, dict[str, float]] | None, str | None]:
    """fANOVA importances per objective (seed 0), or None and the reason they are not shown."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return None, (
            f"Parameter importances need at least {MIN_TRIALS_FOR_IMPORTANCE} COMPLETE trials; "
            f"the study has {len(complete)}."
        )
    varying = {
        name for t in complete for name in t.params if len({repr(u.params.get(name)) for u in complete}) > 1
    }
    if not varying:
        return None, "No parameter takes more than one value among the COMPLETE trials."
    out: dict[str, dict[str, float]] = {}
    for i, metric in enumerate(objectives):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imp = optuna.importance.get_param_importances(
                    study,
                    evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
                    target=lambda t, i=i: t.values[i],
                )
        except (ValueError, RuntimeError) as exc:
            return None, f"Parameter importances could not be computed: {exc}"
        out[metric] = {k: float(v) for k, v in imp.items()}
    return out, f"fANOVA (64 trees, seed 0) over {len(complete)} COMPLETE trials; in-sample objectives."


def _fmt_folds(folds: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{f['index']}: train {f['train_start']}..{f['train_end']}, test {f['test_start']}..{f['test_end']}"
        for f in folds
    )


def _summary(study: optuna.Study, url: str) -> list[tuple[str, str]]:
    attrs = study.user_attrs
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    interrupted = sum(t.state == TrialState.FAIL and bool(t.user_attrs.get("interrupted")) for t in trials)
    rows: list[tuple[str, str]] = [
        ("study", study.study_name),
        ("storage", mask_url(url)),
        ("space", f"{attrs.get('space_name', '-')} ({attrs.get('space_path', '-')})"),
        ("space hash", str(attrs.get("space_hash", "-"))),
        (
            "objectives",
            ", ".join(f"{o['metric']} ({o['direction']})" for o in attrs.get("objectives") or [])
            or ", ".join(directions_of(study)),
        ),
        (
            "constraints",
            ", ".join(f"{c['metric']} {c['op']} {c['value']:g}" for c in attrs.get("constraints") or [])
            or "none",
        ),
        ("sampler", f"{attrs.get('sampler', '-')} (study seed {attrs.get('seed', '-')})"),
        (
            "trials",
            f"{counts[TrialState.COMPLETE]} complete, {counts[TrialState.FAIL]} failed"
            f"{f' ({interrupted} interrupted and re-run)' if interrupted else ''}, "
            f"{counts[TrialState.PRUNED]} pruned, {counts[TrialState.RUNNING]} running",
        ),
        ("engine", str(attrs.get("engine", "-"))),
        (
            "data",
            f"{attrs.get('data_symbol', '-')} {' .. '.join(attrs.get('data_window') or [])} "
            f"from {mask_url(str(attrs.get('data_root', '-')))}",
        ),
        ("data origin", data_origin(attrs)),
        ("data manifest hash", str(attrs.get("data_manifest_hash", "-"))),
        ("fill model version", str(attrs.get("fill_model_version", "-"))),
    ]
    files = attrs.get("data_files")
    if isinstance(files, dict):
        window = " .. ".join(attrs.get("data_manifest_window") or [])
        rows.append(("data source files", f"{len(files)} flat files behind the manifest hash ({window})"))
    wf = attrs.get("walk_forward")
    if wf:
        rows.append(
            (
                "walk-forward",
                f"{wf.get('scheme')}: train {wf.get('train_days')} sessions, embargo {wf.get('embargo_days')}, "
                f"test {wf.get('test_days')}, {wf.get('folds')} folds",
            )
        )
    if attrs.get("folds"):
        rows.append(("folds (train / validation)", _fmt_folds(attrs["folds"])))
    holdout = attrs.get("holdout")
    if holdout:
        rows.append(
            (
                "holdout (out-of-sample)",
                f"{holdout['start']} .. {holdout['end']} ({holdout['days']} sessions): never read by the search; "
                "search gate reads it",
            )
        )
    wfo = attrs.get("wfo")
    if wfo and wfo.get("summary"):
        s = wfo["summary"]
        rows.append(
            (
                "walk-forward optimisation",
                f"best IS {wfo.get('metric')} per fold -> its validation window: trials "
                f"{[c['trial'] for c in wfo.get('choices', [])]}, total return {s.get('total_return', 0):.2%}, "
                f"Sharpe {s.get('sharpe') if s.get('sharpe') is None else round(s['sharpe'], 3)}, "
                f"max drawdown {s.get('max_drawdown', 0):.2%} over {int(s.get('days', 0))} sessions",
            )
        )
    git = attrs.get("git") or {}
    code = f"strategy-search-farm {attrs.get('project_version') or '-'}"
    if git:
        code += f", git {git.get('commit', '-')}{' (uncommitted changes)' if git.get('dirty') else ''}"
    rows.append(("code", code))
    rows.append(("python", str(attrs.get("python", "-"))))
    packages = attrs.get("packages") or {}
    if packages:
        rows.append(("packages", ", ".join(f"{k} {v}" for k, v in sorted(packages.items()) if v)))
    rows.append(("created", str(attrs.get("created_utc", "-"))))
    sessions = study_sessions(attrs)
    if sessions:
        rows.append(("run sessions", f"{len(sessions)}; last started {sessions[-1].get('started_utc', '-')}"))
    reproduced = (attrs.get("reproduce") or {}).get("candidates") or []
    if reproduced:  # search reproduce: each trial re-run from its records on the present data and code
        rows.append(
            (
                "reproduce",
                "; ".join(
                    f"trial {r.get('trial')}: {'passed' if r.get('passed') else 'FAILED'} "
                    f"({r.get('reproduced_utc', '-')}): {r.get('summary', '')}"
                    for r in reproduced
                ),
            )
        )
    return rows


def build_report_data(study: optuna.Study, *, url: str, studies_root: Path, top: int = 3) -> ReportData:
    """Everything the page shows, read from the study, its records and its gate artifacts."""
    objectives_attr = study.user_attrs.get("objectives") or []
    directions = directions_of(study)
    objectives = [(o["metric"], o["direction"]) for o in objectives_attr] or [
        (f"objective {i}", d) for i, d in enumerate(directions)
    ]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    trials = [TrialRow(t.number, tuple(t.values), dict(t.params), _feasible(t)) for t in complete]
    failed = sum(t.state == TrialState.FAIL for t in study.get_trials(deepcopy=False))
    pareto = [t.number for t in study.best_trials] if len(directions) > 1 and complete else None
    importances, note = param_importances(study, [m for m, _ in objectives])
    gates = read_gate_artifacts(gates_folder(study, studies_root))

    candidates: list[CandidateSeries] = []
    source = "records"
    if gates is not None:
        source = "gate"
        first = objectives[0][0]
        for g in gates.candidates:
            spec = g.metrics.get("spec") or {}
            candidates.append(
                CandidateSeries(
                    rank=g.rank,
                    trial=g.trial,
                    params=dict(g.metrics.get("params") or {}),
                    objective=(g.metrics.get("objectives") or {}).get(first),
                    daily=g.daily,
                    initial_cash=float(spec.get("initial_cash", 100_000.0)),
                )
            )
    elif complete:
        try:
            space = load_study_space(study)
        except StudySetupError:
            space = None
        chosen = select_candidates(study, top)
        records, _missing = load_records(records_folder(study, studies_root), [t.number for t in chosen])
        by_number = {r.number: r for r in records}
        for rank, t in enumerate((t for t in chosen if t.number in by_number), start=1):
            record = by_number[t.number]
            cash = space.build(record.params).initial_cash if space is not None else 100_000.0
            candidates.append(
                CandidateSeries(
                    rank, t.number, dict(record.params), t.values[0], fold_daily_frame(record, cash), cash
                )
            )
    return ReportData(
        study_name=study.study_name,
        objectives=objectives,
        summary=_summary(study, url),
        trials=trials,
        n_failed=failed,
        candidates=candidates,
        gate_command=f"search gate --study {study.study_name}",
        generated_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        space_text=study.user_attrs.get("space_text"),
        pareto=pareto,
        importances=importances,
        importance_note=note,
        candidates_source=source,
        gates=gates,
        data_origin=data_origin(study.user_attrs),
        holdout=study.user_attrs.get("holdout"),
    )


_ARTIFACT_ID = re.compile(r"[0-9a-fA-F-]{1,64}")


class StudiesArtifactStore:
    """One Optuna artifact store over every study's ``<studies root>/<study>/artifacts`` folder.

    optuna-dashboard serves all studies of a storage with a single artifact store, while each study keeps
    its artifacts next to its records; artifact ids are UUIDs, so a lookup across the folders is
    unambiguous. Pass it as ``optuna_dashboard.wsgi(storage, artifact_store=StudiesArtifactStore(root))``.
    Artifacts uploaded through the dashboard itself (no study folder known) go to ``<root>/_dashboard``.
    """

    def __init__(self, studies_root: str | Path) -> None:
        self._root = Path(studies_root)

    def _find(self, artifact_id: str) -> Path | None:
        from optuna.artifacts.exceptions import ArtifactNotFound

        if not _ARTIFACT_ID.fullmatch(artifact_id):  # ids become file names: no separators, no '..'
            raise ArtifactNotFound(f"invalid artifact id {artifact_id!r}")
        for folder in sorted(self._root.glob("*/artifacts")):
            candidate = folder / artifact_id
            if candidate.is_file():
                return candidate
        return None

    def open_reader(self, artifact_id: str) -> BinaryIO:
        from optuna.artifacts.exceptions import ArtifactNotFound

        path = self._find(artifact_id)
        if path is None:
            raise ArtifactNotFound(f"artifact {artifact_id} is in no study folder under {self._root}")
        return open(path, "rb")  # noqa: SIM115 - the caller (the dashboard) closes the reader

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        path = self._find(artifact_id) or self._root / "_dashboard" / "artifacts" / artifact_id
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            while chunk := content_body.read(1 << 20):
                fh.write(chunk)

    def remove(self, artifact_id: str) -> None:
        from optuna.artifacts.exceptions import ArtifactNotFound

        path = self._find(artifact_id)
        if path is None:
            raise ArtifactNotFound(f"artifact {artifact_id} is in no study folder under {self._root}")
        path.unlink()


def attach_report(study: optuna.Study, path: Path, artifacts_dir: Path) -> str:
    """Upload ``path`` as the study's report artifact (overwriting the previous report's); returns its id."""
    from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact

    artifacts_dir.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(artifacts_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        previous = study.user_attrs.get(ARTIFACT_ATTR)
        known = {m.artifact_id for m in get_all_artifact_meta(study)}
        if previous in known:
            with open(path, "rb") as fh:
                store.write(previous, fh)
            return str(previous)
        artifact_id = upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=study, mimetype="text/html"
        )
    study.set_user_attr(ARTIFACT_ATTR, artifact_id)
    return artifact_id


def make_report(config: ReportConfig) -> ReportSummary:
    """Write the study's page (default ``reports/<study>/index.html``) and attach it to the study."""
    study, root, url = find_study(config.study, storage=config.storage, studies_root=config.studies_root)
    data = build_report_data(study, url=url, studies_root=root, top=config.top)
    out = config.out if config.out is not None else Path("reports") / safe_name(study.study_name)
    path = write_report(data, Path(out) / "index.html")
    artifact = (
        attach_report(study, path, records_folder(study, root) / "artifacts") if config.attach else None
    )
    if artifact:
        study.set_user_attr("report_path", str(path.resolve()))
    return ReportSummary(path=path, artifact_id=artifact, gated=data.gates is not None, storage=mask_url(url))
