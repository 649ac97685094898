"""Where trials are evaluated: inline in the driver, or as Ray tasks on local cores or a cluster.

Both executors take trials one by one (:meth:`Executor.submit`) and hand back results as they finish
(:meth:`Executor.next_result`); the driver decides what to ask and in which order to tell.

Several trials per Ray task when trials are short: Ray's own cost per task (scheduling, result transfer;
about 1-5 ms of CPU that the workers share on a small machine) is divided among the trials of a task.
The executor sizes tasks from the trials' measured evaluation time so that a task takes about
:data:`TASK_TARGET_S`, never more than ``batch_size // workers`` trials (one task per worker and batch);
long trials go one per task, so that workers stay evenly loaded (a worker that drew a long task would
otherwise idle once the next batch waits for it). A group that is not full is sent as soon as the
driver waits for a result. The grouping changes no result, only which process runs what.

Worker processes run polars single-threaded (``POLARS_MAX_THREADS=1``): each already has its one CPU,
and a thread pool per worker only fights the other workers for the same cores (measured on 2 cores:
two bare evaluation processes side by side gave 24-28 trials/s single-threaded, 20-24 with polars'
default pool).

What a task carries: a :class:`WorkContext` (the space by value, the store by its root path, the folds,
the engine) shipped once per run (Ray: one ``ray.put``), plus the trial number and parameter values.
Each worker process loads the :class:`~evaluator.market.Market` once and keeps it in a per-process
cache keyed by store root, space hash, engine and the market-relevant part of the spec, so every later
trial of the run reuses its bars and cached signals. A trial that raises comes back as a
:class:`TaskResult` with the error; a worker process that dies is retried by Ray (``max_retries``).
"""

from __future__ import annotations

import abc
import collections
import contextlib
import logging
import os
import socket
import traceback
from dataclasses import dataclass, field
from typing import Any, Protocol

from evaluator.market import Market, load_market, market_key
from evaluator.trial import TrialOutcome, evaluate_params
from evaluator.walkforward import Fold
from spec_space.models import StrategySpec
from spec_space.space import Scalar, SpecSpace

__all__ = [
    "Executor",
    "InlineExecutor",
    "RayExecutor",
    "SerialExecutor",
    "TaskResult",
    "WorkContext",
    "clear_market_cache",
    "evaluate_task",
    "evaluate_tasks",
    "market_cache_info",
]

#: Ray retries a task this many times when its worker process dies (not when the trial raises).
MAX_RETRIES = 3
#: Evaluation time a Ray task aims at when it groups short trials (see the module docstring).
TASK_TARGET_S = 0.05
#: Markets kept per worker process (one per space and data root in practice).
MARKET_CACHE_SIZE = 4
#: Signal arrays cached on a market beyond this many bytes are dropped (they are recomputed on demand),
#: so a long search over many distinct indicator periods cannot exhaust a worker's memory.
SIGNAL_CACHE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class WorkContext:
    """What every task of a run shares; small, shipped by value."""

    space: SpecSpace
    space_hash: str
    store_root: str
    folds: tuple[Fold, ...]
    engine: str = "fast"


@dataclass
class TaskResult:
    """A trial's outcome, or the error that stopped it."""

    number: int
    outcome: TrialOutcome | None = None
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)
    worker: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is not None


# --------------------------------------------------------------------------------- worker side

_MARKETS: collections.OrderedDict[tuple[str, ...], Market] = collections.OrderedDict()


def _market_key(ctx: WorkContext, spec: StrategySpec) -> tuple[str, ...]:
    # the market depends on what is traded and how it is sampled, not on signals or exits
    return (ctx.store_root, ctx.space_hash, ctx.engine, *map(str, market_key(spec)))


def worker_market(ctx: WorkContext, spec: StrategySpec) -> Market:
    """The market for ``spec`` from this process's cache, loading it on first use."""
    from data.store import Store

    key = _market_key(ctx, spec)
    market = _MARKETS.get(key)
    if market is None:
        space = ctx.space
        market = load_market(Store(ctx.store_root), spec, space.data.start, space.data.end)
        _MARKETS[key] = market
        while len(_MARKETS) > MARKET_CACHE_SIZE:
            _MARKETS.popitem(last=False)
    else:
        _MARKETS.move_to_end(key)
    return market


def clear_market_cache() -> None:
    _MARKETS.clear()


def market_cache_info() -> dict[str, Any]:
    """Cached markets of this process (for tests and benchmarks)."""
    return {"pid": os.getpid(), "markets": len(_MARKETS), "keys": [k[:3] for k in _MARKETS]}


def _trim_signal_cache(market: Market) -> None:
    cache = market.bars.cache
    if sum(getattr(v, "nbytes", 0) for v in cache.values()) > SIGNAL_CACHE_BYTES:
        cache.clear()


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def evaluate_task(ctx: WorkContext, number: int, values: dict[str, Scalar]) -> TaskResult:
    """Evaluate one trial in this process; never raises for a trial's own errors."""
    worker = f"{os.getpid()}@{socket.gethostname()}"
    try:
        spec = ctx.space.build(values)
        market = worker_market(ctx, spec)
        outcome = evaluate_params(ctx.space, values, market, ctx.folds, engine=ctx.engine)
        _trim_signal_cache(market)
        return TaskResult(number, outcome=outcome, worker=worker)
    except Exception as exc:  # noqa: BLE001 - any trial error is recorded on the trial, the study goes on
        if _caused_by_interrupt(exc):
            raise KeyboardInterrupt from exc  # Ctrl-C inside numba surfaces as SystemError: not a trial error
        return TaskResult(
            number,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=20),
            worker=worker,
        )


def evaluate_tasks(ctx: WorkContext, trials: list[tuple[int, dict[str, Scalar]]]) -> list[TaskResult]:
    """Several trials in one task, one after the other (see the module docstring)."""
    return [evaluate_task(ctx, number, values) for number, values in trials]


# --------------------------------------------------------------------------------- executors


class Executor(Protocol):
    """Runs trials; results come back in completion order."""

    workers: int
    kind: str

    def submit(self, number: int, values: dict[str, Scalar]) -> None:
        """Queue trial ``number`` with ``values``."""

    def next_result(self, timeout: float | None = None) -> TaskResult | None:
        """The next finished trial; ``None`` if none finished within ``timeout`` seconds (None: wait).

        Only call while :meth:`pending` > 0. The inline executor runs one trial and ignores ``timeout``.
        """

    def pending(self) -> int:
        """Trials submitted and not yet returned by :meth:`next_result`."""

    def cancel(self) -> list[int]:
        """Stop every pending trial (best effort) and return their numbers."""

    def close(self) -> None:
        """Release workers."""


class SerialExecutor(abc.ABC):
    """Evaluates trials in the calling process, one at a time, first submitted first; a subclass says how
    one trial is evaluated (:meth:`evaluate`)."""

    kind = "inline"
    workers = 1

    def __init__(self) -> None:
        self._queue: collections.deque[tuple[int, dict[str, Scalar]]] = collections.deque()

    @abc.abstractmethod
    def evaluate(self, number: int, values: dict[str, Scalar]) -> TaskResult:
        """Trial ``number`` with ``values``, evaluated now."""

    def submit(self, number: int, values: dict[str, Scalar]) -> None:
        self._queue.append((number, values))

    def next_result(self, timeout: float | None = None) -> TaskResult | None:
        number, values = self._queue.popleft()
        return self.evaluate(number, values)

    def pending(self) -> int:
        return len(self._queue)

    def cancel(self) -> list[int]:
        numbers = [n for n, _ in self._queue]
        self._queue.clear()
        return numbers

    def close(self) -> None:
        self._queue.clear()


class InlineExecutor(SerialExecutor):
    """Evaluates trials in the calling process with the run's context (``--workers 1 --no-ray``)."""

    def __init__(self, ctx: WorkContext) -> None:
        super().__init__()
        self.ctx = ctx

    def evaluate(self, number: int, values: dict[str, Scalar]) -> TaskResult:
        return evaluate_task(self.ctx, number, values)


class RayExecutor:
    """Trials as Ray tasks: a local Ray instance with ``workers`` CPUs, or a cluster at ``address``."""

    kind = "ray"

    def __init__(
        self,
        ctx: WorkContext,
        *,
        workers: int,
        address: str | None = None,
        batch_size: int = 1,
        trials_per_task: int | None = None,
    ) -> None:
        import ray

        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            options: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": logging.ERROR,  # quiet: no start-up banners or token notices
                "log_to_driver": False,
                "configure_logging": True,
                "runtime_env": {"env_vars": {"POLARS_MAX_THREADS": "1"}},
            }
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=workers, **options)
            self._started = True
        self.workers = int(ray.cluster_resources().get("CPU", workers)) if address else workers
        self.max_per_task = trials_per_task or max(1, batch_size // self.workers)
        self._fixed = trials_per_task is not None
        self.trials_per_task = self.max_per_task if self._fixed else 1  # until trials have been timed
        self._trial_s: float | None = None  # running mean of one trial's evaluation time
        self._task = ray.remote(evaluate_tasks).options(
            num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False
        )
        self._ctx_ref = ray.put(ctx)
        self._group: list[tuple[int, dict[str, Scalar]]] = []  # submitted, not yet sent
        self._refs: dict[Any, list[int]] = {}  # task -> its trial numbers
        self._ready: collections.deque[TaskResult] = collections.deque()

    def submit(self, number: int, values: dict[str, Scalar]) -> None:
        self._group.append((number, values))
        if len(self._group) >= self.trials_per_task:
            self._send()

    def _send(self) -> None:
        if self._group:
            self._refs[self._task.remote(self._ctx_ref, self._group)] = [n for n, _ in self._group]
            self._group = []

    def next_result(self, timeout: float | None = None) -> TaskResult | None:
        if self._ready:
            return self._ready.popleft()
        self._send()  # the driver waits: a group that is not full goes now
        ray = self._ray
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if not ready:
            return None
        ref = ready[0]
        numbers = self._refs.pop(ref)
        try:
            results = ray.get(ref)
            self._ready.extend(results)
            self._resize([r.outcome.elapsed for r in results if r.outcome is not None])
        except (
            ray.exceptions.RayError
        ) as exc:  # the worker died more than MAX_RETRIES times, or was cancelled
            message = str(exc).strip().splitlines()
            self._ready.extend(
                TaskResult(
                    number,
                    error=f"{type(exc).__name__}: {message[0] if message else ''} (after {MAX_RETRIES} retries)",
                    traceback=str(exc)[-4000:],
                )
                for number in numbers
            )
        return self._ready.popleft()

    def _resize(self, elapsed: list[float]) -> None:
        if self._fixed or not elapsed:
            return
        mean = sum(elapsed) / len(elapsed)
        self._trial_s = mean if self._trial_s is None else 0.8 * self._trial_s + 0.2 * mean
        wanted = round(TASK_TARGET_S / max(self._trial_s, 1e-6))
        self.trials_per_task = max(1, min(self.max_per_task, wanted))

    def pending(self) -> int:
        return len(self._group) + sum(map(len, self._refs.values())) + len(self._ready)

    def cancel(self) -> list[int]:
        numbers = sorted(
            [n for n, _ in self._group]
            + [n for ns in self._refs.values() for n in ns]
            + [r.number for r in self._ready]
        )
        for ref in list(self._refs):
            # best effort: the task may have finished meanwhile
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True)
        self._refs.clear()
        self._group.clear()
        self._ready.clear()
        return numbers

    def close(self) -> None:
        if self._refs or self._group:
            self.cancel()
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(
    ctx: WorkContext, *, workers: int, use_ray: bool, address: str | None, batch_size: int = 1
) -> Executor:
    """Inline for ``use_ray=False`` (one worker), else Ray (local unless ``address``); ``batch_size``, the
    driver's trials per asked batch, sizes the Ray tasks (see the module docstring)."""
    if not use_ray:
        if workers != 1:
            raise ValueError(
                f"--no-ray evaluates trials inline in one process, but --workers is {workers}; "
                "use --workers 1 with --no-ray, or drop --no-ray to run on Ray"
            )
        return InlineExecutor(ctx)
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    return RayExecutor(ctx, workers=workers, address=address, batch_size=batch_size)
