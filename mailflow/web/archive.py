"""The archive: every email, searchable and filterable, its history, its documents and its case.

Reads go through the read-only connection; only the log of who looked at what is written, by the
desk itself, in the chained event log.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from io import BytesIO

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file
from flask_babel import gettext as _
from flask_babel import to_user_timezone
from flask_login import current_user, login_required

from mailflow.privacy.subjects import query_digests
from mailflow.stages.attachments import mixed_scripts, type_mismatch
from mailflow.storage.models import AttachmentRecord, Message, Reply
from mailflow.web import labels, search
from mailflow.web.archive_queries import (
    PAGE_SIZE,
    ArchiveFilter,
    all_messages,
    count_messages,
    facet_values,
    list_messages,
    load_case,
    load_message,
    timeline,
)
from mailflow.web.cases import notes_of
from mailflow.web.context import desk
from mailflow.web.csv_export import csv_download
from mailflow.web.documents import inline_kind, pdf_page_count, render_image, render_pdf_page
from mailflow.web.forms import NOTE_MAX, CaseStateForm, NoteForm
from mailflow.web.sanitise import FRAME_CSP, frame_document, safe_filename

bp = Blueprint("archive", __name__)


def _attachment(message_id: int, position: int) -> AttachmentRecord:
    with desk().archive() as db:
        record = db.get(Message, message_id)
        if record is None:
            abort(404)
        found = next((a for a in record.attachments if a.position == position), None)
        if found is None:
            abort(404)
        db.expunge(found)
        return found


def _log_view(message_id: int | None, what: str, **detail: object) -> None:
    desk().log(current_user.username, "viewed", message_id, what=what, **detail)


@bp.route("/archive")
@login_required
def index():
    d = desk()
    lookup = d.app.blobs.keyring.lookup_token
    f = ArchiveFilter.from_args(request.args, zone=desk().settings.desk_timezone, lookup=lookup)
    if f.q:  # so a search never misses an email just settled
        search.index_pending(d.sessions, d.app.blobs, lookup=lookup)
    with d.archive() as db:
        rows, total = list_messages(db, f)
        facets = facet_values(db)
    if f.q:  # the results name residents: who searched, for whom (by digest), and what came up
        d.log(current_user.username, "searched", None, **logged_filter(f), results=total, **searched_for(f))
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template("archive.html", rows=rows, total=total, f=f, facets=facets, pages=pages)


@bp.route("/archive.csv")
@login_required
def export():
    """Every email the filters match (not just the page shown) as CSV, in the person's language;
    the export itself is an entry of the log."""
    d = desk()
    lookup = d.app.blobs.keyring.lookup_token
    f = ArchiveFilter.from_args(request.args, zone=desk().settings.desk_timezone, lookup=lookup)
    if f.q:
        search.index_pending(d.sessions, d.app.blobs, lookup=lookup)
    with d.archive() as db:
        total = count_messages(db, f)
    d.log(current_user.username, "exported", None, what="archive", filter=logged_filter(f), rows=total,
          **searched_for(f))  # fmt: skip

    def rows() -> Iterator[list[object]]:
        with d.archive() as db:
            for r in all_messages(db, f):
                yield [
                    # Sortable in a spreadsheet, and in the desk's time zone like every time it shows.
                    to_user_timezone(r.received_at).strftime("%Y-%m-%d %H:%M"),
                    r.from_address,
                    r.subject,
                    labels.category(r.category) if r.category else "",
                    labels.action(r.action) if r.action else "",
                    labels.named(labels.STATUSES, r.status),
                    r.case_ref,
                ]

    header = [_("Received"), _("From"), _("Subject"), _("Category"), _("Action"), _("Status"), _("Case")]
    return csv_download("archive.csv", header, rows())


def logged_filter(f: ArchiveFilter) -> dict[str, object]:
    """The filter as the log keeps it: the words searched for may name a resident, so only their
    number is kept (the log is permanent); dates, menus and a case reference as chosen."""
    kept: dict[str, object] = f.args(page=None, q=None)
    if f.q:
        kept["words"] = len(f.q.split())
    return kept


def searched_for(f: ArchiveFilter) -> dict[str, object]:
    """Whom a search was for, as the log can keep it: keyed digests of the whole query and of each
    address or national number in it (``query_digests``), under "subject" as for any entry naming a
    person; nothing when nothing was searched for."""
    return {"subject": query_digests(f.q, current_app.config["SECRET_KEY"])} if f.q else {}


def attachment_warnings(record: AttachmentRecord) -> list[str]:
    """What staff should know before opening an attachment: a look-alike name, a type that lies."""
    warnings = []
    if mixed_scripts(record.filename):
        warnings.append(_("the name mixes alphabets: letters may only look alike"))
    if type_mismatch(record.declared_type, record.sniffed_type):
        warnings.append(
            _("sent as %(declared)s, but the content is %(sniffed)s", declared=record.declared_type,
              sniffed=record.sniffed_type)
        )  # fmt: skip
    return warnings


def page_data(message_id: int) -> dict[str, object]:
    """What the detail page of an email shows; shared with the triage page."""
    with desk().archive() as db:
        row = load_message(db, message_id)
        if row is None:
            abort(404)
        steps = timeline(db, row)
        db.expunge_all()
    attachments = []
    for record in row.attachments:
        kind = inline_kind(record.sniffed_type)
        pages = 0
        if kind == "pdf":
            try:
                pages = pdf_page_count(desk().app.blobs.get(record.sha256))
            except OSError:
                kind = None
        attachments.append(
            {"record": record, "inline": kind, "pages": pages, "warnings": attachment_warnings(record)}
        )
    return {"row": row, "steps": steps, "attachments": attachments}


@bp.route("/archive/<int:message_id>")
@login_required
def detail(message_id: int):
    data = page_data(message_id)
    _log_view(message_id, "email")
    return render_template("email.html", **data)


@bp.route("/archive/<int:message_id>/body")
@login_required
def body(message_id: int):
    with desk().archive() as db:
        row = db.get(Message, message_id)
        if row is None:
            abort(404)
        if row.erased_at is not None:
            abort(410)  # erased: only its tombstone remains
        sha256 = row.sha256
    try:
        # In the parse worker, with the limits: a hostile email costs a child process, not the desk.
        parsed = desk().app.parse_sandbox.parse(desk().app.blobs.get(sha256))
        document = frame_document(parsed.html, parsed.text)
    except Exception:  # shown as unreadable; the .eml download still has it whole
        document = frame_document(None, "(this email cannot be shown; download the .eml)")
    _log_view(message_id, "body")
    response = Response(document, mimetype="text/html")
    response.headers["Content-Security-Policy"] = FRAME_CSP
    return response


@bp.route("/archive/<int:message_id>/replies/<int:reply_id>")
@login_required
def reply(message_id: int, reply_id: int):
    """A reply's text exactly as it went (or will go) out: its headers that matter and its plain text."""
    with desk().archive() as db:
        found = db.get(Reply, reply_id)
        if found is None or found.message_id != message_id:
            abort(404)
        db.expunge(found)
    sent = message_from_bytes(found.data, policy=policy.default)
    body = sent.get_body(("plain",))  # type: ignore[attr-defined]
    text = body.get_content() if body is not None else ""
    _log_view(message_id, "reply", reply=reply_id)
    return render_template("reply.html", reply=found, message_id=message_id, text=text, sent=sent)


@bp.route("/archive/<int:message_id>/eml")
@login_required
def eml(message_id: int):
    with desk().archive() as db:
        row = db.get(Message, message_id)
        if row is None:
            abort(404)
        if row.erased_at is not None:
            abort(410)
        sha256 = row.sha256
    _log_view(message_id, "original .eml")
    return _sandboxed(
        send_file(
            BytesIO(desk().app.blobs.get(sha256)),
            mimetype="message/rfc822",
            as_attachment=True,
            download_name=f"email-{message_id}.eml",
        )
    )


@bp.route("/archive/<int:message_id>/attachments/<int:position>")
@login_required
def download(message_id: int, position: int):
    record = _attachment(message_id, position)
    _log_view(message_id, "document", attachment=position, how="download")
    return _sandboxed(
        send_file(
            BytesIO(desk().app.blobs.get(record.sha256)),
            mimetype="application/octet-stream",
            as_attachment=True,
            download_name=safe_filename(record.filename, f"document-{message_id}-{position}"),
        )
    )


def _sandboxed(response: Response) -> Response:
    """A download a resident sent: should a browser still show it (an HTML or SVG file opened from the
    address bar), it runs nothing and loads nothing."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; base-uri 'none'; sandbox; frame-ancestors 'none'"
    )
    return response


@bp.route("/archive/<int:message_id>/attachments/<int:position>/page/<int:page>.png")
@login_required
def inline(message_id: int, position: int, page: int):
    record = _attachment(message_id, position)
    kind = inline_kind(record.sniffed_type)
    data = desk().app.blobs.get(record.sha256)
    try:
        if kind == "pdf":
            png = render_pdf_page(data, page)
        elif kind == "image" and page == 0:
            png = render_image(data)
        else:
            abort(404)
    except (IndexError, ValueError):
        abort(404)
    _log_view(message_id, "document", attachment=position, page=page, how="inline")
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/cases/<reference>")
@login_required
def case(reference: str):
    with desk().archive() as db:
        found = load_case(db, reference)
        if found is None:
            abort(404)
        notes = notes_of(db, found.id)
        db.expunge_all()
    desk().log(current_user.username, "viewed", None, what="case", case=reference)
    changes = current_user.may_change  # an auditor's page has no form at all
    return render_template(
        "case.html",
        case=found,
        messages=sorted(found.messages, key=lambda m: (m.received_at, m.id)),
        notes=notes,
        note_form=NoteForm() if changes else None,
        state_form=CaseStateForm() if changes else None,
        note_max=NOTE_MAX,
    )
