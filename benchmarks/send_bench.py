"""Sending speed: 2,000 rendered digests to a local SMTP sink (aiosmtpd on 127.0.0.1).

    naive        a new smtplib connection per message (what a simple loop does)
    ours, c=1    digest.delivery.dispatch: one reused connection
    ours, c=8    digest.delivery.dispatch: eight workers, a connection each

All in one process, on the same messages. Run: .venv/bin/python benchmarks/send_bench.py [--messages N]
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import sys
import time
from dataclasses import replace
from datetime import date

from aiosmtpd.controller import Controller

from digest.delivery import render
from digest.delivery.dispatch import Policy, dispatch
from digest.delivery.mail import SMTPMailer, build_message, serialize
from digest.models import Links, Paper, Ranked, Subscriber
from digest.settings import Settings


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def messages(n: int, settings: Settings) -> list:
    papers = [
        Ranked(
            Paper(
                id=f"2611.{i:05d}",
                title=f"A study of topic {i} in machine learning",
                abstract="We propose a method. It works well. Experiments confirm it. " * 4,
                authors=("A. One", "B. Two"),
                upvotes=i,
            ),
            0.6,
            ("machine learning",),
            ("method", "experiments"),
        )
        for i in range(10)
    ]
    out = []
    for i in range(n):
        sub = Subscriber(
            id=f"s{i:05d}", email=f"s{i:05d}@example.org", name=f"Reader {i}", keywords=("machine learning",)
        )
        digest = render.render(
            sub,
            date(2026, 11, 20),
            papers,
            Links("mailto:digest@localhost"),
        )
        out.append(serialize(build_message(digest, settings.smtp), settings.smtp, key=f"k{i}"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings = Settings.load(
            env={}, smtp_host="127.0.0.1", smtp_port=controller.port, smtp_security="none"
        )
        start = time.perf_counter()
        outgoing = messages(args.messages, settings)
        build_s = time.perf_counter() - start
        size_kb = sum(len(o.data) for o in outgoing) / len(outgoing) / 1024

        def naive() -> None:
            for o in outgoing:
                with smtplib.SMTP("127.0.0.1", controller.port) as smtp:
                    smtp.sendmail(o.sender, list(o.recipients), o.data)

        def ours(concurrency: int):
            def run() -> None:
                results = list(
                    dispatch(
                        outgoing,
                        lambda: SMTPMailer(settings.smtp),
                        replace(Policy(), concurrency=concurrency),
                    )
                )
                assert all(r.status == "sent" for r in results)

            return run

        rows = []
        for name, fn in [
            ("naive: new connection per message", naive),
            ("ours, concurrency 1", ours(1)),
            ("ours, concurrency 8", ours(8)),
        ]:
            before = sink.count
            start = time.perf_counter()
            fn()
            seconds = time.perf_counter() - start
            assert sink.count - before == len(outgoing)
            rows.append((name, seconds))
    finally:
        controller.stop()
    base = rows[0][1]
    print(
        f"send benchmark: {len(outgoing)} digests of {size_kb:.0f} KB to a local aiosmtpd sink "
        f"(rendering and signing them took {build_s:.1f} s, {len(outgoing) / build_s:.0f}/s)"
    )
    print(f"{'sender':<36} {'seconds':>8} {'msgs/s':>8} {'vs naive':>9}")
    for name, seconds in rows:
        print(f"{name:<36} {seconds:>8.2f} {len(outgoing) / seconds:>8.0f} {base / seconds:>8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
