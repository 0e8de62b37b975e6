"""What the benchmark measures with: result rows, timers and the peak memory of a block."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class Row:
    """One figure: ours, and where there is one the reference's, with the target and whether it is met."""

    stage: str
    name: str
    value: float
    unit: str = ""
    reference: float | None = None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        return self.value / self.reference if self.reference else None


def format_table(rows: list[Row]) -> str:
    width = max([len("measure"), *(len(r.name) for r in rows)])
    header = f"{'stage':8} {'measure':{width}} {'ours':>12} {'unit':10} {'reference':>10} {'ratio':>7}  {'target':10} met"
    lines = [header, "-" * len(header)]
    for r in rows:
        reference = f"{r.reference:10,.1f}" if r.reference is not None else f"{'':10}"
        ratio = f"{r.ratio:6.1f}×" if r.ratio is not None else f"{'':7}"
        met = "" if r.met is None else ("yes" if r.met else "NO")
        lines.append(f"{r.stage:8} {r.name:{width}} {r.value:12,.1f} {r.unit:10} {reference} {ratio}  {r.target:10} {met}")
    return "\n".join(lines)


def write_json(rows: list[Row], path: Path, machine: dict) -> None:
    path.write_text(json.dumps({"machine": machine, "rows": [asdict(r) for r in rows]}, indent=1, allow_nan=False,
                               default=float) + "\n")


def times(fn: Callable[[], object], repeats: int, warmup: int = 1) -> np.ndarray:
    """Seconds of each of `repeats` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return np.asarray(seconds)


def alternating_times(fns: list[Callable[[], object]], repeats: int, block: int = 1) -> list[np.ndarray]:
    """`times` of each function, run in turns of `block` calls: a machine's speed drifts, and two sides timed minutes
    apart would be timed on two different machines. Turns put both through the same drift."""
    seconds: list[list[np.ndarray]] = [[] for _ in fns]
    for done in range(0, repeats, block):
        for fn, spent in zip(fns, seconds):
            spent.append(times(fn, min(block, repeats - done), warmup=0))
    return [np.concatenate(spent) for spent in seconds]


class PeakMemory:
    """Peak resident set size (MB) of this process while the block runs.

    `peak` counts every resident page: the kernel's own high-water mark (VmHWM), reset as the block starts, so that
    nothing runs beside the timed code. `peak_anon` (with `anon=True`) counts only the process's own memory (heap,
    arrays), not pages of memory-mapped files, which the kernel can drop and re-read at any time. No counter keeps
    its peak, so a thread samples it every 10 ms, as it samples `peak` where the high-water mark cannot be reset."""

    _open: list[PeakMemory] = []  # blocks inside one another: an inner block's reset must not lose an outer peak

    def __init__(self, anon: bool = False) -> None:
        self._anon = anon

    def __enter__(self) -> PeakMemory:
        self._fold_high_water_mark()
        self._resettable = self._reset_high_water_mark()
        self.peak, self.peak_anon = self._rss()
        self._done = threading.Event()
        self._thread = None
        if self._anon or not self._resettable:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        PeakMemory._open.append(self)
        return self

    def __exit__(self, *exc) -> None:
        PeakMemory._open.remove(self)
        if self._thread is not None:
            self._done.set()
            self._thread.join()
        self._update()
        if self._resettable:
            self.peak = max(self.peak, self._status("VmHWM"))
        self._fold_high_water_mark()

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self._update()

    def _update(self) -> None:
        total, anon = self._rss()
        self.peak, self.peak_anon = max(self.peak, total), max(self.peak_anon, anon)

    @classmethod
    def _fold_high_water_mark(cls) -> None:
        for block in cls._open:
            if block._resettable:
                block.peak = max(block.peak, cls._status("VmHWM"))

    @staticmethod
    def _reset_high_water_mark() -> bool:
        try:  # Linux: "5" resets VmHWM to the current resident set
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    @classmethod
    def _rss(cls) -> tuple[float, float]:
        return cls._status("VmRSS"), cls._status("RssAnon")

    @staticmethod
    def _status(name: str) -> float:
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith(name + ":"))
        return int(line.split()[1]) / 1024


class ChildrenPeak:
    """The largest resident set (MB) any child process of this one reached while the block ran, sampled every 20 ms:
    the kernel keeps only one maximum over every child ever waited for, which another stage's child can set."""

    def __enter__(self) -> ChildrenPeak:
        self.peak, self._done = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            for children in Path("/proc/self/task").glob("*/children"):
                for pid in children.read_text().split():
                    try:
                        with open(f"/proc/{pid}/status") as f:
                            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
                    except (OSError, StopIteration):  # the child ended between the listing and the read
                        continue
                    self.peak = max(self.peak, rss)
