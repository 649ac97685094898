"""The main job, timed: ``search run --space spec_space/zrce.yaml --trials 500`` on the sample data.

    python -m benchmarks.bench_main_job [--trials 500] [--keep DIR]

Generates the sample data the README's demo uses for SPY (minute bars plus the 0DTE option chain,
the default two-year window 2023-01-03 .. 2024-12-31, seed 7, no plant), ingests it, then runs the
shipped ZRCE space (6 walk-forward folds of 120 / 40 sessions, a 125-session holdout, NSGA-II, SQLite
storage) twice, side by side: on local Ray with 2 workers (the default) and inline in
one process. Target from the issue: 500 trials x 6 folds in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from data.ingest import ingest
from data.synth import DEFAULT_END, DEFAULT_START, generate
from search.run import RunConfig, run_search

SPACE = Path(__file__).resolve().parents[1] / "spec_space" / "zrce.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--keep", type=Path, default=None, help="Work folder to keep (default: a temp dir).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        t0 = time.perf_counter()
        generate(work / "flat", tickers=["SPY"], start=DEFAULT_START, end=DEFAULT_END, seed=7)
        report = ingest(work / "flat", work / "store", workers=2)
        print(f"sample data: SPY minute bars and option chain {DEFAULT_START} .. {DEFAULT_END}, {report.rows_written:,} rows, "
              f"{time.perf_counter() - t0:.1f} s to generate and ingest\n")
        rows = []
        for label, workers, use_ray in (("ray x2", 2, True), ("inline x1", 1, False)):
            config = RunConfig(space_path=SPACE, trials=args.trials, study=f"zrce_{workers}", workers=workers,
                               use_ray=use_ray, data_root=str(work / "store"), studies_root=work / "studies",
                               progress=False)
            t0 = time.perf_counter()
            summary = run_search(config, echo=lambda _line: None)
            wall = time.perf_counter() - t0
            rows.append((label, summary.complete, summary.failed, wall, summary.complete / wall))
        print(f"{'zrce, 6 folds':<14}{'complete':>9}{'failed':>8}{'wall s':>9}{'trials/s':>10}")
        for label, complete, failed, wall, rate in rows:
            print(f"{label:<14}{complete:>9}{failed:>8}{wall:>9.1f}{rate:>10.2f}")
        print(f"\nwall time includes starting Ray and loading the market once per worker; target: "
              f"{args.trials} trials in under 120 s -> {'met' if rows[0][3] < 120 else 'NOT met'} with Ray x2")


if __name__ == "__main__":
    main()
