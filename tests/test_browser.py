"""The rendered digest in a real browser (Debian's headless Chromium): screenshots at 600 px,
at 375 px and under forced dark mode into screenshots/, and no horizontal scrolling at 375 px."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from datetime import date
from pathlib import Path

import pytest
from conftest import ROOT

from digest.delivery import render
from digest.models import Links, Paper, Ranked, Subscriber

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ROOT / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")


def _digest_html() -> str:
    sub = Subscriber(
        id="alice",
        email="alice@example.org",
        name="Alice Liddell",
        keywords=("diffusion models", "image generation", "reinforcement learning from human feedback"),
    )
    papers = [
        Ranked(
            Paper(
                id=f"2611.{i:05d}",
                title="Scaling Rectified-Flow Transformers for High-Resolution Text-to-Image Synthesis "
                f"With Very-Long-Unbreakable-Hyphenated-Compound-Words Number {i}",
                abstract="We present a method that improves sampling. " * 8,
                authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
                upvotes=12 * i,
            ),
            0.7 - i / 100,
            ("diffusion models", "reinforcement learning from human feedback"),
            ("rectified flow", "text-to-image", "transformers"),
        )
        for i in range(1, 6)
    ]
    links = Links(
        unsubscribe_mailto="mailto:digest@example.org",
        unsubscribe_https="https://digest.example.org/unsubscribe?t=x",
        archive="https://digest.example.org/archive/2026-11-20/alice?t=y",
        feedback={
            r.paper.id: (f"https://digest.example.org/feedback?t=m{i}", f"https://digest.example.org/feedback?t=l{i}")
            for i, r in enumerate(papers)
        },
    )
    return render.render(sub, date(2026, 11, 20), papers, links).html


def _chromium(*args: str, width: int) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},2000", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "digest.html"
    path.write_text(_digest_html(), encoding="utf-8")
    SHOTS.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def inverted_page(page: Path) -> Path:
    """Gmail ignores color-scheme declarations and inverts colors itself; without the meta,
    Chromium's forced dark mode does the same kind of inversion."""
    path = page.with_name("inverted.html")
    path.write_text(
        re.sub(r"<meta name=\"(supported-)?color-scheme\"[^>]*>", "", page.read_text()), encoding="utf-8"
    )
    return path


DARK = ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]
INVERT = ["--enable-features=WebContentsForceDark"]


@pytest.mark.parametrize(
    ("name", "width", "extra", "which"),
    [
        ("digest-600.png", 600, [], "page"),
        ("digest-375.png", 375, [], "page"),
        ("digest-dark.png", 600, DARK, "page"),
        ("digest-inverted.png", 600, INVERT, "inverted_page"),
    ],
)
def test_screenshot_is_taken(request, name: str, width: int, extra: list[str], which: str):
    shot = SHOTS / name
    shot.unlink(missing_ok=True)
    _chromium(*extra, f"--screenshot={shot}", request.getfixturevalue(which).as_uri(), width=width)
    assert shot.stat().st_size > 10_000


def test_dark_mode_styles_switch_the_page_to_light_text_on_dark(page: Path, tmp_path: Path):
    probe = tmp_path / "dark.html"
    script = (
        "<script>window.addEventListener('load', () => { const t = document.querySelector('a.title');"
        " document.body.setAttribute('data-colors', getComputedStyle(t).color + '|' +"
        " getComputedStyle(document.querySelector('.card')).backgroundColor); });</script>"
    )
    probe.write_text(page.read_text().replace("</body>", script + "</body>"), encoding="utf-8")
    light = re.search(
        r'data-colors="([^"]+)"',
        _chromium("--virtual-time-budget=3000", "--dump-dom", probe.as_uri(), width=600),
    ).group(1)
    dark = re.search(
        r'data-colors="([^"]+)"',
        _chromium(*DARK, "--virtual-time-budget=3000", "--dump-dom", probe.as_uri(), width=600),
    ).group(1)
    assert light == "rgb(11, 87, 208)|rgb(255, 255, 255)"
    assert dark == "rgb(138, 180, 248)|rgb(26, 30, 35)"


def test_no_horizontal_scrolling_at_375_px(page: Path, tmp_path: Path):
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => document.body.setAttribute('data-overflow',"
        " String(document.documentElement.scrollWidth - window.innerWidth)));</script>"
    )
    probe.write_text(page.read_text().replace("</body>", script + "</body>"), encoding="utf-8")
    dom = _chromium("--virtual-time-budget=3000", "--dump-dom", probe.as_uri(), width=375)
    overflow = re.search(r'data-overflow="(-?\d+)"', dom)
    assert overflow, dom[:500]
    assert int(overflow.group(1)) <= 0


def test_every_image_has_alt_text_and_no_web_font_is_loaded(page: Path):
    html = page.read_text()
    assert all("alt=" in tag for tag in re.findall(r"<img\b[^>]*>", html))
    assert "fonts.googleapis" not in html and "@import" not in html and "<link" not in html


def _measured(page: Path, tmp_path: Path, expression: str, *extra: str, width: int) -> str:
    """What a JavaScript `expression` gives once the page has laid out, in Chromium."""
    probe = tmp_path / "measure.html"
    script = (
        "<script>window.addEventListener('load', () => document.body.setAttribute('data-measured',"
        f" String({expression})));</script>"
    )
    probe.write_text(page.read_text().replace("</body>", script + "</body>"), encoding="utf-8")
    dom = _chromium(*extra, "--virtual-time-budget=3000", "--dump-dom", probe.as_uri(), width=width)
    found = re.search(r'data-measured="([^"]*)"', dom)
    assert found, dom[:500]
    return found.group(1)


def test_vote_links_are_tap_targets_of_44_px_apart_from_each_other_at_375_px(page: Path, tmp_path: Path):
    boxes = _measured(
        page,
        tmp_path,
        "[...document.querySelectorAll('a.vote')].map(a => { const r = a.getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height].map(Math.round).join(' '); }).join(';')",
        width=375,
    )
    rects = [tuple(map(int, box.split())) for box in boxes.split(";")]
    assert len(rects) == 10  # more and less for each of the five papers
    assert all(h >= 44 and w >= 44 for _, _, w, h in rects)
    for (x1, y1, w1, h1), (x2, y2, _, _) in zip(rects[::2], rects[1::2], strict=True):
        assert x2 >= x1 + w1 + 8 or y2 >= y1 + h1  # side by side with a gap, or one under the other


def test_the_footer_divider_follows_the_dark_theme(page: Path, tmp_path: Path):
    colour = "getComputedStyle(document.querySelector('.divider p')).borderTopColor"
    assert _measured(page, tmp_path, colour, width=600) == "rgb(228, 231, 235)"
    dark = _measured(page, tmp_path, colour, *DARK, width=600)
    assert dark == "rgb(44, 51, 59)"
