"""``search data ...``: sample data generation and flat-file ingest."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from data.plants import PLANT_CHOICES, Plant, parse_plant, plant_help

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


def _parse_plant(ctx: click.Context, param: click.Parameter, value: str | None) -> Plant | None:
    try:
        return parse_plant(value, flag="--plant")
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.group()
def data() -> None:
    """Polygon flat files: generate sample data, ingest to the Parquet store."""


@data.command("synth", epilog="Planted edges:\n\n" + plant_help())
@click.option(
    "--root", required=True, type=click.Path(file_okay=False, path_type=Path), help="Flat-file root to write."
)
@click.option(
    "--tickers", default=None, help="Comma-separated tickers (default: SPY,QQQ,AMD,C:EURUSD,C:XAUUSD,MES)."
)
@click.option("--start", type=DATE, default=None, help="First date (default 2023-01-03).")
@click.option("--end", type=DATE, default=None, help="Last date (default 2024-12-31).")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--plant",
    "plant",
    default="none",
    show_default=True,
    metavar="NAME[:STRENGTH]",
    callback=_parse_plant,
    help=f"Plant a known edge: one of {', '.join(PLANT_CHOICES)}; STRENGTH >= 0 scales it (0 = nothing "
    "planted, the same files as none). Definitions below.",
)
def synth(
    root: Path, tickers: str | None, start: dt.datetime | None, end: dt.datetime | None, seed: int,
    plant: Plant | None,
) -> None:
    """Write realistic sample data in the exact Polygon flat-file layout.

    Without --plant the market is a null market (random walks: no strategy has an edge). With
    --plant NAME[:STRENGTH] a known edge is planted; <root>/_synthetic.json records seed, window and
    plant, and `search data ingest` carries it into the store's manifest.
    """
    from data.synth import DEFAULT_END, DEFAULT_START, DEFAULT_TICKERS, generate

    report = generate(
        root,
        tickers=tickers.split(",") if tickers else list(DEFAULT_TICKERS),
        start=_date(start) or DEFAULT_START,
        end=_date(end) or DEFAULT_END,
        seed=seed,
        plant=plant,
        progress=True,
    )
    click.echo(report.summary())


@data.command("ingest")
@click.option("--src", required=True, help="Flat-file root (a folder, or s3://bucket/prefix).")
@click.option("--dst", required=True, help="Parquet store root (a folder, or s3://bucket/prefix).")
@click.option(
    "--tickers", default=None, help="Comma-separated tickers or option/futures roots to keep (default: all)."
)
@click.option("--from", "date_from", type=DATE, default=None, help="First file date to ingest.")
@click.option("--to", "date_to", type=DATE, default=None, help="Last file date to ingest.")
@click.option("--workers", type=int, default=None, help="Parallel file workers (default: cores).")
def ingest(
    src: str,
    dst: str,
    tickers: str | None,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    workers: int | None,
) -> None:
    """Convert flat files (synthetic or real, unchanged) into the partitioned Parquet store."""
    from data.ingest import ingest as run_ingest

    report = run_ingest(
        src,
        dst,
        tickers=tickers.split(",") if tickers else None,
        date_from=_date(date_from),
        date_to=_date(date_to),
        workers=workers,
        progress=True,
    )
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)
