"""Progress of long work on stderr: stage lines and bars on a terminal, a line per long stage
without one (cron), nothing with --quiet; stdout (and so --json) never touched."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, SUBSCRIBERS

from digest import progress
from digest.progress import BARS, LINES, QUIET, Progress, took


class Clock:
    """A clock the test moves: a stage's length without sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def shown(mode: str, clock: Clock) -> tuple[Progress, io.StringIO]:
    out = io.StringIO()
    return Progress(mode, stream=out, long=10.0, clock=clock), out


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.43, "0.4s"), (9.96, "10.0s"), (12.4, "12s"), (568, "9m28s"), (3720, "1h02m")]
)
def test_a_duration_reads_as_a_person_says_it(seconds: float, text: str):
    assert took(seconds) == text


def test_without_a_terminal_only_a_long_stage_leaves_a_line_at_its_end():
    clock = Clock()
    p, out = shown(LINES, clock)
    with p.stage("loading the model", "loaded the model"):
        clock.now += 2  # quick: an hourly cron run says nothing
    with p.stage("embedding 555 papers") as stage:
        clock.now += 568
        stage.done = "embedded 555 papers"
    assert out.getvalue() == "digest: embedded 555 papers in 9m28s\n"
    assert list(p.bar([1, 2, 3], "embedding", "batch")) == [1, 2, 3]
    assert out.getvalue().count("\n") == 1  # no bar


def test_on_a_terminal_every_stage_says_its_start_and_end_and_counted_work_has_a_bar():
    clock = Clock()
    p, out = shown(BARS, clock)
    with p.stage("sending 3 digests") as stage:
        for _ in p.bar(["a", "b", "c"], "sending", "mail"):
            clock.now += 0.1
        stage.done = "sent 3 of 3 digests"
    text = out.getvalue()
    assert text.startswith("digest: sending 3 digests\n")
    assert "sending:   0%" in text and "0/3" in text
    assert text.endswith("digest: sent 3 of 3 digests in 0.3s\n")


def test_quiet_says_nothing_and_a_failed_stage_says_no_end():
    clock = Clock()
    p, out = shown(QUIET, clock)
    with p.stage("embedding 555 papers"):
        clock.now += 600
    assert list(p.bar([1, 2], "x", "y")) == [1, 2]
    assert out.getvalue() == ""
    terminal, said = shown(BARS, clock)
    with pytest.raises(RuntimeError), terminal.stage("loading the model", "loaded the model"):
        raise RuntimeError("no model")
    assert said.getvalue() == "digest: loading the model\n"


def test_using_sets_the_commands_progress_for_a_block_then_restores_it():
    before = progress.current()
    with progress.using(Progress(LINES)) as p:
        assert progress.current() is p
    assert progress.current().mode == before.mode


def test_the_model_pass_draws_its_bar_through_the_commands_progress():
    from digest.ranking.embed import _progress

    out = io.StringIO()
    with progress.using(Progress(BARS, stream=out)):
        assert list(_progress(range(3), True, "Embedding papers")) == [0, 1, 2]
    assert "Embedding papers:" in out.getvalue() and "0/3" in out.getvalue()
    quiet = io.StringIO()
    with progress.using(Progress(QUIET, stream=quiet)):  # --quiet on a terminal
        list(_progress(range(3), True, "Embedding papers"))
    assert quiet.getvalue() == ""


# --- on a real terminal: digest as a process, its stderr a pseudo-terminal -------------------


def on_a_terminal(tmp_path: Path, *args: str) -> tuple[str, str]:
    """`digest ARGS` with stderr on a pty of 100 columns (stdout a pipe); (stdout, stderr)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "PYTHONPATH": str(ROOT),
        "DIGEST_SUBSCRIBERS": str(SUBSCRIBERS),
        "DIGEST_DB": str(tmp_path / "var" / "digest.db"),
        "DIGEST_INBOX": str(tmp_path / "inbox"),
        "DIGEST_MODEL": "hashing",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    out = proc.stdout.read() if proc.stdout else b""
    assert proc.wait(timeout=120) == 0, err
    return out.decode(), err.decode()


def test_on_a_terminal_ingest_shows_its_stage_and_a_bar_on_stderr_and_quiet_shows_nothing(tmp_path: Path):
    shutil.copytree(SAMPLES, tmp_path / "inbox")
    out, err = on_a_terminal(tmp_path, "ingest")
    assert "digest: reading 3 files\r\n" in err
    assert "reading:   0%" in err and "0/3 [" in err  # the bar, erased when done
    assert "digest: read 3 files (25 papers) in " in err
    assert "2026-11-20.txt: 9 papers" in out and "digest:" not in out
    (tmp_path / "var" / "digest.db").unlink()
    out, err = on_a_terminal(tmp_path, "--quiet", "ingest")
    assert err == ""
    assert "2026-11-20.txt: 9 papers" in out
