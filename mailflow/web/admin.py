"""Admin pages (accounts, model figures) and the auditor's page (the event log's head)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import func, select

from mailflow.audit import verify_chain
from mailflow.storage.desk_models import ROLES, LabelledExample
from mailflow.storage.models import AuditHead
from mailflow.web.accounts import MIN_PASSWORD, AccountError, add_user, list_accounts
from mailflow.web.admin_accounts import flash_errors, refusal
from mailflow.web.audit_queries import PAGE_SIZE, AuditFilter, all_of, choices, page_of
from mailflow.web.context import desk
from mailflow.web.csv_export import csv_download
from mailflow.web.forms import AccountChangeForm, NewUserForm, RoleForm, SetPasswordForm
from mailflow.web.labels import event_summary as summary
from mailflow.web.security import roles_required

bp = Blueprint("admin", __name__)


def model_manifests(directory: Path) -> list[dict[str, Any]]:
    """Every ``classifiers/model/*.json`` manifest that can be read, newest name first."""
    found = []
    for path in sorted(directory.glob("*.json"), reverse=True):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.append({"file": path.name, "data": data})
    return found


def flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows += flat(value, f"{prefix}{key}.")
        else:
            rows.append(
                (
                    f"{prefix}{key}",
                    json.dumps(value, ensure_ascii=False) if isinstance(value, list) else str(value),
                )
            )
    return rows


def shown(data: dict[str, Any]) -> dict[str, Any]:
    """A manifest as the page shows it: the digests of the emails trained on only counted."""
    if isinstance(data.get("trained_on"), list):
        counted = gettext("%(count)s emails (digests in the manifest)", count=len(data["trained_on"]))
        data = data | {"trained_on": counted}
    return data


def promotion_summary(data: dict[str, Any]) -> dict[str, str]:
    """One line per model of the history: when, on what, and its held-out figures against its predecessor."""
    promotion = (data.get("evaluation") or {}).get("promotion") or {}

    def figure(key: str) -> str:
        def one(side: str) -> str:
            value = ((promotion.get(side) or {}).get(key) or {}).get("value")
            return "—" if value is None else f"{value:.1%}"

        return gettext("%(now)s (was %(before)s)", now=one("candidate"), before=one("previous"))

    return {
        "version": str(data.get("model_version", "")),
        "trained_at": str(data.get("trained_at", "")),
        "corpus": str(data.get("corpus", "")),
        "harmful": figure("harmful_rate"),
        "automation": figure("automation_rate"),
        "category": figure("category_accuracy"),
        "reason": str(promotion.get("reason") or gettext("installed before promotions were recorded")),
    }


@bp.route("/admin", methods=["GET", "POST"])
@roles_required("admin")
def index():
    d = desk()
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            with d.sessions.begin() as db:
                user = add_user(
                    db,
                    form.username.data or "",
                    form.role.data or "",
                    form.password.data or "",
                    actor=current_user.username,
                    now=d.clock(),
                )
                added = user.username
            flash(gettext("Account %(user)s added.", user=added), "ok")
            return redirect(url_for("admin.index", _anchor="accounts"))
        except AccountError as exc:
            flash(refusal(exc, by=current_user.username), "error")
    flash_errors(form)
    with d.archive() as db:
        listed = list_accounts(db, now=d.clock(), throttle=d.throttle)
        labels = db.scalar(select(func.count()).select_from(LabelledExample)) or 0
    model_dir = d.settings.effective_model_dir
    manifests = [
        {"file": m["file"], "rows": flat(shown(m["data"])), "promotion": promotion_summary(m["data"])}
        for m in model_manifests(model_dir)
    ]
    history = [promotion_summary(m["data"]) for m in model_manifests(model_dir / "history")]
    return render_template(
        "admin.html",
        accounts=listed,
        form=form,
        change_form=AccountChangeForm(),
        password_form=SetPasswordForm(formdata=None),
        role_form=RoleForm(formdata=None),
        roles=ROLES,
        min_password=MIN_PASSWORD,
        manifests=manifests,
        history=history,
        labels=labels,
    )


@bp.route("/audit")
@roles_required("auditor", "admin")
def audit():
    return _audit_page(verification=None)


@bp.route("/audit/verify")
@roles_required("auditor", "admin")
def verify():
    return _audit_page(verification=verify_chain(desk().archive))


@bp.route("/audit.csv")
@roles_required("auditor", "admin")
def audit_export():
    """The filtered entries as CSV, oldest first; the export itself is an entry of the log."""
    d = desk()
    f = AuditFilter.from_args(request.args, zone=desk().settings.desk_timezone)
    d.log(current_user.username, "exported", None, what="audit log", filter=f.args(page=None))

    def rows() -> Iterator[list[object]]:
        with d.archive() as db:
            for e in all_of(db, f):
                yield [
                    e.seq,
                    e.at.isoformat(),
                    e.actor,
                    e.kind,
                    e.message_id or "",
                    summary(e.kind, e.detail or {}),
                    e.hash,
                ]

    header = ["seq", "at", "actor", "kind", "email", "what", "hash"]
    return csv_download("audit-log.csv", header, rows())


def _audit_page(verification: object) -> str:
    d = desk()
    f = AuditFilter.from_args(request.args, zone=desk().settings.desk_timezone)
    with d.archive() as db:
        head = db.get(AuditHead, 1)
        entries, total = page_of(db, f)
        listed = [(e, summary(e.kind, e.detail or {})) for e in entries]
        options = choices(db)
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template(
        "audit.html",
        head=head,
        entries=listed,
        total=total,
        pages=pages,
        f=f,
        options=options,
        verification=verification,
    )
