"""``search spec ...``: validate spec spaces, print sampled specs, export the JSON schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from spec_space.loader import (
    SpecError,
    dump_spec,
    load_space,
    load_spec,
    read_yaml,
    spec_json_schema,
    strategy_json_schema,
)


@click.group()
def spec() -> None:
    """Strategy specs and spec spaces: validate, sample, JSON schema."""


@spec.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check spec or space files; every problem is reported with its file, line and field."""
    failed = 0
    for path in files:
        try:
            raw = read_yaml(path)
            if isinstance(raw, dict) and "spec" in raw:
                space = load_space(path)
                click.echo(f"{path}: ok (space '{space.name}', {len(space.params)} parameters, "
                           f"~{space.size_estimate():.3g} points)")
            else:
                spec_ = load_spec(path)
                click.echo(f"{path}: ok (spec '{spec_.name}')")
        except SpecError as exc:
            failed += 1
            click.echo(str(exc), err=True)
    sys.exit(1 if failed else 0)


@spec.command("sample")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
def sample(file: Path, seed: int) -> None:
    """Print one concrete spec drawn from a space (YAML), with the parameter values used."""
    try:
        space = load_space(file)
    except SpecError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    values, concrete = space.sample(seed)
    click.echo(f"# parameters (seed {seed}): {json.dumps(values)}")
    click.echo(dump_spec(concrete), nl=False)


@spec.command("schema")
@click.option("--kind", type=click.Choice(["space", "strategy"]), default="space", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write to a file instead of stdout.")
def schema(kind: str, out: Path | None) -> None:
    """Export the JSON schema of a spec space (what the seeding agents are given) or of a strategy."""
    text = json.dumps(spec_json_schema() if kind == "space" else strategy_json_schema(), indent=2)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n")
        click.echo(f"wrote {out}")


@spec.command("catalogue")
@click.option("--write", "write_file", is_flag=True, help="Refresh spec_space/catalogue.md instead of printing.")
def catalogue(write_file: bool) -> None:
    """Print the building-block catalogue (signals, instruments, exits, sizing, costs)."""
    from spec_space import catalogue as cat

    if write_file:
        click.echo(f"wrote {cat.write()}")
    else:
        click.echo(cat.render(), nl=False)
