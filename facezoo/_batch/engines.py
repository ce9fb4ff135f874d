"""Where the units of a batch run are computed: local worker processes, or a Ray Data actor pool.

Both engines run :class:`~facezoo._batch.rows.BatchWorker` (models loaded once per process or
actor) on units ``{"unit": k, "images": JSON}`` and yield ``(unit, rows JSON)`` as units finish,
in any order; the caller writes the parts.
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

from ..errors import FacezooError, MissingExtraError
from .rows import BatchWorker

logger = logging.getLogger(__name__)

#: Times the local engine restarts its pool after a worker process died, before it gives up.
RESTARTS = 3

_worker: BatchWorker | None = None


def _die_with_parent() -> None:
    """Linux: end this worker when the driver dies (even by SIGKILL), rather than linger."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:
            os._exit(1)


def _start_worker(models: list[str], load_options: dict[str, Any], threads: int) -> None:
    global _worker
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the driver, which stops the pool
    _worker = BatchWorker(models, load_options, threads)


def _run_unit(unit: dict[str, Any]) -> tuple[int, str]:
    result = _worker({"unit": [unit["unit"]], "images": [unit["images"]]})
    return result["unit"][0], result["rows"][0]


def run_local(units: list[dict[str, Any]], models: list[str], load_options: dict[str, Any], workers: int, threads: int) -> Iterator[tuple[int, str]]:
    """Units computed by ``workers`` processes of ``threads`` torch threads each.

    A worker that dies (killed, out of memory) breaks the pool: it is started afresh and the
    unfinished units run again, up to :data:`RESTARTS` times, as long as units get finished.
    """
    pending = {unit["unit"]: unit for unit in units}
    context = multiprocessing.get_context("spawn")
    for attempt in range(RESTARTS + 1):
        pool = futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(models, load_options, threads))
        unfinished = len(pending)
        try:
            queue = iter(list(pending.values()))
            running: set[futures.Future] = set()
            for unit in queue:
                running.add(pool.submit(_run_unit, unit))
                if len(running) >= 2 * workers:
                    break
            while running:
                done, running = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    unit, rows = future.result()
                    del pending[unit]
                    yield unit, rows
                    following = next(queue, None)
                    if following is not None:
                        running.add(pool.submit(_run_unit, following))
            return
        except futures.process.BrokenProcessPool:
            if len(pending) == unfinished:
                raise FacezooError(
                    "the worker processes died before finishing any unit; their error is above. (A Python script that calls "
                    "facezoo.batch must keep its code under `if __name__ == '__main__':`, since each worker process imports it.)"
                ) from None
            if attempt == RESTARTS:
                raise FacezooError(
                    f"worker processes died {RESTARTS + 1} times (killed, or out of memory?); the finished parts are kept: "
                    "run the same command again to resume, with fewer --workers or a smaller --batch-size if memory is short"
                ) from None
            logger.warning("a worker process died; restarting the pool and running %d unfinished units again", len(pending))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def import_ray(local: bool):
    if local and "ray" not in sys.modules:
        # Read once, when ray is first imported: set after that they would split Ray's Python and
        # C++ halves (with RAY_AUTH_MODE, a GCS that wants a token its clients do not send).
        # Ray resolves 127.0.0.1 to the machine's address (and then listens on every interface)
        # unless this is off.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # Token authentication, which a new local Ray turns on by itself (setting this variable
        # the same way), chosen explicitly so that Ray does not warn that it chose it.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
        import ray.data  # noqa: F401
        import ray.util.debug  # noqa: F401
    except ImportError:
        raise MissingExtraError("ray", "ray", "engine='ray'") from None
    return ray


def ray_verbose() -> bool:
    """Whether Ray's own logs reach the console: when facezoo's logger shows INFO (``facezoo -v``)."""
    return logging.getLogger("facezoo").isEnabledFor(logging.INFO)


def start_ray(address: str | None, num_cpus: int):
    """Connect to Ray: the session already open, the cluster at ``address``, or a local Ray for
    this run that listens on 127.0.0.1 only. Returns the module and whether we started it.

    Ray's start-up messages and its workers' output stay off the console unless
    :func:`ray_verbose`. (One line remains: Ray Data's notice that its actors have constructor
    arguments in the object store, ray-project/ray#57733, which only disabling actor restarts
    would silence.)
    """
    ray = import_ray(local=address is None)
    if ray.is_initialized():
        return ray, False
    verbose = ray_verbose()
    options = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.WARNING}
    if address is not None:
        ray.init(address=address, **options)
        return ray, True
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=num_cpus, **options)
    node = ray.util.get_node_ip_address()
    if node != "127.0.0.1":
        ray.shutdown()
        raise FacezooError(
            f"the local Ray would listen on {node}, not only on 127.0.0.1: ray was imported before facezoo could set "
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0. Set it in the environment, or start Ray yourself and pass ray_address"
        )
    return ray, True


def run_ray(
    units: list[dict[str, Any]], models: list[str], load_options: dict[str, Any], workers: int | None, threads: int, address: str | None, gpus: float
) -> Iterator[tuple[int, str]]:
    """Units computed by a Ray Data actor pool of ``workers`` actors (``threads`` CPUs and
    ``gpus`` GPUs each), on a local Ray or the cluster at ``address``."""
    ray, started = start_ray(address, num_cpus=(workers or os.cpu_count() or 1) * threads)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False  # facezoo shows its own
        ray.util.debug.log_once("ray_data_progress_manager_disabled")  # and Ray need not warn that its own is off
        if not ray_verbose():
            logging.getLogger("ray.data").setLevel(logging.WARNING)  # no execution plans on the console
        if workers is None:
            resources = ray.cluster_resources()
            workers = max(1, int(resources.get("GPU", 0) // gpus) if gpus else int(resources.get("CPU", 1) // threads))
        workers = min(workers, len(units))
        dataset = ray.data.from_items(units, override_num_blocks=min(len(units), 8 * workers))
        results = dataset.map_batches(
            BatchWorker,
            fn_constructor_kwargs={"models": models, "load_options": load_options, "threads": threads},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=threads,
            num_gpus=gpus or None,
        )
        for row in results.iter_rows():
            yield int(row["unit"]), str(row["rows"])
    finally:
        if started:
            ray.shutdown()
