"""`digest schedule`: the long-running scheduler.

    start:  load subscribers.yaml (refuse to start if broken); send anything already due
    every poll:  ingest new inbox files; if subscribers.yaml changed, reload it and move the
                 send jobs, or log why not and keep the last good version (subscribers and
                 sources alike: a half-saved edit never stops a send)
    at each subscriber's local send time (CronTrigger in their zone):  send their digest
    SIGTERM/SIGINT:  finish the job in hand, exit 0

Jobs run one at a time (one worker), so the model and the SQLite file are never shared
between threads at once; each job opens the front door (digest.app.Digest) afresh, over the
model loaded once.
"""

from __future__ import annotations

import logging

from . import schedule
from .app import Digest, RunReport
from .delivery.send import PROBLEMS
from .errors import DigestError
from .models import Subscriber
from .ranking.embed import embedder_of
from .roster import SubscriberFile
from .settings import Settings

log = logging.getLogger("digest")


class Daemon:
    def __init__(self, settings: Settings):
        self.settings = settings
        # refuses to start on a broken file; an address is checked against where the mail goes
        self.file = SubscriberFile(settings.subscribers, smtp_host=settings.smtp.host)
        self.embedder = embedder_of(settings.ranking)  # loaded once, on first use
        self.scheduler = None

    @property
    def subscribers(self) -> list[Subscriber]:
        """The last good version's subscribers."""
        return self.file.subscribers

    def _digest(self) -> Digest:
        """The front door over the settings as they are now, with the model kept loaded."""
        return Digest(self.settings, embedder=self.embedder)

    def send_due(self, only: str | None = None) -> None:
        """Send what is due now, for one subscriber (a trigger fired) or for all (start-up),
        from the last good subscribers.yaml, whatever the file holds now."""
        try:
            with self._digest().opened() as digest:
                digest.run(self.file.roster, only=only, inbox=False, stage=_log_stage)
        except DigestError as exc:
            log.error("%s", exc)
        except Exception as exc:  # noqa: BLE001 - a bug in one job must not stop the daemon
            _unexpected("sending", exc)

    def poll(self) -> None:
        self.reload()
        try:
            with self._digest().opened() as digest:
                outcomes = digest.ingest_inbox()
        except DigestError as exc:
            log.error("%s", exc)
            return
        except Exception as exc:  # noqa: BLE001 - a bug in one poll must not stop the daemon
            _unexpected("polling the inbox", exc)
            return
        for o in outcomes:
            if o.error:
                log.error("%s", o.error)
            elif not o.skipped:
                log.info("ingested %s: %d papers (%d new)", o.path, o.papers, o.new)
            for note in o.notes:
                log.error("%s", note)

    def reload(self) -> bool:
        """Re-read subscribers.yaml if it changed; a broken edit keeps the last good version."""
        if not self.file.refresh():
            return False
        if self.scheduler is not None:
            schedule.schedule_subscribers(self.scheduler, self.subscribers, self.send_due)
        return True

    def run(self) -> None:
        self.scheduler = schedule.build_scheduler(
            self.subscribers, self.send_due, self.poll, poll_seconds=self.settings.poll_seconds
        )
        schedule.stop_on_sigterm(self.scheduler)
        log.info("scheduler started: %d subscribers, inbox %s", len(self.subscribers), self.settings.inbox)
        self.send_due()  # anything due before we started (a restart after the send time)
        self.scheduler.start()  # blocks until SIGTERM
        log.info("scheduler stopped")


def _log_stage(report: RunReport, stage: str) -> None:
    """One line per source fetched, then per digest, as each stage ends."""
    if stage == "fetched":
        for o in report.fetched:
            detail = f" ({o.detail})" if o.detail else ""
            (log.info if o.ok else log.error)("source %s: %s%s", o.source, o.status, detail)
        return
    if stage == "bounces":
        if report.bounce_error:
            log.error("bounce mailbox not read (%s); sending goes on", report.bounce_error)
        elif report.bounces is not None:
            for s in report.bounces.suppressed:
                log.warning("%s suppressed: %s (%s)", s.subscriber_id, s.reason, s.source)
        return
    for delivered in report.deliveries if stage == "delivered" else ():
        for o in delivered.outcomes:
            line = f"{delivered.day} {o.subscriber}: {o.status}, {o.papers} papers" + (
                f" ({o.detail})" if o.detail else ""
            )
            (log.error if o.status in PROBLEMS else log.info)(line)
        if delivered.stopped:
            log.error(delivered.stopped)


def _unexpected(what: str, exc: Exception) -> None:
    """A bug, logged with its traceback; the daemon goes on and the next trigger tries again."""
    log.error(
        "%s failed unexpectedly (%s: %s); the next run tries again",
        what,
        type(exc).__name__,
        exc,
        exc_info=True,
    )
