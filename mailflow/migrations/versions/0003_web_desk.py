"""web desk: accounts, login attempts, triage leases, labelled examples, full-text index

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id, nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "login_attempts",
        sa.Column("id", Id, nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_attempts_username_at", "login_attempts", ["username", "at"])
    op.create_index("ix_login_attempts_address_at", "login_attempts", ["remote_addr", "at"])
    op.create_table(
        "desk_leases",
        sa.Column("message_id", Id, nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("taken_at", When, nullable=False),
        sa.Column("until", When, nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_table(
        "labelled_examples",
        sa.Column("id", Id, nullable=False),
        sa.Column("message_id", Id, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("intents", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("labelled_by", sa.String(length=100), nullable=False),
        sa.Column("labelled_at", When, nullable=False),
        sa.Column("machine_category", sa.String(length=60), nullable=True),
        sa.Column("machine_action", sa.String(length=30), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_labelled_examples_message_id", "labelled_examples", ["message_id"])
    _create_search_index()


def _create_search_index() -> None:
    """The full-text index of the archive: FTS5 on SQLite, a tsvector with a GIN index on PostgreSQL."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE message_search ("
            " message_id BIGINT PRIMARY KEY REFERENCES messages(id),"
            " document tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_message_search_document ON message_search USING GIN (document)")
    else:
        # rowid is the message's id; diacritics folded so "reçu" is found by "recu".
        op.execute(
            "CREATE VIRTUAL TABLE message_fts USING fts5("
            "subject, sender, body, tokenize = 'unicode61 remove_diacritics 2')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE message_search")
    else:
        op.execute("DROP TABLE message_fts")
    op.drop_index("ix_labelled_examples_message_id", table_name="labelled_examples")
    op.drop_table("labelled_examples")
    op.drop_table("desk_leases")
    op.drop_index("ix_login_attempts_address_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_username_at", table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_table("users")
