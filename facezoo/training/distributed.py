"""Training on several processes: ``torchrun --nproc-per-node N -m facezoo train ...`` or ``facezoo train --nproc N``.

Every process runs the same :class:`~facezoo.training.loop.Loop` on the same data with the same
seeds. Each fine-tuning batch (the same seeded permutation everywhere) is split between the
processes, and their gradients are summed, each weighted by its share of the batch, so every
optimiser step sees the gradient of the whole batch and the weights stay identical everywhere.
What is cheap or must be identical is computed by every process alike: the head stage, validation,
the choice of the best epoch. Process 0 alone writes caches first (the others then read them),
checkpoints, the history and the model directory.

PyTorch's SyncBatchNorm needs CUDA, so on the CPU each process's batch norm layers normalise its
share of the batch (running statistics are averaged across processes after every epoch, which
equals averaging them after every step, as they are moving averages), and dropout draws its own
masks in each process. Results therefore match one process closely, not exactly (see
``tests/test_ddp.py`` for the tolerance). The loop trains on the CPU, so processes talk through
gloo.

Example:
    $ torchrun --nproc-per-node 2 -m facezoo train beauty --dataset scut-fbp5500 --output runs/beauty
    $ facezoo train beauty --dataset scut-fbp5500 --output runs/beauty --nproc 2    # same, on loopback only
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist

from ..errors import FacezooError

logger = logging.getLogger(__name__)

#: Set by ``facezoo train --nproc``: where the processes meet (a file, so no TCP store listens anywhere).
INIT_VARIABLE = "FACEZOO_DIST_INIT"


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process; ``(0, 1)`` when training alone."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_environment() -> bool:
    """Join the process group that ``torchrun`` (``RANK``, ``WORLD_SIZE``) or ``facezoo train --nproc``
    describes, if any and not joined yet; True if this call joined it (it should leave it too)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise FacezooError(f"WORLD_SIZE={size} asks for distributed training, but this PyTorch has no torch.distributed")
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", init_method=os.environ.get(INIT_VARIABLE, "env://"), rank=rank, world_size=size)
    logger.info("process %d of %d joined the training", rank, size)
    return True


def leave() -> None:
    dist.destroy_process_group()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Process 0 runs the block first (filling caches, writing the run's settings); the others run
    it after, reading what it wrote."""
    rank, size = world()
    if size > 1 and rank != 0:
        dist.barrier()
    yield
    if size > 1 and rank == 0:
        dist.barrier()


def sum_gradients(parameters: Iterable[torch.nn.Parameter], share: float) -> None:
    """Replace each gradient by the sum over processes of ``share`` × that process's gradient
    (``share``: its part of the batch), in one all-reduce."""
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads]) * share
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_buffers(module: torch.nn.Module) -> None:
    """Average the floating-point buffers (batch norm running statistics) over the processes."""
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if buffers:
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.all_reduce(flat)
        flat /= world()[1]
        offset = 0
        for b in buffers:
            b.copy_(flat[offset : offset + b.numel()].view_as(b))
            offset += b.numel()


def total(*values: float) -> list[float]:
    """Each value summed over the processes."""
    flat = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(flat)
    return flat.tolist()


def _process(rank: int, size: int, store: str, function: Callable, args: tuple, kwargs: dict) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(size), **{INIT_VARIABLE: store})
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # processes on one machine talk over loopback only
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // size))
    try:
        function(*args, **kwargs)
    except FacezooError as exc:
        raise SystemExit(f"facezoo: error in process {rank}: {exc}") from None  # the message, without a traceback


def launch(processes: int, function: Callable, *args: Any, **kwargs: Any) -> None:
    """Run ``function(*args, **kwargs)`` in ``processes`` processes on this machine that form one
    training (what ``facezoo train --nproc`` does); an error in one ends them all.

    Example:
        >>> launch(2, facezoo.train, "beauty", "scut-fbp5500", output_dir="runs/beauty")   # doctest: +SKIP
    """
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="facezoo-dist-") as folder:
        store = f"file://{os.path.join(folder, 'store')}"
        try:
            mp.start_processes(_process, args=(processes, store, function, args, kwargs), nprocs=processes, start_method="spawn")
        except mp.ProcessExitedException as exc:
            raise FacezooError(f"the training stopped: process {exc.error_index} exited with code {exc.exit_code} (its error is above)") from None
