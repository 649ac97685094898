"""``search seed``: LLM agents turn strategy ideas (and Kirkland signals) into spec spaces."""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import click

from search.paths import default_data_root, studies_root


@click.command("seed")
@click.option("--ideas", "ideas_glob", default="seeds/strat_ideas*.txt", show_default=True,
              help="Glob of idea files; ideas inside a file are separated by a line '---'.")
@click.option("--signals", "signals_path", type=click.Path(path_type=Path), default=None,
              help="A Kirkland signals CSV: also write signal-follower spaces.")
@click.option("--provider", type=click.Choice(["openai", "gemini", "offline"]), default=None,
              help="Default: $FARM_LLM_PROVIDER, else offline (no key, deterministic).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("spec_space"), show_default=True)
@click.option("--data", "data_root", default=None, help="Store for the dry-run backtests (default: sample_data/store).")
@click.option("--trials", type=int, default=500, show_default=True, help="The trial budget the critic judges against.")
@click.option("--max-fixes", type=int, default=2, show_default=True, help="Fixer rounds per idea.")
@click.option("--synth-missing", is_flag=True, default=False,
              help="Dry-run on generated data when the store lacks the idea's instrument (the space says so); "
                   "without it, missing data is an error naming the ticker and the `search data` command.")
def seed(ideas_glob: str, signals_path: Path | None, provider: str | None, out: Path, data_root: str | None,
         trials: int, max_fixes: int, synth_missing: bool) -> None:
    """Research -> architect -> validate (schema + dry-run backtest) -> fix -> critic, per idea."""
    from seeds.agents import SeedPipeline, offline_provider, provenance, write_space
    from seeds.dry_run import DryRunner
    from seeds.providers import ProviderError, make_provider, split_ideas

    name = provider or __import__("os").environ.get("FARM_LLM_PROVIDER", "offline")
    try:
        llm = offline_provider() if name == "offline" else make_provider(name)
    except ProviderError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if name == "offline":
        click.echo("provider: offline (rule-based clause mapping onto the catalogue; no language model, no network)")
    files = sorted(glob.glob(ideas_glob))
    if not files and signals_path is None:
        click.echo(f"error: no idea files match {ideas_glob!r}", err=True)
        sys.exit(2)
    # sample data the dry run generates goes under the studies root, never the working directory
    dry_run = DryRunner(data_root or default_data_root(), cache_dir=studies_root() / ".seed_data",
                        synth_missing=synth_missing)
    pipeline = SeedPipeline(llm, dry_run=dry_run, max_fixes=max_fixes, trials=trials)
    accepted = rejected = 0
    for path in files:
        for index, text in enumerate(split_ideas(Path(path).read_text()), 1):
            start = len(pipeline.calls)
            try:
                outcome = pipeline.seed_idea(text, source=path, index=index)
            except ProviderError as exc:
                click.echo(f"{path} idea {index}: provider error: {exc}", err=True)
                rejected += 1
                continue
            if outcome.accepted and outcome.space is not None:
                prov = provenance(outcome, provider=llm, text=text, calls=pipeline.calls[start:])
                written = write_space(outcome.space, prov, out)
                accepted += 1
                trades = outcome.dry_run.get("n_trades") if outcome.dry_run else None
                click.echo(f"{path} idea {index}: {outcome.title!r} -> {written} "
                           f"(fix rounds {outcome.attempts - 1}, dry-run trades {trades})")
                for issue in outcome.critic:
                    click.echo(f"    critic {issue['severity']}: {issue['message']}")
            else:
                rejected += 1
                click.echo(f"{path} idea {index}: {outcome.title!r} rejected after {outcome.attempts} attempt(s):",
                           err=True)
                for error in outcome.errors:
                    click.echo(f"    {error.splitlines()[0][:600]}", err=True)
    if signals_path is not None:
        from seeds.kirkland import KirklandFormatError
        from seeds.signal_spaces import write_signal_spaces

        try:
            lines, written = write_signal_spaces(signals_path, out)
        except (KirklandFormatError, FileNotFoundError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        for line in lines:
            click.echo(line)
        accepted += len(written)
    click.echo(llm.ledger.summary_table() if hasattr(llm, "ledger") else "")
    click.echo(f"{accepted} space(s) written to {out}, {rejected} rejected")
    sys.exit(1 if rejected and not accepted else 0)
