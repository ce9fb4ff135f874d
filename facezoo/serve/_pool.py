"""Bounded inference: a fixed number of worker threads, a short queue, a deadline per request.

The event loop never runs a model or decodes a photo: it hands the work to the pool and awaits
it. A request that finds every worker busy and the queue full is refused at once
(:class:`Busy` → 503 with Retry-After) instead of piling up. A request past its deadline is
answered (:class:`Timeout` → 504) while its work, which a thread cannot be stopped in, keeps its
slot until it really ends: the number of requests inside the server never exceeds the capacity.
"""

from __future__ import annotations

import asyncio
import ctypes
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

# glibc's malloc_trim, where the C library has it (glibc does; musl and macOS do not).
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)


def give_back_memory() -> None:
    """Return the heap's free memory to the system. glibc keeps it otherwise: one 36-megapixel
    photo (108 MB decoded, about 370 MB at the request's peak) left a server that much larger for
    good. Costs microseconds when there is nothing to return."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class Busy(Exception):
    """Every worker is busy and the queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, capacity: int, retry_after: int, what: str = "requests are running or waiting"):
        super().__init__(f"the server is busy: {capacity} {what} (its limit); retry in {retry_after} s")
        self.retry_after = retry_after


class Timeout(Exception):
    """A request took longer than the server's per-request timeout: 504, or 408 while its body was still arriving."""

    def __init__(self, message: str, status: int = 504):
        super().__init__(message)
        self.status = status


class InferencePool:
    """Runs blocking work on ``workers`` threads with at most ``queue`` more requests waiting.

    Example:
        >>> pool = InferencePool(workers=1, queue=0, timeout=5.0)
        >>> async def handle():
        ...     async with pool.admit() as ticket:
        ...         return await ticket.run(sum, [1, 2])
        >>> asyncio.run(handle())
        3
    """

    def __init__(self, workers: int, queue: int, timeout: float, receiving: int = 16):
        self.workers, self.capacity, self.timeout = workers, workers + queue, timeout
        self.receiving = receiving  # request bodies read at once, outside the inference slots
        self._reading = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="facezoo-serve")
        self._lock = threading.Lock()
        self._inside = 0
        self._seconds = 1.0  # moving average of one request's work, for Retry-After

    @property
    def inside(self) -> int:
        """Requests running or waiting now."""
        return self._inside

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue's work spread over the workers."""
        return max(1, math.ceil(self._seconds * self.capacity / self.workers))

    def _release(self, _: Future | None = None) -> None:
        with self._lock:
            self._inside -= 1

    def _timed(self, work: Callable[..., T], *args: Any) -> T:
        start = time.perf_counter()
        try:
            return work(*args)
        finally:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - start)
            give_back_memory()

    async def receive(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` (reading a request's body) within the timeout, in one of the
        ``receiving`` slots: a slow upload holds one of those, never an inference slot, so a few
        slow clients cannot make the server answer 503 to everyone. :class:`Busy` when all are taken."""
        with self._lock:
            if self._reading >= self.receiving:
                raise Busy(self.receiving, self.retry_after(), "request bodies are being received")
            self._reading += 1
        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except asyncio.TimeoutError:
            raise Timeout(f"the request was not received within the server's timeout of {self.timeout:g} s", 408) from None
        finally:
            with self._lock:
                self._reading -= 1

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[Ticket]:
        """A slot for one request's work (its body already received); :class:`Busy` when full."""
        with self._lock:
            if self._inside >= self.capacity:
                raise Busy(self.capacity, self.retry_after())
            self._inside += 1
        ticket = Ticket(self, asyncio.get_running_loop().time() + self.timeout)
        try:
            yield ticket
        finally:
            if not ticket.handed_over:
                self._release()

    def close(self) -> None:
        """Stop taking work; waiting requests are dropped, running ones finish."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Ticket:
    """One admitted request: what it awaits shares one deadline; its work runs on the pool."""

    def __init__(self, pool: InferencePool, deadline: float):
        self._pool, self._deadline = pool, deadline
        self.handed_over = False  # the slot is released by the work's end, not by the request's

    def _left(self) -> float:
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` on a worker thread, awaited until the deadline, else :class:`Timeout`."""
        future = self._pool._executor.submit(self._pool._timed, work, *args)
        self.handed_over = True
        future.add_done_callback(self._pool._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self._left())
        except asyncio.TimeoutError:
            future.cancel()  # frees the slot now if the work had not started
            raise Timeout(f"the request took longer than the server's timeout of {self._pool.timeout:g} s") from None


class ReadWriteLock:
    """Many readers or one writer: requests that read a model's gallery run side by side, an
    enrolment or removal runs alone.

    Example:
        >>> lock = ReadWriteLock()
        >>> with lock.reading():
        ...     pass
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._writing and self._readers == 0)
            self._writing = True
        try:
            yield
        finally:
            with self._condition:
                self._writing = False
                self._condition.notify_all()
