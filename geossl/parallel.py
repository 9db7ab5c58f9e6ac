"""The Dask cluster every parallel step runs on: a LocalCluster by default, or an existing scheduler."""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from distributed import Client, Future, LocalCluster, as_completed

from geossl import killpoint
from geossl.progress import ProgressBar

log = logging.getLogger(__name__)


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, processes: bool = False
                ) -> Iterator[Client]:
    """Connect to ``scheduler`` (``tcp://host:port``) or start a LocalCluster for the duration.

    The local cluster defaults to one worker with one thread per core, in this process: tasks here are
    GDAL reads, codecs and NumPy kernels that release the GIL, so threads use every core without copying
    arrays between processes. ``processes=True`` starts ``workers`` worker processes instead.
    """
    for name in ("distributed", "distributed.worker", "distributed.scheduler", "distributed.nanny",
                 "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # A failed task is re-raised in the caller, which reports it once; the worker's own report would repeat it.
    logging.getLogger("distributed.worker").setLevel(logging.CRITICAL)
    if scheduler:
        log.info("connecting to the Dask scheduler at %s", scheduler)
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    cores = os.cpu_count() or 1
    if processes:
        kwargs: dict[str, Any] = {"n_workers": workers or cores, "threads_per_worker": 1}
    else:
        kwargs = {"n_workers": 1, "threads_per_worker": workers or cores}
    with (
        LocalCluster(processes=processes, dashboard_address=":0", silence_logs=logging.WARNING, **kwargs) as cluster,
        Client(cluster) as client,
    ):
        log.info("started a local Dask cluster: %d worker(s) x %d thread(s)", kwargs["n_workers"],
                 kwargs["threads_per_worker"])
        yield client


@contextmanager
def use_client(client: Client | None, scheduler: str | None = None, workers: int | None = None
               ) -> Iterator[Client]:
    """``client`` when given (left open: it is the caller's, e.g. a pipeline run's), else :func:`dask_client`'s."""
    if client is not None:
        yield client
        return
    with dask_client(scheduler, workers) as own:
        yield own


def gather_progress(futures: Iterable[Future[Any]], desc: str, quiet: bool = False
                    ) -> Iterator[tuple[Future[Any], Any]]:
    """Yield ``(future, result)`` as futures finish, with a progress bar; each result is released after use.

    A failed task re-raises its exception here, in the caller's process.
    """
    futures = list(futures)
    with ProgressBar(len(futures), desc, "task", quiet) as bar:
        for future in as_completed(futures):
            result = future.result()
            bar.update()
            yield future, result
            future.release()


def ordered_results(client: Client, func: Any, items: Iterable[Any], *, max_in_flight: int, desc: str,
                    quiet: bool = False) -> Iterator[Any]:
    """Yield ``func(item)`` for each item, computed on ``client``, in the items' order.

    At most ``max_in_flight`` tasks run or wait ahead of the one the caller consumes, so results the caller
    has not used yet never pile up in memory (a slow consumer holds the workers back). A failed task
    re-raises its exception here, in the caller's process. Each task is a unit of work for
    :mod:`geossl.killpoint`.
    """
    queue = deque(items)
    pending: deque[Future[Any]] = deque()
    with ProgressBar(len(queue), desc, "task", quiet) as bar:
        while queue or pending:
            while queue and len(pending) < max(1, max_in_flight):
                pending.append(client.submit(_unit, func, queue.popleft(), pure=False))
            future = pending.popleft()
            result = future.result()
            future.release()
            if queue:  # keep the workers busy while the caller uses this result
                pending.append(client.submit(_unit, func, queue.popleft(), pure=False))
            bar.update()
            yield result


def _unit(func: Any, item: Any) -> Any:
    """``func(item)``, counted as a unit of work of the running pipeline step (:mod:`geossl.killpoint`)."""
    killpoint.unit_started()
    return func(item)
