"""Everything the desk shows about the machine's work, in the clerk's language and words.

Ids (``switch_eplus_fplus``, ``redirect_info``, ``staff_decided``) and the machine's reasons
("rule 4: confidence 0.62 below the 0.91 needed to act on it") are turned into sentences here;
the names of categories and document kinds come from ``classifiers/labels.toml``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from flask_babel import format_percent, gettext, lazy_gettext

from mailflow.domain import Status
from mailflow.web.context import desk
from mailflow.web.i18n import desk_language, language_name

ACTIONS = {
    "file": lazy_gettext("file in a case"),
    "request_documents": lazy_gettext("ask for the missing documents"),
    "book": lazy_gettext("send the booking link"),
    "online": lazy_gettext("point to the online procedure"),
    "redirect_info": lazy_gettext("refer to the Migration Information Centre"),
    "redirect_other": lazy_gettext("refer to another service"),
    "ignore": lazy_gettext("no reply"),
    "triage": lazy_gettext("a person decides"),
}
STATUSES = {
    "received": lazy_gettext("received"),
    "processed": lazy_gettext("processed"),
    "triage": lazy_gettext("waiting for a person"),
    "ignored": lazy_gettext("ignored"),
    "quarantined": lazy_gettext("quarantined"),
}
# The retention schedule's rules (``retention.schedule``), and an erasure a person asked for.
RETENTION_RULES = {
    "machine": lazy_gettext("spam and machine mail"),
    "duplicate": lazy_gettext("duplicates"),
    "ignored": lazy_gettext("ignored mail"),
    "processed": lazy_gettext("answered emails"),
    "closed_case": lazy_gettext("closed cases"),
    "request": lazy_gettext("erasure request"),
}
CASE_STATUSES = {
    "complete": lazy_gettext("complete"),
    "incomplete": lazy_gettext("documents missing"),
    "closed": lazy_gettext("closed"),
}
REPLY_STATUSES = {
    "pending": lazy_gettext("waiting to be sent"),
    "sending": lazy_gettext("being sent"),
    "sent": lazy_gettext("sent"),
    "failed": lazy_gettext("not delivered"),
    "unconfirmed": lazy_gettext("sent, not confirmed"),
    "withheld": lazy_gettext("withheld"),
}
ROLES = {
    "staff": lazy_gettext("staff"),
    "auditor": lazy_gettext("auditor"),
    "admin": lazy_gettext("administrator"),
}
# Why an email waits in triage: the queue's chips and filter.
WAITING_REASONS = {
    "unverified": lazy_gettext("sender not verified"),
    "several": lazy_gettext("several requests"),
    "unsure": lazy_gettext("not sure enough"),
    "attachment": lazy_gettext("attachment not recognised"),
    "undelivered": lazy_gettext("reply not delivered"),
    "unconfirmed": lazy_gettext("reply possibly delivered"),
    "person": lazy_gettext("needs a person"),
    "closed": lazy_gettext("its case is closed"),
    "other": lazy_gettext("other reason"),
}
EVENTS = {
    "received": lazy_gettext("received"),
    "stored": lazy_gettext("stored"),
    "duplicate": lazy_gettext("duplicate"),
    "screened": lazy_gettext("screened"),
    "classified": lazy_gettext("read by the machine"),
    "decided": lazy_gettext("decided by the machine"),
    "case_opened": lazy_gettext("case opened"),
    "case_joined": lazy_gettext("added to a case"),
    "case_note": lazy_gettext("note written on a case"),
    "case_closed": lazy_gettext("case closed"),
    "case_reopened": lazy_gettext("case reopened"),
    "reply_queued": lazy_gettext("reply queued"),
    "reply_sent": lazy_gettext("reply sent"),
    "reply_failed": lazy_gettext("reply not delivered"),
    "reply_unconfirmed": lazy_gettext("reply possibly delivered, not confirmed"),
    "reply_deferred": lazy_gettext("reply delayed, to be sent again"),
    "reply_withheld": lazy_gettext("reply withheld"),
    "reply_bounced": lazy_gettext("reply bounced"),
    "interrupted_send_resolved": lazy_gettext("interrupted sending checked"),
    "held_for_triage": lazy_gettext("put back before a person"),
    "staff_decided": lazy_gettext("decided by a person"),
    "staff_decision_undone": lazy_gettext("decision undone"),
    "staff_decision_failed": lazy_gettext("decision failed"),
    "quarantined": lazy_gettext("quarantined"),
    "reprocess": lazy_gettext("processed again"),
    "resumed": lazy_gettext("processing resumed"),
    "parts_left_out": lazy_gettext("attachments left out"),
    "moved": lazy_gettext("moved to a mailbox folder"),
    "lost": lazy_gettext("no longer in the mailbox"),
    "rebound": lazy_gettext("mailbox renumbered"),
    "uidvalidity_changed": lazy_gettext("mailbox renumbered"),
    "viewed": lazy_gettext("viewed"),
    "retrain_started": lazy_gettext("retraining started"),
    "model_promoted": lazy_gettext("new model installed"),
    "model_kept": lazy_gettext("model kept"),
    "retrain_interrupted": lazy_gettext("retraining given up (worker stopped)"),
    "exported": lazy_gettext("exported"),
    "searched": lazy_gettext("searched the archive"),
    "erased": lazy_gettext("erased"),
    "deleted_from_mailbox": lazy_gettext("deleted from the mailbox folders"),
    "retention_run": lazy_gettext("retention schedule applied"),
    "subject_erased": lazy_gettext("a person's data erased on request"),
    "legal_hold_set": lazy_gettext("legal hold set"),
    "legal_hold_lifted": lazy_gettext("legal hold lifted"),
    "logged_in": lazy_gettext("logged in"),
    "logged_out": lazy_gettext("logged out"),
    "user_added": lazy_gettext("account added"),
    "user_disabled": lazy_gettext("account disabled"),
    "user_enabled": lazy_gettext("account enabled"),
    "user_unlocked": lazy_gettext("account unlocked"),
    "user_password_set": lazy_gettext("new password set"),
    "user_role_changed": lazy_gettext("role changed"),
}
# Why an email is in quarantine, by the code its stored reason starts with (``mailflow.stages.limits``).
QUARANTINE_REASONS = {
    "oversize": lazy_gettext(
        "Too large to download: ask the resident to send the documents in several smaller emails"
    ),
    "header_too_large": lazy_gettext(
        "Its header is far too large (thousands of addresses, for example): it was not read"
    ),
    "too_deep": lazy_gettext("Emails or parts nested too deeply inside each other: it was not read"),
    "encrypted": lazy_gettext("Encrypted: it cannot be read here; ask the resident for an unencrypted email"),
    "too_costly": lazy_gettext("Reading it took too long or needed too much memory: it was stopped"),
    "poison": lazy_gettext("The machine stopped several times while reading it: it is not tried again"),
    "unreadable": lazy_gettext("Not an email that can be read (empty, or no headers)"),
    "analysis failed": lazy_gettext("The machine failed while reading it (a fault in mailflow)"),
    "action failed": lazy_gettext("The machine failed while acting on it (a fault in mailflow)"),
}
# Events about a case: their detail names it ("case") and, when it changed, its new state.
CASE_EVENTS = frozenset({"case_opened", "case_joined", "case_note", "case_closed", "case_reopened"})
EXPORTS = {
    "audit log": lazy_gettext("the audit log"),
    "archive": lazy_gettext("an archive list"),
    "subject": lazy_gettext("a person's data (subject access request)"),
}
# Verbs of rule 4 ("needed to act on it"), by the action group whose threshold was missed.
_VERB_OF = {
    "act on it": lazy_gettext("act on it alone"),
    "answer it as a question": lazy_gettext("answer it as a question"),
    "send it to another service": lazy_gettext("refer it to another service"),
    "ignore it": lazy_gettext("ignore it"),
}


# The machine's own names in the event log; people appear by their user names.
MACHINE_ACTORS = frozenset(
    {"ingest", "screen", "classify", "decide", "act", "pipeline", "record", "reprocess", "setup", "demo"}
    | {"mailflow train"}
)


def actor(value: str | None) -> str:
    if value and value.startswith("cli:"):
        return gettext("%(person)s (command line)", person=value[4:])
    # A worker names itself host:process:token; set-up, the demo and training are the machine's too.
    if value in MACHINE_ACTORS or (value and value.count(":") >= 2):
        return gettext("the machine")
    if value == "outbox":
        return gettext("the outbox")
    return value or ""


def folder(name: str | None) -> str:
    """A mailbox folder by what it holds: "Processed" is the folder of processed emails."""
    if not name:
        return ""
    if "://" in name or name.startswith("maildir:"):  # a mailbox's full name: its folder is what counts
        name = name.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    if name.upper() == "INBOX":
        return gettext("inbox")
    for status in Status:
        if status is not Status.RECEIVED and status.folder == name:
            return named(STATUSES, status.value)
    return name


def category(value: str | None) -> str:
    return desk().labels.category(value, desk_language())


def kind(value: str | None) -> str:
    return desk().labels.kind(value, desk_language())


def kinds(values: Iterable[str] | None) -> str:
    return ", ".join(kind(v) for v in values or ()) or gettext("none")


def named(table: Mapping[str, Any], value: str | None) -> str:
    return str(table.get(value or "", value or ""))


def action(value: Any) -> str:
    return named(ACTIONS, getattr(value, "value", value))


def percent(value: float | None) -> str:
    return format_percent(value or 0.0) if value is not None else ""


def explain(reason: str | None) -> str:
    """The decision's own reason (the last of its list) as a sentence a clerk understands."""
    reason = reason or ""
    if m := re.fullmatch(r"rule 1: machine mail by its text \((\w+)\)", reason):
        return gettext("Automatic message, recognised by its text: %(what)s", what=category(m[1]))
    if reason.startswith("rule 1"):
        return gettext("Automatic message (out-of-office, bounce or bulk mail)")
    if reason == "rule 2: sender failed DMARC":
        return gettext("Sender not verified (DMARC failed): the email may not come from the address it shows")
    if reason.startswith("rule 2"):
        return gettext("Sender not verified: the mail server did not confirm the address")
    if m := re.fullmatch(r"rule 3: (\d+) requests", reason):
        return gettext("Asks %(count)s things at once", count=m[1])
    if m := re.fullmatch(r"rule 4: confidence ([\d.]+) below the ([\d.]+) needed to (.+)", reason):
        return gettext(
            "Not sure enough to %(verb)s: %(have)s sure, %(needed)s needed",
            verb=named(_VERB_OF, m[3]),
            have=percent(float(m[1])),
            needed=percent(float(m[2])),
        )
    if m := re.fullmatch(r"rule 4: the model is never sure enough to (.+)", reason):
        return gettext("The machine never does this alone: %(verb)s", verb=named(_VERB_OF, m[1]))
    if m := re.fullmatch(r"held by the catalogue: (\w+)", reason):
        return gettext(
            "Looks like %(what)s, but the email says something that may rule it out: a person checks",
            what=category(m[1]),
        )
    if reason == "attachments left out over the limits":
        return gettext("Attachments over the limits were left out unread: check what the resident sent")
    if m := re.fullmatch(r"calendar message \(METHOD:([\w-]+)\): never answered automatically", reason):
        return gettext(
            "A calendar message (%(method)s): an appointment accepted, declined or cancelled by a calendar"
            " program is never answered automatically",
            method=m[1],
        )
    if m := re.fullmatch(r"(\d+) archive\(s\) attached: stored, never opened", reason):
        return gettext(
            "%(count)s archive(s) (zip, rar, 7z…) attached: stored but never opened;"
            " the document may be inside",
            count=m[1],
        )
    if reason.startswith("no_sender"):
        return gettext("No usable sender address: nobody to answer automatically")
    if reason.startswith("required document named by its file name only"):
        return gettext(
            "The required document is only named in a file name: what the file shows is not that document"
        )
    if reason.startswith("required document missing, but"):
        return gettext(
            "A required document is missing, but an attachment could not be read: it may be that one"
        )
    if reason.startswith("required document missing"):
        return gettext("A required document is missing: the resident is asked for it")
    if m := re.fullmatch(r"product (\w+): (\w+)", reason):
        if m[2] == "triage":
            return gettext("Needs a person: %(what)s", what=category(m[1]))
        return gettext("%(what)s: %(action)s", what=category(m[1]), action=action(m[2]))
    if reason.startswith("reply not delivered"):
        return gettext("The reply did not reach the resident")
    if reason.startswith("reply possibly delivered"):
        return gettext(
            "The reply may have reached the resident: the mail server did not confirm it. "
            "Check before sending it again"
        )
    if m := re.fullmatch(r"case (\S+) is closed", reason):
        return gettext(
            "Case %(case)s is closed: filing this email in it opens the case again",
            case=m[1],
        )
    if m := re.fullmatch(r"decided by (.+)", reason):
        return gettext("Decided by %(person)s", person=m[1])
    return gettext("Other reason")


def quarantine_reason(reason: str | None) -> str:
    """Why an email is in quarantine, in words: its stored reason is "<code>: <details>"."""
    code = (reason or "").split(":", 1)[0].strip()
    if code in QUARANTINE_REASONS:
        return str(QUARANTINE_REASONS[code])
    return gettext("Other reason")


def chain_problem(problem: str | None) -> str:
    """What ``mailflow audit verify`` found wrong with the event log, in words."""
    problem = problem or ""
    if m := re.fullmatch(r"entry (\d+) is missing \(next is (\d+)\)", problem):
        return gettext("entry %(missing)s is missing (the next is %(next)s)", missing=m[1], next=m[2])
    return str(
        {
            "its link to the entry before does not match": lazy_gettext(
                "its link to the entry before does not match"
            ),
            "its content was altered": lazy_gettext("its content was altered"),
            "an entry is outside the chain": lazy_gettext("an entry is outside the chain"),
            "the chain ends before its head": lazy_gettext("the chain ends before its last recorded entry"),
        }.get(problem, problem)
    )


def waiting_reason(reasons: list[str] | None) -> str:
    """Why an email waits in triage, as a key of ``WAITING_REASONS``."""
    last = (reasons or [""])[-1]
    if last.startswith("rule 2"):
        return "unverified"
    if last.startswith("rule 3"):
        return "several"
    if last.startswith(("rule 4", "held by the catalogue")):
        return "unsure"
    if "not recognised" in last or "file name only" in last or "left out" in last:
        return "attachment"
    if last.startswith("reply not delivered"):
        return "undelivered"
    if last.startswith("reply possibly delivered"):
        return "unconfirmed"
    if last.endswith(": triage"):
        return "person"
    if re.fullmatch(r"case \S+ is closed", last):
        return "closed"
    return "other"


def event_summary(kind_: str, d: Mapping[str, Any]) -> str:
    """One entry of the event log in words: what was found, decided, done or looked at."""
    if kind_ == "classified":
        return gettext(
            "%(what)s (%(sure)s sure, %(language)s); documents: %(documents)s",
            what=category(d.get("category")),
            sure=percent(_number(d.get("confidence"))),
            language=_language(d.get("language")),
            documents=kinds(d.get("documents")),
        )
    if kind_ == "screened":
        if d.get("machine"):
            return gettext("automatic message: %(what)s", what=category(d["machine"]))
        return {
            "pass": gettext("sender verified"),
            "fail": gettext("sender not verified (DMARC failed)"),
        }.get(str(d.get("sender")), gettext("sender not checked"))
    if kind_ in {"decided", "held_for_triage"}:
        listed = d.get("reasons") or [d.get("reason")]
        return (
            explain(listed[-1])
            if kind_ == "held_for_triage"
            else f"{action(d.get('action'))} — {explain(listed[-1])}"
        )
    if kind_ == "staff_decided":
        parts = "; ".join(
            f"{category(p.get('category'))} → {action(p.get('action'))}" for p in d.get("parts") or []
        )
        return parts + (" " + gettext("(reply written by hand)") if d.get("hand_reply") else "")
    if kind_ == "viewed":
        return viewed(d)
    if kind_ in CASE_EVENTS:
        state = named(CASE_STATUSES, d.get("case_status")) if d.get("case_status") else ""
        return f"{d.get('case')}" + (f" ({state})" if state else "")
    if kind_ == "moved":
        return gettext("to the folder: %(folder)s", folder=folder(d.get("folder")))
    if kind_ == "quarantined":
        return quarantine_reason(d.get("reason"))
    if kind_ == "parts_left_out":
        return gettext(
            "over the limits for one email: %(count)s attachment(s) not stored and not read",
            count=d.get("count", "?"),
        )
    if kind_ == "lost":
        return gettext("last filed in the folder: %(folder)s", folder=folder(d.get("folder")))
    if kind_ == "stored":
        return gettext("original kept, fingerprint %(hash)s…", hash=str(d.get("sha256", ""))[:12])
    if kind_ == "staff_decision_failed":
        return gettext("the decision could not be applied; the email waits in the queue again")
    if kind_ == "exported":
        return gettext("%(what)s exported", what=named(EXPORTS, d.get("what")))
    if kind_ in {"legal_hold_set", "legal_hold_lifted"}:
        return str(d.get("case", ""))
    if kind_ == "subject_erased":
        return gettext(
            "%(emails)s emails, %(cases)s cases",
            emails=len(d.get("emails") or []),
            cases=len(d.get("cases") or []),
        )
    if kind_ == "searched":
        return gettext("searched for %(count)s word(s)", count=d.get("words", "?"))
    if kind_ == "user_added":
        return gettext("account %(user)s, %(role)s", user=d.get("user"), role=named(ROLES, d.get("role")))
    if kind_ == "user_role_changed":
        return gettext(
            "account %(user)s: %(was)s → %(role)s",
            user=d.get("user"),
            was=named(ROLES, d.get("was")),
            role=named(ROLES, d.get("role")),
        )
    if kind_.startswith("user_"):
        return gettext("account %(user)s", user=d.get("user"))
    replies = {"reply_queued", "reply_sent", "reply_failed", "reply_unconfirmed", "reply_withheld"}
    if kind_ in replies and d.get("reply"):
        return gettext("reply %(number)s", number=d["reply"])
    return ""


def viewed(d: Mapping[str, Any]) -> str:
    what = d.get("what", "email")
    if what == "document" and isinstance(d.get("attachment"), int):
        number = d["attachment"] + 1  # positions count from 0, the email's page from 1
        if d.get("how") == "download":
            return gettext("downloaded document %(number)s", number=number)
        if isinstance(d.get("page"), int):
            page = d["page"] + 1
            return gettext("looked at page %(page)s of document %(number)s", page=page, number=number)
    if what == "who viewed":
        return gettext("looked at who viewed the email")
    if what == "erasure":
        return gettext("looked up what erasing a person's data would remove")
    if what == "person":
        return gettext("looked up who viewed a person's data")
    if what == "attachment" or "attachment" in d:
        return gettext("looked at attachment %(number)s", number=d.get("attachment", ""))
    if what == "reply" or "reply" in d:
        return gettext("read reply %(number)s", number=d.get("reply", ""))
    if what == "case":
        return gettext("looked at case %(case)s", case=d.get("case", ""))
    if what == "body":
        return gettext("read the email's text")
    if what == "original .eml":
        return gettext("downloaded the original email")
    return gettext("looked at the email")


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _language(code: Any) -> str:
    return language_name(str(code)) if code else ""
