"""Where tile and partition tasks run: in this process, or on a dask cluster.

The out-of-core paths split their local work (per-tile tests, per-partition
neighbour counts ...) into independent tasks that read their inputs from files and
write their results into disjoint windows of shared scratch files. :func:`task_runner`
runs such tasks here, one after the other, or on a ``dask.distributed`` cluster, with
the same results. On a cluster the input and scratch files must be on storage every
worker sees at the same path.

A task that fails because its worker died is run again by dask (up to the scheduler's
``distributed.scheduler.allowed-failures``, 3 by default); tasks are idempotent (they
rewrite the same windows), so a retry gives the same result. A task that cannot be
completed ends the run with :class:`~pari_geo.errors.SchedulerError`; the callers then
write no output.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .errors import ConfigError, PariGeoError, SchedulerError
from .ingest import first_line

#: runs ``fn(*args)`` for every ``args`` of a list and returns the results in order
TaskRunner = Callable[[Callable[..., Any], Sequence[tuple]], list]

#: retries of a task that raised an exception (on top of worker-death rescheduling)
TASK_RETRIES = 2


def _run_here(fn: Callable[..., Any], calls: Sequence[tuple]) -> list:
    return [fn(*args) for args in calls]


def describe(scheduler: Any) -> str:
    """A short name of a scheduler for messages and provenance tags.

    Examples
    --------
    >>> describe(None)
    'in-process'
    >>> describe("tcp://10.0.0.1:8786")
    'tcp://10.0.0.1:8786'
    """
    if scheduler is None:
        return "in-process"
    if isinstance(scheduler, str):
        return scheduler
    return str(getattr(scheduler, "scheduler_address", None)
               or getattr(getattr(scheduler, "scheduler", None), "address", None)
               or type(scheduler).__name__)


def _connect(scheduler: Any) -> tuple[Any, bool]:
    """``(client, owned)`` for a ``distributed.Client`` or a scheduler address."""
    try:
        import distributed
    except ImportError:
        raise ConfigError("scheduler", "needs dask.distributed: pip install 'pari_geo[dask]'",
                          what="option") from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ConfigError("scheduler", "must be a scheduler address such as "
                          f"'tcp://host:8786' or a distributed.Client, got {scheduler!r}",
                          what="option")
    address = scheduler.strip()
    timeout = os.environ.get("PARI_GEO_SCHEDULER_TIMEOUT", "10s")
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise SchedulerError(address, f"cannot connect ({err or type(err).__name__}); "
                             "is the scheduler running and reachable?") from None
    except Exception as err:  # unsupported or misconfigured protocol (tls://, ucx://)
        raise SchedulerError(address, f"cannot connect ({type(err).__name__}: "
                             f"{first_line(err)}); for TLS or other security settings "
                             "pass a configured distributed.Client instead") from None
    try:
        client.wait_for_workers(1, timeout=timeout)  # type: ignore[arg-type]
    except (OSError, TimeoutError):
        client.close()
        raise SchedulerError(address, f"has no workers (none joined within {timeout})"
                             ) from None
    return client, True


class _TaskError:
    """A pari_geo error raised by a task, returned as a value (never retried)."""

    def __init__(self, error: PariGeoError) -> None:
        self.error = error


def _guarded(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a task; a :class:`PariGeoError` (bad input found by a worker) comes back as a
    value, so dask neither retries the task nor logs it as a crash."""
    try:
        return fn(*args)
    except PariGeoError as err:
        return _TaskError(err)


@contextlib.contextmanager
def task_runner(scheduler: Any = None) -> Iterator[TaskRunner]:
    """A :data:`TaskRunner` for ``scheduler`` (None: this process).

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        ``None`` runs tasks here in order; an address (``"tcp://host:8786"``) connects
        a client for the duration of the block; a client is used as it is.

    Yields
    ------
    TaskRunner

    Raises
    ------
    SchedulerError
        The scheduler cannot be reached, or a task failed on every attempt (for example
        its workers kept dying).

    Examples
    --------
    >>> with task_runner(None) as run:
    ...     run(pow, [(2, 3), (3, 2)])
    [8, 9]
    """
    if scheduler is None:
        yield _run_here
        return
    client, owned = _connect(scheduler)
    name = describe(scheduler)

    def run(fn: Callable[..., Any], calls: Sequence[tuple]) -> list:
        if not calls:
            return []
        futures = client.map(_guarded, [fn] * len(calls), *zip(*calls, strict=True),
                             pure=False, retries=TASK_RETRIES,
                             key=[f"{getattr(fn, '__name__', 'task')}-{uuid.uuid4().hex}"
                                  for _ in calls])
        try:
            results = client.gather(futures)
        except Exception as err:
            _settle(client, futures)
            raise SchedulerError(name, f"task {getattr(fn, '__name__', fn)} failed: "
                                 f"{_task_problem(err)}; no output was written") from err
        for r in results:
            if isinstance(r, _TaskError):
                raise r.error  # a task's own clear error (bad input found by a worker)
        return results

    try:
        yield run
    finally:
        if owned:
            client.close()


def _settle(client: Any, futures: list) -> None:
    """Let the tasks still running finish (they write into scratch files the caller is
    about to remove), then cancel the rest."""
    import distributed

    with contextlib.suppress(Exception):
        distributed.wait(futures, timeout=SETTLE_SECONDS)
    with contextlib.suppress(Exception):
        client.cancel(futures)


#: seconds to wait for running tasks after a task failed for good
SETTLE_SECONDS = 60


def _task_problem(err: BaseException) -> str:
    """One line on why a task could not be completed."""
    kind = type(err).__name__
    if kind == "KilledWorker":
        return ("its worker died on every attempt (out of memory, killed, or crashed); "
                "raise the workers' memory or use smaller tiles")
    if isinstance(err, OSError):
        return (f"{kind}: {err}; on a cluster, inputs and the work folder must be on "
                "storage every worker sees at the same path")
    first = first_line(err)
    return f"{kind}: {first}" if first else kind
