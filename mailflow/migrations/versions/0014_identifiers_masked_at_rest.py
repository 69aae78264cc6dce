"""national register and card numbers, PIN/PUK codes kept masked outside the raw email

Subjects, attachment names, reply subjects and case notes written before are masked in place; the search
index is emptied, and the desk rebuilds it, masked, with lookup tokens (docs/encryption.md). The raw
emails keep the full values, so nothing is lost; there is nothing to undo on downgrade.

Revision ID: 0014
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mailflow.identifiers import mask

revision: str = "0014"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
# (table, text column): every column that holds words a resident (or staff) wrote.
COLUMNS = (
    ("messages", "subject"),
    ("attachments", "filename"),
    ("replies", "subject"),
    ("case_notes", "text"),
)


def upgrade() -> None:
    connection = op.get_bind()
    for table, column in COLUMNS:
        _mask_column(connection, table, column)
    if connection.dialect.name == "postgresql":
        op.execute("DELETE FROM message_search")
    else:
        op.execute("DELETE FROM message_fts")


def _mask_column(connection: sa.Connection, table: str, column: str) -> None:
    last = 0
    while True:
        rows = connection.execute(
            sa.text(f"SELECT id, {column} FROM {table} WHERE id > :last ORDER BY id LIMIT {BATCH}"),
            {"last": last},
        ).all()
        if not rows:
            return
        changed = [{"id": pk, "value": mask(value)} for pk, value in rows if value and mask(value) != value]
        if changed:
            connection.execute(sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"), changed)
        last = rows[-1][0]


def downgrade() -> None:
    pass  # masked values stay masked: the raw emails hold the originals
