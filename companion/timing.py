"""Wall-clock timing."""

from __future__ import annotations

import time


class Stopwatch:
    """Context manager that measures wall-clock seconds with ``time.perf_counter``.

    >>> with Stopwatch() as sw:
    ...     pass
    >>> sw.seconds >= 0
    True
    """

    def __init__(self) -> None:
        self.start: float | None = None
        self.seconds: float | None = None

    def __enter__(self) -> "Stopwatch":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def median_time(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    mid = len(times) // 2
    return times[mid] if len(times) % 2 else 0.5 * (times[mid - 1] + times[mid])


class ProgressWhile:
    """A progress bar that counts the seconds a blocking call takes, against an estimate.

    For a long call that cannot report progress itself (a multi-process measurement, say), so
    the learner sees it work instead of a silent cell. A background thread ticks a
    ``tqdm.auto`` bar every ``tick_s`` up to ``expected_s`` (it stops at 99 % if the call runs
    longer) and fills it when the block ends.

    >>> with ProgressWhile("waiting", expected_s=0.05, tick_s=0.01, disable=True) as bar:
    ...     time.sleep(0.02)
    >>> bar.seconds > 0
    True
    """

    def __init__(self, desc: str, *, expected_s: float, tick_s: float = 0.5,
                 disable: bool = False) -> None:
        if not expected_s > 0:
            raise ValueError(f"expected_s must be > 0 seconds, got {expected_s!r}")
        if not tick_s > 0:
            raise ValueError(f"tick_s must be > 0 seconds, got {tick_s!r}")
        self.desc, self.expected_s, self.tick_s, self.disable = desc, expected_s, tick_s, disable
        self.seconds: float | None = None

    def __enter__(self) -> "ProgressWhile":
        import threading

        from tqdm.auto import tqdm

        total = max(1, round(self.expected_s / self.tick_s))
        self._bar = tqdm(total=total, desc=self.desc, disable=self.disable,
                         bar_format="{desc}: {bar} {elapsed} (about {remaining} left)")
        self._done = threading.Event()
        self._start = time.perf_counter()

        def tick():
            while not self._done.wait(self.tick_s):
                if self._bar.n < total - 1:
                    self._bar.update(1)

        self._thread = threading.Thread(target=tick, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.seconds = time.perf_counter() - self._start
        self._bar.update(self._bar.total - self._bar.n)
        self._bar.close()
