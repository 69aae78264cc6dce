"""an email's folder is where it was last filed, as its move events say

Before, recording an outcome also wrote its folder ahead of the move, so a quarantined email processed
again had the new outcome's folder while it still lay in Quarantine; the worker would never move it.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

messages = sa.table(
    "messages",
    sa.column("id", sa.BigInteger()),
    sa.column("folder", sa.String()),
    sa.column("moved_at", sa.DateTime(timezone=True)),
)
events = sa.table(
    "events",
    sa.column("id", sa.BigInteger()),
    sa.column("message_id", sa.BigInteger()),
    sa.column("kind", sa.String()),
    sa.column("detail", sa.JSON()),
)


def upgrade() -> None:
    bind = op.get_bind()
    # Never moved: still in the inbox, whatever folder was written ahead.
    bind.execute(messages.update().where(messages.c.moved_at.is_(None)).values(folder=None))
    filed: dict[int, str] = {}
    moved = sa.select(events.c.message_id, events.c.detail).where(events.c.kind == "moved")
    for message_id, detail in bind.execute(moved.order_by(events.c.id)):
        if message_id is not None and (detail or {}).get("folder"):
            filed[message_id] = detail["folder"]
    recorded = sa.select(messages.c.id, messages.c.folder).where(messages.c.moved_at.is_not(None))
    for message_id, folder in bind.execute(recorded).all():
        if filed.get(message_id, folder) != folder:
            bind.execute(
                messages.update().where(messages.c.id == message_id).values(folder=filed[message_id])
            )


def downgrade() -> None:
    """Nothing to undo: the folders restored are where the emails are."""
