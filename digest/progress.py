"""How long work shows itself on stderr: a line per stage and a bar on a terminal, one line per
long stage under cron, nothing with `digest --quiet`. stdout is never touched, so `--json`
stays pure JSON.

    with progress.using(Progress.for_stderr(quiet=False)):     what the CLI does per command
        with progress.current().stage("embedding 555 papers") as stage:
            for batch in progress.current().bar(batches, "embedding", "batch"):
                ...
            stage.done = "embedded 555 papers"          said with its time: "... in 9m28s"

    bars   (stderr is a terminal)      each stage's start and end, tqdm bars for counted work
    lines  (no terminal: cron, a pipe) only a stage that took LONG seconds or more, at its end:
                                       a cron log shows what was slow, an hourly run with
                                       nothing to do prints nothing
    quiet  (--quiet)                   nothing

The stages are said by the front door (digest.app) and the bars drawn by the loops that know
their length (the model's pass over the papers, the send loop); none of them needs a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO, TypeVar

T = TypeVar("T")

BARS, LINES, QUIET = "bars", "lines", "quiet"
LONG = 10.0  # seconds: a stage this long leaves a line even without a terminal


def took(seconds: float) -> str:
    """A duration as a person reads it: 0.4s, 12s, 9m28s, 1h02m."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


@dataclass
class Stage:
    """One stage under way; `done` is what is said when it ends (set it to say what it did)."""

    done: str


@dataclass
class Progress:
    """Where and how much of the work in progress is shown (see the module docstring)."""

    mode: str = QUIET
    stream: TextIO | None = None  # None: sys.stderr at the time of writing
    long: float | None = None  # None: LONG, read when a stage ends
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def for_stderr(cls, *, quiet: bool = False) -> Progress:
        """Bars on a terminal, a line per long stage otherwise, nothing when `quiet`."""
        if quiet:
            return cls(QUIET)
        return cls(BARS if _isatty(sys.stderr) else LINES)

    @property
    def bars(self) -> bool:
        return self.mode == BARS

    def say(self, text: str) -> None:
        stream = self.stream or sys.stderr
        print(f"digest: {text}", file=stream, flush=True)

    @contextmanager
    def stage(self, doing: str, done: str | None = None) -> Iterator[Stage]:
        """`doing` said as the stage starts (on a terminal), `stage.done` with its time as it
        ends; a stage that fails says nothing more (its error does)."""
        stage = Stage(done or doing)
        if self.mode == BARS:
            self.say(doing)
        start = self.clock()
        yield stage
        elapsed = self.clock() - start
        long = LONG if self.long is None else self.long
        if self.mode == BARS or (self.mode == LINES and elapsed >= long):
            self.say(f"{stage.done} in {took(elapsed)}")

    def bar(self, items: Sequence[T], what: str, unit: str) -> Iterable[T]:
        """`items`, with a bar on a terminal while they are gone through (two or more of them)."""
        if self.mode != BARS or len(items) < 2:
            return items
        from tqdm import tqdm

        return tqdm(items, desc=what, unit=unit, file=self.stream or sys.stderr, leave=False)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream: not a terminal
        return False


_current: Progress | None = None


def current() -> Progress:
    """The progress the running command asked for; outside one (the library, the daemon, the
    workers), bars on a terminal and nothing otherwise."""
    if _current is not None:
        return _current
    return Progress(BARS if _isatty(sys.stderr) else QUIET)


@contextmanager
def using(progress: Progress) -> Iterator[Progress]:
    """`progress` for the length of the block (one command), then what was before."""
    global _current
    before, _current = _current, progress
    try:
        yield progress
    finally:
        _current = before


__all__ = ["BARS", "LINES", "LONG", "QUIET", "Progress", "Stage", "current", "took", "using"]
