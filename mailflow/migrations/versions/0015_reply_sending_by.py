"""which worker is sending a reply, so that a send cut short by that worker's death is settled at once

A reply in ``sending`` waited for its lease (four SMTP timeouts and more) before it was marked
unconfirmed. Knowing the sender, a worker restarted under the same name, or any worker once the
sender's heartbeat has stopped, settles it within seconds.

Revision ID: 0015
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("replies") as batch:
        batch.add_column(sa.Column("sending_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replies") as batch:
        batch.drop_column("sending_by")
