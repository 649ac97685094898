"""``search backtest``: one backtest of a spec (or a space at chosen parameters) on the Parquet store."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from search.cli_support import engine_option, setup_errors
from search.paths import default_data_root, run_folder

if TYPE_CHECKING:
    from data.store import Store
    from spec_space.models import StrategySpec
    from spec_space.space import SpecSpace

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, object]:
    values: dict[str, object] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r}: expected key=value, e.g. --set fast=12", param_hint="--set")
        key, raw = pair.split("=", 1)
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw  # a bare word, e.g. --set zone_time=10:30
    return values


@click.command("backtest")
@click.option("--spec", "spec_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="A spec file, or a space file (its parameters take --set values, else their defaults).")
@click.option("--set", "sets", multiple=True, help="Parameter value for a space: key=value (repeatable).")
@click.option("--from", "date_from", type=DATE, default=None, help="First session (default: the space's data window).")
@click.option("--to", "date_to", type=DATE, default=None, help="Last session (default: the space's data window).")
@click.option("--data", "data_root", default=None, help="Parquet store root (default: $FARM_DATA_ROOT or sample_data/store).")
@engine_option("Backtest engine.", default="fast")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run folder for trades.csv, daily.csv, metrics.json, equity.html (default: studies/backtests/...).")
def backtest(spec_path: Path, sets: tuple[str, ...], date_from: dt.datetime | None, date_to: dt.datetime | None,
             data_root: str | None, engine: str, out: Path | None) -> None:
    """Run one backtest, print its metrics, write its trades and an equity/drawdown plot."""
    from data.store import Store
    from evaluator.engines import get_engine
    from evaluator.market import load_market
    from reports.figures import equity_drawdown_figure
    from spec_space.loader import SpecError, is_space_file, load_space, load_spec
    from spec_space.space import DefaultSource

    space: SpecSpace | None = None
    try:
        if is_space_file(spec_path):
            space = load_space(spec_path)
            values = space.suggest(DefaultSource(space, _parse_sets(sets)))
            concrete = space.build(values)
            start, end = space.data.start, space.data.end
        else:
            if sets:
                raise click.UsageError("--set applies to space files (with params); this is a concrete spec")
            concrete, values = load_spec(spec_path), {}
            start = end = None
    except (SpecError, KeyError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    start = date_from.date() if date_from else start
    end = date_to.date() if date_to else end
    if start is None or end is None:
        raise click.UsageError("a concrete spec has no data window: give --from and --to")
    store = Store(data_root or default_data_root())
    t0 = time.perf_counter()
    with setup_errors(LookupError):
        market = load_market(store, concrete, start, end)
    t_load = time.perf_counter() - t0
    folder = out or run_folder("backtests", concrete.name)
    t0 = time.perf_counter()
    result = get_engine(engine)(concrete, market, start, end)
    t_run = time.perf_counter() - t0
    result.write(folder, concrete)
    (folder / "params.json").write_text(json.dumps(values, indent=2))
    _write_provenance(folder, concrete, space, spec_path, store, start, end, engine, values)
    fig = equity_drawdown_figure(result.daily.get_column("date").to_list(), result.daily.get_column("equity").to_list(),
                                 title=f"{concrete.name}: {start} to {end} ({engine} engine)",
                                 initial_cash=concrete.initial_cash)
    fig.write_html(folder / "equity.html", include_plotlyjs=True)
    click.echo(f"{concrete.name}  {start} .. {end}  engine={engine}  data={store.root}")
    if values:
        # computed (sum) parameters too, so the printed numbers are the spec's
        shown = space.resolved(values) if space is not None else values
        click.echo("params: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    for key, value in result.metrics.items():
        click.echo(f"  {key:<14} {value:>14.4f}" if isinstance(value, float) else f"  {key:<14} {value!s:>14}")
    click.echo(f"load {t_load:.2f}s, backtest {t_run * 1000:.1f} ms; wrote {folder}{os.sep}"
               "{trades.csv, daily.csv, metrics.json, equity.html, provenance.json, settings.json}")


def _write_provenance(folder: Path, spec: StrategySpec, space: SpecSpace | None, spec_path: Path, store: Store,
                      start: dt.date, end: dt.date, engine: str, values: dict[str, object]) -> None:
    """provenance.json (code, space, spec, data manifest, engine; see search.provenance) and settings.json
    (what was asked for), so the run folder says how to get the same result again."""
    from search.provenance import backtest_provenance
    from search.study import mask_url

    provenance = backtest_provenance(spec=spec, space=space, space_path=spec_path, store=store, start=start,
                                     end=end, engine=engine)
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str))
    settings = {
        "spec_path": str(spec_path.resolve()),
        "params": values,
        "engine": engine,
        "window": [str(start), str(end)],
        "data_root": mask_url(str(store.root)),
        "folder": str(folder.resolve()),
    }
    (folder / "settings.json").write_text(json.dumps(settings, indent=2, default=str))
