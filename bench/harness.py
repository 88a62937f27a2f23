"""Timing helpers shared by the benchmarks: wall and CPU time per call, and the ratio to a baseline."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    label: str
    median_ms: float
    p95_ms: float
    cpu_ms: float

    def ratio_to(self, baseline: Timing) -> float:
        return self.median_ms / baseline.median_ms if baseline.median_ms else float("inf")


def measure(label: str, call: Callable[[], object], repeat: int = 200, warmup: int = 20) -> Timing:
    for _ in range(warmup):
        call()
    walls = []
    cpu_start = time.process_time()
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        walls.append((time.perf_counter() - start) * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / repeat
    walls.sort()
    return Timing(label, statistics.median(walls), walls[int(len(walls) * 0.95) - 1], cpu_ms)


def report(baseline: Timing, timings: list[Timing]) -> None:
    print(f"{'page':<34}{'median ms':>10}{'p95 ms':>9}{'cpu ms':>9}{'x baseline':>12}")
    for timing in [baseline, *timings]:
        print(
            f"{timing.label:<34}{timing.median_ms:>10.2f}{timing.p95_ms:>9.2f}"
            f"{timing.cpu_ms:>9.2f}{timing.ratio_to(baseline):>12.2f}"
        )
