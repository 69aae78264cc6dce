"""A mailbox that refuses the login: the watcher backs off further each time and logs an error."""

from __future__ import annotations

import logging

import pytest

from mailflow.errors import MailboxError, MailboxLoginError
from mailflow.runner import Worker


class RefusingMailbox:
    """Connects lazily like the IMAP adapter: opening works, the first use fails."""

    def __init__(self, error: MailboxError) -> None:
        self.error = error

    def wait_for_new_mail(self, timeout: float) -> bool:
        raise self.error

    def uidvalidity(self) -> int:
        raise self.error

    def close(self) -> None:
        pass


def watch_until(worker: Worker, attempts: int) -> list[float]:
    delays: list[float] = []

    def wait(delay: float | None = None) -> bool:
        delays.append(delay or 0.0)
        if len(delays) >= attempts:
            worker.stop_event.set()
        return worker.stop_event.is_set()

    worker.stop_event.wait = wait  # type: ignore[method-assign]
    worker._watch(scheduler=None)  # type: ignore[arg-type] — never woken, so never used
    return delays


def worker_with(error: MailboxError) -> Worker:
    return Worker(
        open_mailbox=lambda: RefusingMailbox(error),  # type: ignore[arg-type, return-value]
        make_ingestor=lambda *_: None,  # type: ignore[arg-type, return-value]
        outbox=None,  # type: ignore[arg-type]
        poll_interval=60,
        outbox_interval=5,
    )


def test_a_refused_login_backs_off_further_each_time(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mailflow.runner")
    delays = watch_until(worker_with(MailboxLoginError("the token was refused (client id c-1)")), 6)

    # Base 1 s doubling, each with jitter between half and all of it: 1, 2, 4, 8, 16, 32 s at most.
    assert [round(delay) > 0 for delay in delays] == [True] * 6
    for attempt, delay in enumerate(delays):
        assert 2**attempt / 2 <= delay <= 2**attempt
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 6 and "client id c-1" in errors[0].getMessage()


def test_a_lost_connection_is_a_warning_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mailflow.runner")
    watch_until(worker_with(MailboxError("connection reset")), 2)
    assert {r.levelno for r in caplog.records} == {logging.WARNING}
