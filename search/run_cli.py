"""``search run``, ``search studies``, ``search best``, ``search dashboard``: Optuna studies of spec spaces.

Optuna, Ray and the evaluator are imported inside the commands so other ``search`` commands start fast.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from search.cli_support import engine_option, int_option, setup_errors, storage_option, study_option
from search.paths import DATA_ROOT_ENV

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial
    from rich.table import Table

    from evaluator.wfo import WFOResult

__all__ = ["best", "dashboard", "run", "studies"]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.4g}"
    return str(value)


def results_table(study: optuna.Study, trials: list[FrozenTrial], title: str) -> Table:
    """Params, IS means and validation means of the objective metrics (and trades) for each trial."""
    from rich.table import Table

    objectives = study.user_attrs.get("objectives") or []
    metrics = [o["metric"] for o in objectives]
    if "n_trades" not in metrics:
        metrics.append("n_trades")
    # one wrapped parameters column: a space has a dozen or more parameters, a column each would not fit
    table = Table(title=title, show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("parameters", overflow="fold", min_width=24)
    for metric in metrics:
        table.add_column(f"IS {metric}", justify="right")
        table.add_column(f"val {metric}", justify="right")
    table.add_column("ok", justify="center")
    for t in trials:
        is_mean = t.user_attrs.get("is_mean") or {}
        val_mean = t.user_attrs.get("val_mean") or {}
        feasible = all(v <= 0 for v in t.constraints.values())
        row = [str(t.number), "  ".join(f"{k}={_fmt(v)}" for k, v in sorted(t.params.items()))]
        for metric in metrics:
            row += [_fmt(is_mean.get(metric)), _fmt(val_mean.get(metric))]
        row.append("yes" if feasible else "no")
        table.add_row(*row)
    return table


def wfo_lines(result: WFOResult) -> list[str]:
    summary = result.summary()
    lines = [
        f"walk-forward optimisation (best in-sample {result.metric} per fold -> its validation window, which the search saw):",
        "  "
        + ", ".join(
            f"fold {c.fold}: trial #{c.trial} (IS {_fmt(c.is_value)}, val {_fmt(c.val_value)})"
            for c in result.choices
        ),
        f"  stitched validation: {int(summary['days'])} days, total return {summary['total_return']:.2%}, "
        f"Sharpe {_fmt(summary['sharpe'])}, max drawdown {summary['max_drawdown']:.2%}",
    ]
    if result.skipped_folds:
        lines.append(f"  folds without a defined in-sample {result.metric}: {result.skipped_folds}")
    return lines


def holdout_line(study: optuna.Study) -> str:
    holdout = study.user_attrs.get("holdout") or {}
    return (
        f"holdout (out-of-sample, unseen by the search): {holdout.get('start')} to {holdout.get('end')}, "
        f"{holdout.get('days')} sessions; `search gate --study {study.study_name}` opens it for the top candidates"
    )


def _console() -> Any:
    from rich.console import Console

    return Console(width=max(120, Console().width))


# --------------------------------------------------------------------------------------------- run


@click.command("run")
@click.option(
    "--space",
    "space_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Spec space YAML: parameters, data window, walk-forward scheme, objectives, constraints.",
)
@click.option(
    "--trials",
    required=True,
    type=click.IntRange(min=1),
    help="Finished trials the study should hold; a re-run resumes and stops at this total.",
)
@click.option("--study", "study_name", default=None, help="Study name (default: the space's name).")
@click.option(
    "--sampler",
    type=click.Choice(["tpe", "nsga2", "cmaes", "random", "qmc", "gp"]),
    default=None,
    help="Default: tpe for one objective, nsga2 for several (or the study's sampler on resume).",
)
@click.option(
    "--objectives",
    default=None,
    help="Comma-separated metrics overriding the space's, e.g. sharpe,max_drawdown or exposure:min.",
)
@engine_option("Backtest engine of every trial.", default="fast")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel trials (default: CPU count; 1 with --no-ray).",
)
@click.option("--ray-address", default=None, help="Join a Ray cluster (ray://host:10001 or host:6379).")
@click.option("--no-ray", is_flag=True, help="Evaluate trials inline in this process (needs --workers 1).")
@storage_option()
@click.option(
    "--data",
    "data_root",
    default=None,
    help=f"Parquet store root (default: ${DATA_ROOT_ENV} or sample_data/store).",
)
@click.option("--seed", type=int, default=None, help="Study seed (default 0; a resumed study keeps its own).")
@click.option("--timeout", default=None, help="Stop asking new trials after this long, e.g. 90s, 15m, 2h.")
@int_option(
    "--batch-size",
    default=8,
    help="Trials asked at once; fixed per study so the trial sequence does not depend on --workers.",
)
@click.option(
    "--top", type=click.IntRange(min=0), default=10, show_default=True, help="Candidates shown at the end."
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def run(
    space_path: Path,
    trials: int,
    study_name: str | None,
    sampler: str | None,
    objectives: str | None,
    engine: str,
    workers: int | None,
    ray_address: str | None,
    no_ray: bool,
    storage: str | None,
    data_root: str | None,
    seed: int | None,
    timeout: str | None,
    batch_size: int,
    top: int,
    progress: bool,
) -> None:
    """Search a spec space: walk-forward trials on Ray (or inline), results in an Optuna study."""
    import os

    from search.cli_support import options_as
    from search.run import RunConfig, SearchSetupError, parse_duration, run_search, top_trials
    from search.study import StudyMismatch
    from spec_space.loader import SpecError

    try:
        seconds = parse_duration(timeout) if timeout else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timeout") from None
    if no_ray and ray_address:
        raise click.UsageError("--ray-address joins a Ray cluster and --no-ray runs inline: give one of them")
    if workers is None:
        workers = 1 if no_ray else (os.cpu_count() or 1)
    config = options_as(
        RunConfig,
        own={"top", "no_ray"},
        objectives=objectives.split(",") if objectives else None,
        workers=workers,
        use_ray=not no_ray,
        timeout=seconds,
    )
    with setup_errors(SpecError, SearchSetupError, StudyMismatch, LookupError, ValueError):
        summary = run_search(config, echo=click.echo)
    study = summary.study
    click.echo(
        f"{summary.study_name}: {summary.finished}/{summary.target} trials finished "
        f"(+{summary.complete} complete, +{summary.failed} failed this run, {summary.elapsed:.1f} s, "
        f"stopped: {summary.stopped}); storage {summary.storage}; records {summary.records_dir}"
    )
    if summary.first_error:
        # an error is not a bad parameter set: the search covered less of the space than asked
        click.echo(
            f"warning: {summary.errors} of {summary.new_trials} trials raised an error this run and were "
            f"recorded FAIL (the sampler learns nothing from them); the first: {summary.first_error}. "
            "Each failed trial keeps its message and traceback (user attributes fail_reason, traceback; search "
            "dashboard shows them); fix the cause and run "
            "a new study",
            err=True,
        )
    if top:
        best_trials = top_trials(study, top)
        if best_trials:
            _console().print(
                results_table(study, best_trials, f"top {len(best_trials)} of {summary.study_name}")
            )
    if summary.wfo is not None:
        for line in wfo_lines(summary.wfo):
            click.echo(line)
    click.echo(holdout_line(study))
    if summary.stopped == "interrupted":
        click.echo("interrupted: finished trials are saved; run the same command again to resume", err=True)
        sys.exit(130)


# --------------------------------------------------------------------------------------------- studies


@click.command("studies")
@storage_option()
def studies(storage: str | None) -> None:
    """List the studies in a storage with their trial counts and best first-objective value."""
    import optuna
    from optuna.trial import TrialState
    from rich.table import Table

    from search.paths import studies_root
    from search.study import count_finished, mask_url, open_storage, storage_url

    url = storage_url(storage, studies_root())
    backend = open_storage(url)
    summaries = optuna.get_all_study_summaries(backend, include_best_trial=False)
    if not summaries:
        click.echo(f"no studies in {mask_url(url)}")
        return
    table = Table(title=f"studies in {mask_url(url)}")
    for name in (
        "study",
        "space",
        "objectives",
        "finished",
        "complete",
        "failed",
        "running",
        "best",
        "created",
    ):
        table.add_column(
            name, justify="left" if name in ("study", "space", "objectives", "created") else "right"
        )
    for s in sorted(summaries, key=lambda s: s.study_name):
        study = optuna.load_study(study_name=s.study_name, storage=backend)
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        objectives = study.user_attrs.get("objectives") or []
        best = "-"
        if complete:
            values = [t.values[0] for t in complete]
            best = _fmt(max(values) if study.directions[0].name == "MAXIMIZE" else min(values))
        table.add_row(
            s.study_name,
            str(study.user_attrs.get("space_name", "-")),
            ",".join(f"{o['metric']}:{o['direction'][:3]}" for o in objectives) or "-",
            str(count_finished(trials)),
            str(len(complete)),
            str(sum(t.state == TrialState.FAIL for t in trials)),
            str(sum(t.state == TrialState.RUNNING for t in trials)),
            best,
            str(study.user_attrs.get("created_utc", s.datetime_start or "-")),
        )
    _console().print(table)


# --------------------------------------------------------------------------------------------- best


@click.command("best")
@study_option()
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@storage_option()
def best(study_name: str, top: int, storage: str | None) -> None:
    """The study's best candidates (params, IS and validation metrics) and its walk-forward optimisation."""
    from search.paths import studies_root
    from search.run import compute_wfo, top_trials
    from search.study import storage_url
    from search.study_access import StudySetupError, open_study

    url = storage_url(storage, studies_root())
    with setup_errors(StudySetupError):
        study = open_study(url, study_name)
    trials = top_trials(study, top)
    if not trials:
        click.echo(f"study {study_name!r} has no complete trial yet")
        return
    _console().print(results_table(study, trials, f"top {len(trials)} of {study_name}"))
    records_dir = study.user_attrs.get("records_dir")
    result = compute_wfo(study, Path(records_dir)) if records_dir else None
    if result is not None:
        for line in wfo_lines(result):
            click.echo(line)
    else:
        click.echo(f"no trial records found under {records_dir}: walk-forward optimisation needs them")
    click.echo(holdout_line(study))
    for line in _provenance_block(study, trials[0], records_dir):
        click.echo(line)


def _provenance_block(study: optuna.Study, trial: FrozenTrial, records_dir: str | None) -> list[str]:
    """The study's provenance and the best trial's own (from its record), compactly."""
    from search.provenance import provenance_lines
    from search.records import read_meta, record_path

    meta: dict[str, Any] = {"number": trial.number}
    path = record_path(records_dir, trial.number) if records_dir else None
    if path is not None and path.exists():
        meta = read_meta(path)
    return provenance_lines(study.user_attrs, meta, study_name=study.study_name)


# --------------------------------------------------------------------------------------------- dashboard


@click.command("dashboard")
@storage_option()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind; 0.0.0.0 exposes the dashboard (no authentication) to the network.",
)
@int_option(
    "--port",
    default=8080,
    help="Port (0: any free port; the URL is printed).",
    low=0,
    high=65535,
)
def dashboard(storage: str | None, host: str, port: int) -> None:
    """Serve optuna-dashboard on the study storage until Ctrl-C."""
    from search.dashboard import dashboard_server
    from search.paths import studies_root
    from search.study import mask_url, open_storage, storage_url

    url = storage_url(storage, studies_root())
    try:
        server = dashboard_server(open_storage(url), host, port)
    except OSError as exc:
        click.echo(
            f"error: cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port", err=True
        )
        sys.exit(2)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"optuna-dashboard for {mask_url(url)} at http://{shown}:{server.server_port}/dashboard/ (Ctrl-C stops)",
        nl=True,
    )
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
