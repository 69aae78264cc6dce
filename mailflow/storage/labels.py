"""The staff's decisions as labelled examples, for retraining (``mailflow train``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailflow.storage.desk_models import LabelledExample


@dataclass(frozen=True)
class Label:
    """One email as a person labelled it. The raw email is ``blobs.get(sha256)``."""

    id: int
    message_id: int
    sha256: str
    category: str
    action: str
    intents: tuple[str, ...]
    language: str
    labelled_by: str
    labelled_at: datetime
    machine_category: str | None
    machine_action: str | None


def iter_labelled_examples(
    sessions: sessionmaker[Session], *, after_id: int = 0, latest_only: bool = True, page: int = 500
) -> Iterator[Label]:
    """Every staff label, oldest first; with ``latest_only`` a relabelled email counts once, as last said."""
    labels: dict[int, Label] | None = {} if latest_only else None
    with sessions() as session:
        last = after_id
        while True:
            rows = session.scalars(
                select(LabelledExample)
                .where(LabelledExample.id > last)
                .order_by(LabelledExample.id)
                .limit(page)
            ).all()
            if not rows:
                break
            for row in rows:
                label = _label(row)
                if labels is None:
                    yield label
                else:
                    labels.pop(row.message_id, None)  # keeps insertion order = order of the latest label
                    labels[row.message_id] = label
            last = rows[-1].id
            session.expunge_all()
    if labels is not None:
        yield from labels.values()


def _label(row: LabelledExample) -> Label:
    return Label(
        id=row.id,
        message_id=row.message_id,
        sha256=row.sha256,
        category=row.category,
        action=row.action,
        intents=tuple(row.intents or ()),
        language=row.language,
        labelled_by=row.labelled_by,
        labelled_at=row.labelled_at,
        machine_category=row.machine_category,
        machine_action=row.machine_action,
    )
