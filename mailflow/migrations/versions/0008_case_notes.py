"""staff write notes on cases, close and reopen them

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_notes",
        sa.Column("id", Id, nullable=False),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("written_at", When, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_notes_case_id", "case_notes", ["case_id"])
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("closed_at", When, nullable=True))
        batch.add_column(sa.Column("closed_by", sa.String(length=100), nullable=True))


def downgrade() -> None:
    # Not recreated on SQLite (3.35+ drops columns itself): rebuilding ``cases`` would break the
    # foreign keys of the emails filed in it.
    with op.batch_alter_table("cases", recreate="never") as batch:
        batch.drop_column("closed_by")
        batch.drop_column("closed_at")
    op.drop_index("ix_case_notes_case_id", table_name="case_notes")
    op.drop_table("case_notes")
