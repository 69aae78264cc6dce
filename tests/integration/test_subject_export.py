"""A subject access export, through the real pipeline, desk decisions and the command line: everything
about one resident, nothing about another, and the export itself in the log by digest only. Then their
erasure request: refused while a legal hold or triage applies, then their data gone, the other's kept."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta
from email import message_from_bytes

import pytest
from click.testing import CliRunner
from fpdf import FPDF
from sqlalchemy import select

from mailflow.audit import verify_chain
from mailflow.domain import Action
from mailflow.identifiers.nrn import nrn_check
from mailflow.operations.archive_commands import audit as audit_group
from mailflow.privacy.commands import subject as subject_group
from mailflow.privacy.readers import sandboxed_readers
from mailflow.privacy.subjects import NotAnIdentifier, Subject, find_subject, identity_digest
from mailflow.retention.holds import lift_legal_hold, set_legal_hold
from mailflow.storage.desk_models import CaseNote
from mailflow.storage.models import Case, Event, Message, Reply
from mailflow.web import leases
from mailflow.web.cases import add_note
from mailflow.web.decisions import Part, decide_item
from mailflow.web.security import secret_key
from tests.web import emails
from tests.web.conftest import build_world, desk_settings
from tests.web.test_archive import png_bytes

AMINA = "Amina.El@Example.org"  # written with capitals: addresses match whatever their case
YUSUF = "yusuf.k@example.org"
AMINA_NRN = "850730033" + f"{nrn_check('850730033', born_2000_or_later=False):02d}"
YUSUF_NRN = "900101123" + f"{nrn_check('900101123', born_2000_or_later=False):02d}"


def pdf_with(line: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text=line)
    return bytes(pdf.output())


def written(nrn: str) -> str:
    """A number as people write it: 85.07.30-033.28."""
    return f"{nrn[:2]}.{nrn[2:4]}.{nrn[4:6]}-{nrn[6:9]}.{nrn[9:]}"


def mails() -> dict[str, bytes]:
    return {
        "amina_first": emails.renewal_request(sender=AMINA),
        "amina_photo": emails.email(
            sender=AMINA.lower(),
            subject="Foto voor mijn verblijfskaart <script>alert(1)</script>",
            dmarc="fail",
            text=f"Goedendag, hierbij mijn foto. Mijn rijksregisternummer is {written(AMINA_NRN)}.\n"
            "Amina El Amrani\n",
            attachments=[("pasfoto amina.png", "image/png", png_bytes())],
        ),
        # From an address she did not give: hers by the number in the attached letter only.
        "amina_letter": emails.email(
            sender="a.elamrani@example.net",
            subject="Brief",
            dmarc="fail",
            text="Zie bijlage.\n",
            attachments=[
                ("brief.pdf", "application/pdf", pdf_with(f"Rijksregisternummer: {written(AMINA_NRN)}"))
            ],
        ),
        "yusuf": emails.email(
            sender=YUSUF,
            subject="Vernieuwing verblijfskaart Yusuf",
            dmarc="fail",
            text=f"Goedendag, mijn kaart vervalt. Rijksregisternummer {YUSUF_NRN}.\nYusuf Kaya\n",
        ),
        "yusuf_in_amina_case": emails.email(
            sender=YUSUF, subject="Over het dossier van Amina", dmarc="fail", text="Ik ben haar buurman.\n"
        ),
    }


@pytest.fixture
def world(tmp_path):
    built = build_world(desk_settings(tmp_path / "data"), mails())
    app, ids, clock = built.app, built.ids, built.clock
    for label in ("amina_first", "yusuf"):
        leases.take(app.sessions, ids[label], "sara", now=clock(), lease=timedelta(minutes=5))
        decide_item(app, ids[label], "sara", [Part("return_report")])
    with app.sessions.begin() as session:
        amina_case = session.get_one(Message, ids["amina_first"]).case
        assert amina_case is not None and amina_case.resident_address.lower() == AMINA.lower()
        # Someone else's email filed in her case (as a thread reply would be): held back, not handed over.
        session.get_one(Message, ids["yusuf_in_amina_case"]).case_id = amina_case.id
        reference = amina_case.reference
        yusuf_reference = session.get_one(Message, ids["yusuf"]).case.reference
    add_note(app.sessions, reference, "sara", "Belde terug, afspraak gemaakt.", clock())
    add_note(app.sessions, yusuf_reference, "sara", "Notitie over Yusuf.", clock())
    with app.sessions.begin() as session:
        session.add(Event(message_id=ids["amina_photo"], at=clock(), actor="sam", kind="viewed",
                          detail={"what": "document", "attachment": 0, "how": "download"}))  # fmt: skip
        session.add(
            Event(message_id=ids["yusuf"], at=clock(), actor="sam", kind="viewed", detail={"what": "email"})
        )
    try:
        yield built, reference, yusuf_reference
    finally:
        app.close()


def test_identifiers_are_addresses_or_valid_national_numbers():
    person = Subject.parse([" Amina.El@Example.ORG ", written(AMINA_NRN)])
    assert person.addresses == {"amina.el@example.org"} and person.nrns == {AMINA_NRN}
    for wrong in ("amina", "85073003300", ""):
        with pytest.raises(NotAnIdentifier):
            Subject.parse([wrong])
    # The digest the log keeps: the same for any way of writing it, different per key and per person.
    assert identity_digest("AMINA.EL@example.org", "k") == identity_digest("amina.el@example.org ", "k")
    assert identity_digest("amina.el@example.org", "k") != identity_digest("amina.el@example.org", "other")
    assert identity_digest(AMINA_NRN, "k") != identity_digest(YUSUF_NRN, "k")


def test_finder_by_national_number_reads_the_emails_and_their_pdfs(world):
    built, _, _ = world
    app, ids = built.app, built.ids
    with app.sessions() as session, sandboxed_readers(app.parse_sandbox) as readers:
        by_number = Subject.parse([AMINA_NRN])
        found = find_subject(
            session,
            by_number,
            key="k",
            read=app.blobs.get,
            text_of=readers.email_text,
            pdf_text_of=readers.pdf_text,
        )
        assert [m.id for m in found.messages] == [ids["amina_photo"], ids["amina_letter"]]
        assert found.cases == []  # a case belongs to an address: the number alone does not give it
        without_pdfs = find_subject(
            session, by_number, key="k", read=app.blobs.get, text_of=readers.email_text
        )
        assert [m.id for m in without_pdfs.messages] == [ids["amina_photo"]]


def test_export_holds_all_of_one_resident_and_nothing_of_another(world, tmp_path):
    built, reference, yusuf_reference = world
    ids, settings = built.ids, built.settings
    target = tmp_path / "export"
    result = CliRunner().invoke(
        subject_group, ["export", AMINA, AMINA_NRN, "--output", str(target), "--language", "nl"], obj=settings
    )
    assert result.exit_code == 0, result.output
    assert "3 emails" in result.output and "1 emails of other senders" in result.output

    data = json.loads((target / "data.json").read_text())
    assert [e["id"] for e in data["emails"]] == [ids["amina_first"], ids["amina_photo"], ids["amina_letter"]]
    assert [c["reference"] for c in data["cases"]] == [reference]
    assert [n["text"] for n in data["cases"][0]["notes"]] == ["Belde terug, afspraak gemaakt."]
    first = data["emails"][0]
    assert first["case"] == reference and first["decisions"] and len(first["replies"]) == 1
    assert first["replies"][0]["to"].lower() == AMINA.lower()
    photo = data["emails"][1]
    assert [a["filename"] for a in photo["attachments"]] == ["pasfoto amina.png"]
    assert [w["email"] for w in data["withheld"]] == [ids["yusuf_in_amina_case"]]
    assert {(v["who"], v["email"]) for v in data["views"]} >= {("sam", ids["amina_photo"])}
    assert data["missing_files"] == []

    # Every file the JSON names is there, byte for byte what was stored.
    with built.app.sessions() as session:
        stored = {m.id: m for m in session.scalars(select(Message))}
        reply = session.scalars(select(Reply).where(Reply.message_id == ids["amina_first"])).one()
        assert (target / first["replies"][0]["file"]).read_bytes() == reply.data
    for e in data["emails"]:
        assert (target / e["file"]).read_bytes() == built.app.blobs.get(stored[e["id"]].sha256)
        for a in e["attachments"]:
            assert (target / a["file"]).read_bytes() == built.app.blobs.get(a["sha256"])
    eml = message_from_bytes((target / first["file"]).read_bytes())
    assert eml["From"].lower() == AMINA.lower()

    # Nothing of Yusuf anywhere: not his address, number, subjects, case, note or the email held back.
    everything = b"".join(p.read_bytes() for p in target.rglob("*") if p.is_file())
    for other in (YUSUF, YUSUF_NRN, "Yusuf", "buurman", yusuf_reference, "Notitie over Yusuf"):
        assert other.encode() not in everything, other
    assert all(
        e["email"] in (None, ids["amina_first"], ids["amina_photo"], ids["amina_letter"])
        for e in data["events"]
    )

    page = (target / "index.html").read_text()
    assert (
        "Uw e-mails" in page
        and "Vernieuwing verblijfskaart" in page
        and "Foto voor mijn verblijfskaart" in page
    )
    assert reference in page and "pasfoto amina.png" in page and "sam" in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # escaped, shown

    # The export is in the log: by whom, and whose data by digest only.
    key = secret_key(settings.secret_key, settings.secret_key_file)
    with built.app.sessions() as session:
        entry = session.scalars(select(Event).where(Event.kind == "exported")).one()
    assert entry.actor.startswith("cli:") and entry.detail["what"] == "subject"
    assert entry.detail["subject"] == Subject.parse([AMINA, AMINA_NRN]).digests(key)
    assert sorted(entry.detail["emails"]) == sorted(
        [ids["amina_first"], ids["amina_photo"], ids["amina_letter"]]
    )
    assert AMINA.lower() not in json.dumps(entry.detail).lower() and AMINA_NRN not in json.dumps(entry.detail)
    assert verify_chain(built.app.sessions).ok

    # A second export sees the first one among what happened to her data; a zip holds the same files.
    zipped = tmp_path / "again.zip"
    result = CliRunner().invoke(subject_group, ["export", AMINA.upper(), "-o", str(zipped)], obj=settings)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(zipped) as archive:
        names = set(archive.namelist())
        again = json.loads(archive.read("data.json"))
        assert {"index.html", "data.json", first["file"], photo["attachments"][0]["file"]} <= names
    assert any(v["kind"] == "exported" for v in again["views"])
    assert again["subject"]["national_numbers"] == []


def test_export_refuses_a_target_that_exists_and_a_wrong_identifier(world, tmp_path):
    built, _, _ = world
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("kept")
    result = CliRunner().invoke(
        subject_group, ["export", AMINA, "-o", str(tmp_path / "full")], obj=built.settings
    )
    assert result.exit_code != 0 and "not an empty directory" in result.output
    result = CliRunner().invoke(
        subject_group, ["export", "Amina", "-o", str(tmp_path / "n")], obj=built.settings
    )
    assert result.exit_code == 2 and not (tmp_path / "n").exists()
    with built.app.sessions() as session:
        assert session.scalars(select(Event).where(Event.kind == "exported")).all() == []


def filed_copies(built) -> set[bytes]:
    """The emails in the mailbox's folders other than the watched inbox (Maildir++: ``.Folder``)."""
    root = built.settings.maildir_path
    return {
        p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0].startswith(".") and p.parent.name in ("cur", "new")
    }


def snapshot(built) -> dict[int, tuple[object, ...]]:
    with built.app.sessions() as session:
        return {
            m.id: (m.erased_at, m.from_address, m.folder, built.app.blobs.exists(m.sha256))
            for m in session.scalars(select(Message))
        }


def test_erasure_removes_one_resident_keeps_the_other_and_is_refused_under_a_hold(world):
    built, reference, yusuf_reference = world
    app, ids, settings, clock = built.app, built.ids, built.settings, built.clock
    with app.sessions() as session:  # the bytes as stored (the test emails carry the time they were made)
        raws = {label: app.blobs.get(session.get_one(Message, pk).sha256) for label, pk in ids.items()}
    amina = [ids["amina_first"], ids["amina_photo"], ids["amina_letter"]]

    def erase(*extra: str, input: str | None = None):
        arguments = ["erase", AMINA, AMINA_NRN, "--reason", "art. 17 request 2026-041", "--by", "ada", *extra]
        return CliRunner().invoke(subject_group, arguments, obj=settings, input=input)

    # Two of her emails still wait in triage: a person decides them first.
    before = snapshot(built)
    result = erase("--yes")
    assert result.exit_code == 1 and "waiting for a decision (in triage)" in result.output, result.output
    assert str(ids["amina_photo"]) in result.output and snapshot(built) == before
    for label in ("amina_photo", "amina_letter"):
        leases.take(app.sessions, ids[label], "sara", now=clock(), lease=timedelta(minutes=5))
        decide_item(app, ids[label], "sara", [Part("return_report", Action.IGNORE)])

    # A legal hold on her case: refused, naming the case, and nothing changes.
    with app.sessions.begin() as session:
        assert set_legal_hold(session, reference, actor="ada", reason="appeal at the CALL", now=clock())
    before = snapshot(built)
    result = erase("--yes")
    assert result.exit_code == 1 and f"a legal hold applies to case: {reference}" in result.output
    assert "found: 3 emails, 1 cases" in result.output and snapshot(built) == before
    with app.sessions.begin() as session:
        assert lift_legal_hold(session, reference, actor="ada", reason="appeal decided", now=clock())

    # Asked to confirm, answered no: nothing changes.
    result = erase(input="n\n")
    assert result.exit_code == 1 and "Erase them?" in result.output and snapshot(built) == before
    assert raws["amina_first"] in filed_copies(built)

    result = erase("--yes")
    assert result.exit_code == 0, result.output
    assert f"found: 3 emails, 1 cases ({reference})" in result.output
    assert "kept: 1 emails of other senders" in result.output
    assert (
        "erased: 3 emails, 1 cases" in result.output and "deleted from the mailbox folders" in result.output
    )

    after = snapshot(built)
    with app.sessions() as session:
        for pk in amina:  # tombstones: no sender, no original, no copy in a folder, no reply
            row = session.get_one(Message, pk)
            assert row.erased_rule == "request" and row.from_address is None and row.subject is None
            assert row.folder is None and not app.blobs.exists(row.sha256)
            assert session.scalars(select(Reply).where(Reply.message_id == pk)).all() == []
        case = session.scalars(select(Case).where(Case.reference == reference)).one()
        assert case.erased_at is not None and case.resident_address == ""
        assert session.scalars(select(CaseNote).where(CaseNote.case_id == case.id)).all() == []
        # Yusuf's email in her case, his own email, case and note: untouched.
        for pk in (ids["yusuf_in_amina_case"], ids["yusuf"]):
            assert after[pk] == before[pk] and after[pk][0] is None and after[pk][3]
        yusuf_case = session.scalars(select(Case).where(Case.reference == yusuf_reference)).one()
        assert yusuf_case.erased_at is None and yusuf_case.resident_address == YUSUF
        assert [
            n.text for n in session.scalars(select(CaseNote).where(CaseNote.case_id == yusuf_case.id))
        ] == ["Notitie over Yusuf."]
        entry = session.scalars(select(Event).where(Event.kind == "subject_erased")).one()
    key = secret_key(settings.secret_key, settings.secret_key_file)
    assert entry.actor == "ada" and entry.detail["subject"] == Subject.parse([AMINA, AMINA_NRN]).digests(key)
    assert sorted(entry.detail["emails"]) == sorted(amina) and entry.detail["cases"] == [reference]
    assert entry.detail["kept"] == [ids["yusuf_in_amina_case"]]
    assert AMINA.lower() not in json.dumps(entry.detail).lower() and AMINA_NRN not in json.dumps(entry.detail)
    copies = filed_copies(built)
    assert not {raws[label] for label in ("amina_first", "amina_photo", "amina_letter")} & copies
    assert raws["yusuf"] in copies
    verified = CliRunner().invoke(audit_group, ["verify"], obj=settings)
    assert verified.exit_code == 0 and "event log intact" in verified.output

    # Asked again: nothing left of her to erase.
    result = erase("--yes")
    assert (
        result.exit_code == 0
        and "found: 0 emails, 0 cases" in result.output
        and "nothing to erase" in result.output
    )
