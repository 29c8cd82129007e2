"""The wheel is the product: built from the repo and installed into a fresh virtual environment,
away from the source tree, it still renders and delivers a digest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, SUBSCRIBERS


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
        + [str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if build.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{build.stdout}\n{build.stderr}")
    (path,) = out.glob("digest-*.whl")
    return path


def test_the_wheel_carries_every_template(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").iterdir():
        assert f"digest/templates/{template.name}" in names


def test_an_installed_wheel_delivers_a_digest_without_the_source_tree(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    with zipfile.ZipFile(wheel) as zf:  # what pip does for a pure wheel: unpack into site-packages
        zf.extractall(site)
    # the dependencies (torch, mjml, jinja2...) come from the project's environment, appended after
    # the fresh one, whose own `digest` therefore wins over the editable checkout
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    (work / "inbox").mkdir(parents=True)
    shutil.copy(SAMPLES / "2026-11-20.txt", work / "inbox" / "2026-11-20.txt")
    shutil.copy(SUBSCRIBERS, work / "subscribers.yaml")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DIGEST_MODEL": "hashing",
        "DIGEST_INBOX": str(work / "inbox"),
        "DIGEST_DB": str(work / "var" / "digest.db"),
        "DIGEST_OUTBOX": str(work / "var" / "outbox"),
    }
    script = (
        "import digest, sys; "
        "assert sys.argv[1] not in digest.__file__, digest.__file__; "  # not the checkout's copy
        "from digest.cli import main; sys.argv = ['digest', 'run', '--day', '2026-11-20']; main()"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, str(ROOT)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    emls = sorted((work / "var" / "outbox" / "2026-11-20").glob("*.eml"))
    assert [p.stem for p in emls] == ["alice", "bob", "carol"]
    assert "<!doctype html>" in (work / "var" / "outbox" / "2026-11-20" / "alice.html").read_text().lower()
