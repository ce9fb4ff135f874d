"""Load test of ``facezoo serve`` on loopback: throughput, latency, errors and memory, side by side.

Starts ``facezoo serve`` as a subprocess on a free 127.0.0.1 port with ``--workers W --queue Q``,
then runs three bounded phases of N client threads that POST the same photo to ``/v1/analyze``
as fast as they can:

* warm-up (W + Q clients): first allocations, so memory is measured from a steady state;
* at capacity (W + Q clients): what the server is configured to accept, so no request may fail;
* overload (3 × (W + Q) clients): more than it accepts, so the surplus must be answered 503 at
  once, never time out. A client that gets a 503 waits 0.1 s and tries again (less polite than
  Retry-After, to keep the pressure on).

It prints requests/s, p50/p95/p99 latency of the answered requests, the 503s, timeouts and other
errors of each phase, and the server's resident memory (RSS) after each phase. By default the
models are untrained tiny ones (``--untrained --backbone test_resnet``): latency is the
detector's and the framework's, which is what the limits are about.

Example:
    python benchmarks/serve_load.py                                   # beauty,age-gender, 1 worker, queue 4, 20 s a phase
    python benchmarks/serve_load.py --workers 2 --queue 2 --seconds 30 --photo ../shared/data/photos/group_sts106_crew.jpg
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Phase:
    name: str
    clients: int
    seconds: float = 0.0
    ok: list[float] = field(default_factory=list)  # latencies of 200 answers, s
    busy: list[float] = field(default_factory=list)  # latencies of 503 answers, s
    timeouts: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run_phase(url: str, photo: bytes, phase: Phase, seconds: float, tasks: str) -> Phase:
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(timeout=60.0) as http:
            while time.monotonic() < stop:
                start = time.perf_counter()
                try:
                    response = http.post(f"{url}/v1/analyze", params={"tasks": tasks}, files={"image": ("photo.jpg", photo, "image/jpeg")})
                except httpx.TimeoutException:
                    with lock:
                        phase.timeouts += 1
                    continue
                except httpx.HTTPError as exc:
                    with lock:
                        phase.errors[type(exc).__name__] = phase.errors.get(type(exc).__name__, 0) + 1
                    continue
                elapsed = time.perf_counter() - start
                with lock:
                    if response.status_code == 200:
                        phase.ok.append(elapsed)
                    elif response.status_code == 503:
                        phase.busy.append(elapsed)
                    else:
                        key = f"HTTP {response.status_code}"
                        phase.errors[key] = phase.errors.get(key, 0) + 1
                if response.status_code == 503:
                    time.sleep(0.1)

    threads = [threading.Thread(target=client) for _ in range(phase.clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.seconds = time.monotonic() - started
    return phase


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="beauty,age-gender")
    parser.add_argument("--backbone", default="test_resnet", help="backbone of the untrained models")
    parser.add_argument("--pretrained", action="store_true", help="serve the shipped models instead of untrained ones")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--queue", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured phase")
    parser.add_argument("--photo", type=Path, default=REPO / "facezoo" / "testing" / "photos" / "group.jpg")
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "facezoo", "serve", "--tasks", args.tasks, "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(args.workers), "--queue", str(args.queue), "--timeout", "30"]
    if not args.pretrained:
        command += ["--untrained", "--backbone", args.backbone]
    # uvicorn's access log (a line per request) is dropped.
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with {server.returncode}: {' '.join(command)}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start within 120 s")
            time.sleep(0.2)
        photo = args.photo.read_bytes()
        capacity = args.workers + args.queue
        memory = {"started": rss_mb(server.pid)}
        phases = []
        for name, clients, seconds in (("warm-up", capacity, min(5.0, args.seconds)), ("at capacity", capacity, args.seconds), ("overload", 3 * capacity, args.seconds)):
            phases.append(run_phase(url, photo, Phase(name, clients), seconds, args.tasks))
            memory[f"after {name}"] = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)

    print(f"facezoo serve --tasks {args.tasks} --workers {args.workers} --queue {args.queue} ({'shipped' if args.pretrained else f'untrained {args.backbone}'} models), "
          f"photo {args.photo.name}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'phase':<12} {'clients':>7} {'seconds':>7} {'200 OK':>7} {'ok/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'503':>6} {'503 p99 ms':>10} {'timeouts':>8} {'errors':>6}")
    for p in phases:
        print(f"{p.name:<12} {p.clients:>7} {p.seconds:>7.1f} {len(p.ok):>7} {len(p.ok) / p.seconds:>6.2f} {1000 * percentile(p.ok, 50):>7.0f} "
              f"{1000 * percentile(p.ok, 95):>7.0f} {1000 * percentile(p.ok, 99):>7.0f} {len(p.busy):>6} {1000 * percentile(p.busy, 99):>10.0f} "
              f"{p.timeouts:>8} {sum(p.errors.values()):>6}" + (f"  {p.errors}" if p.errors else ""))
    print("server RSS (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in memory.items())
          + f"; change from after warm-up to the end: {memory['after overload'] - memory['after warm-up']:+.1f} MB")
    measured = phases[1:]
    failed = measured[0].busy or any(p.timeouts or p.errors for p in measured) or not measured[1].busy
    if failed:
        print("UNEXPECTED: at capacity every request must succeed, and overload must give 503s, never timeouts or errors")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
