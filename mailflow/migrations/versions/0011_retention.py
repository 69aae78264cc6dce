"""retention: event payloads hashed by digest (scheme 2) so they can be erased; tombstones; legal holds;
a lease row per daily job

Entries written before this migration keep their scheme-1 hashes untouched (they still verify as they
did); each gets the digest of its payload, which an erasure needs. New entries use scheme 2, whose hash
commits to that digest instead of the payload itself. The append-only triggers now let exactly one
change through: erasing an entry's payload once, with every chained column left as it was.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns an erasure must leave exactly as they were.
_CHAINED = (
    "id",
    "seq",
    "prev_hash",
    "hash",
    "message_id",
    "at",
    "actor",
    "kind",
    "hash_scheme",
    "detail_sha256",
)


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("hash_scheme", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("detail_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    _digest_existing_payloads()
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("erased_rule", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("erased_category", sa.String(length=60), nullable=True))
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("legal_hold_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("legal_hold_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("legal_hold_reason", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    _replace_update_guard(erasable=True)


def _digest_existing_payloads() -> None:
    from mailflow.audit import detail_digest

    events = sa.table(
        "events", sa.column("id", sa.BigInteger()), sa.column("detail", sa.JSON()), sa.column("detail_sha256")
    )
    bind = op.get_bind()
    # The update trigger forbids changing events; it is put back, stricter, below.
    _drop_update_guard()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(events.c.id, events.c.detail)
            .where(events.c.id > last)
            .order_by(events.c.id)
            .limit(1000)
        ).all()
        if not rows:
            break
        for pk, detail in rows:
            bind.execute(
                events.update().where(events.c.id == pk).values(detail_sha256=detail_digest(detail or {}))
            )
        last = rows[-1][0]


def _drop_update_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_append_only ON events")
        op.execute("DROP TRIGGER IF EXISTS events_erase_once ON events")
        op.execute("DROP FUNCTION IF EXISTS events_erase_once()")
    else:
        op.execute("DROP TRIGGER IF EXISTS events_no_update")


def _replace_update_guard(*, erasable: bool) -> None:
    """Updates refused, except (``erasable``) the one erasure of a payload that leaves the chain alone."""
    postgres = op.get_bind().dialect.name == "postgresql"
    _drop_update_guard()
    if postgres:
        if erasable:
            same = " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _CHAINED)
            op.execute(
                "CREATE FUNCTION events_erase_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL AND {same} THEN RETURN NEW; END IF; "
                "RAISE EXCEPTION 'the event log is append-only'; END $$"
            )
            op.execute(
                "CREATE TRIGGER events_erase_once BEFORE UPDATE ON events "
                "FOR EACH ROW EXECUTE FUNCTION events_erase_once()"
            )
            op.execute(
                "CREATE TRIGGER events_append_only BEFORE DELETE ON events "
                "FOR EACH ROW EXECUTE FUNCTION events_append_only()"
            )
        else:
            op.execute(
                "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
                "FOR EACH ROW EXECUTE FUNCTION events_append_only()"
            )
        return
    condition = ""
    if erasable:
        same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _CHAINED)
        condition = f"WHEN NOT (OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL AND {same}) "
    op.execute(
        f"CREATE TRIGGER events_no_update BEFORE UPDATE ON events {condition}"
        "BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END"
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _drop_update_guard()
    op.drop_table("job_runs")
    with op.batch_alter_table("cases") as batch:
        for column in ("erased_at", "legal_hold_reason", "legal_hold_by", "legal_hold_at"):
            batch.drop_column(column)
    with op.batch_alter_table("messages") as batch:
        for column in ("erased_category", "erased_rule", "erased_at"):
            batch.drop_column(column)
    with op.batch_alter_table("events") as batch:  # on SQLite, a new table: its triggers are gone
        for column in ("erased_at", "detail_sha256", "hash_scheme"):
            batch.drop_column(column)
    if postgres:
        _replace_update_guard(erasable=False)
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS events_no_{verb.lower()}")
        op.execute(
            f"CREATE TRIGGER events_no_{verb.lower()} BEFORE {verb} ON events "
            "BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END"
        )
