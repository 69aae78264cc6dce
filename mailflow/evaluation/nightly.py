"""The worker's nightly retraining: one worker a night, the result in the event log, the model swapped in.

Every worker schedules the job; the first to claim the night writes a ``retrain_started`` event while
holding the event chain's head row (``SELECT … FOR UPDATE``; on SQLite the write lock taken at BEGIN),
and the others, finding that event, stand down. Plain SQL, so PostgreSQL and SQLite behave alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailflow.errors import Interrupted
from mailflow.storage.models import AuditHead, Event

if TYPE_CHECKING:
    from mailflow.bootstrap import App
    from mailflow.evaluation.retrain import Retrained

log = logging.getLogger(__name__)

STARTED = "retrain_started"
INTERRUPTED = "retrain_interrupted"
# Workers' clocks and schedules differ by minutes, not hours: one claim per this window is one a night.
WINDOW = timedelta(hours=12)


def claim_night(
    sessions: sessionmaker[Session], *, worker_id: str, now: datetime, window: timedelta = WINDOW
) -> bool:
    """True for the one worker that may retrain now; an event records which one."""
    with sessions.begin() as session:
        session.scalars(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
        earlier = session.scalar(
            select(Event.id).where(Event.kind == STARTED, Event.at > now - window).limit(1)
        )
        if earlier is not None:
            return False
        session.add(Event(message_id=None, at=now, actor=worker_id, kind=STARTED, detail={}))
    return True


def nightly_retrain(
    app: App,
    *,
    retrain: Callable[..., Retrained] | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> Retrained | None:
    """Retrain as ``mailflow train`` does (setting training_corpora plus staff labels), if this worker
    wins the night; never raises: a failure is logged and the installed model stays.

    Retraining takes minutes to hours; a worker asked to stop meanwhile (``stopping``) gives it up
    within seconds and records so, rather than holding up its shutdown until killed. The night stays
    claimed: the other workers stood down at retrain_at, and the next night retrains."""
    try:
        if not claim_night(app.sessions, worker_id=app.worker_id, now=app.clock()):
            log.info("nightly retraining: another worker has it")
            return None
        if retrain is None:
            from mailflow.evaluation.retrain import retrain
        from mailflow.evaluation.retrain import record_result

        settings = app.settings
        # The worker's own pipeline minus the archive's thread lookups, as for the corpora in bench.
        analyser = replace(app.analyser, signer=None, case_lookup=None, model=None)
        result = retrain(
            analyser,
            settings.effective_model_dir,
            directories=[d for d in settings.training_corpora if d.is_dir()],
            sessions=app.sessions,
            blobs=app.blobs,
            stopping=stopping,
        )
        record_result(app.sessions, result, actor=app.worker_id, now=app.clock())
        if result.installed is not None:
            app.refresh_model()
        return result
    except Interrupted:
        log.info("nightly retraining given up: the worker is stopping; the installed model stays")
        with app.sessions.begin() as session:
            session.add(
                Event(message_id=None, at=app.clock(), actor=app.worker_id, kind=INTERRUPTED, detail={})
            )
        return None
    except Exception:
        log.exception("nightly retraining failed; the installed model stays")
        return None
