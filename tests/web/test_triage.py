"""Deciding triage items: accept, choose, split, spam, hand-written replies, and leases."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from mailflow.storage.desk_models import LabelledExample
from mailflow.storage.labels import iter_labelled_examples
from mailflow.storage.models import Case, DecisionRecord, Event, Message, Reply
from mailflow.web import create_app
from tests.web.conftest import build_world, csrf_token, desk_settings, login, standard_mails


def decide(client, message_id: int, **form: str | list[str]):
    page = client.get(f"/triage/{message_id}")
    assert page.status_code == 200
    return client.post(f"/triage/{message_id}/decide", data={"csrf_token": csrf_token(page.text), **form})


def outcome(world, message_id: int):
    with world.app.sessions() as session:
        row = session.get_one(Message, message_id)
        decisions = session.scalars(
            select(DecisionRecord).where(DecisionRecord.message_id == message_id)
        ).all()
        replies = session.scalars(
            select(Reply).where(Reply.message_id == message_id).order_by(Reply.id)
        ).all()
        events = session.scalars(
            select(Event).where(Event.message_id == message_id).order_by(Event.seq)
        ).all()
        return row, decisions, replies, events


def test_queue_lists_waiting_emails_oldest_first_with_why(as_user, world):
    page = as_user("sam").get("/triage").text
    positions = [page.find(f'/triage/{world.ids[label]}"') for label in ("renewal", "second", "hostile")]
    assert all(p > 0 for p in positions) and positions == sorted(positions)
    assert f'/triage/{world.ids["question"]}"' not in page  # handled automatically
    assert "sender not verified" in page
    unverified = as_user("sam").get("/triage?reason=unverified").text
    assert f'/triage/{world.ids["renewal"]}"' in unverified
    others = as_user("sam").get("/triage?reason=person").text
    assert f'/triage/{world.ids["renewal"]}"' not in others


def test_an_unverified_sender_is_accepted_only_when_the_person_says_they_checked_it(as_user, world):
    message_id = world.ids["renewal"]  # its sender failed DMARC
    client = as_user("sam")
    page = client.get(f"/triage/{message_id}").text
    assert 'id="unverified"' in page and 'id="sender-checked"' in page and "required" in page
    decide(client, message_id, outcome="accept")
    row, _, replies, _ = outcome(world, message_id)
    assert row.status == "triage" and not replies


def test_accepting_the_suggestion_acts_records_the_person_and_sends(as_user, world):
    message_id = world.ids["renewal"]
    response = decide(as_user("sam"), message_id, outcome="accept", sender_checked="y")
    assert response.status_code == 302
    row, decisions, replies, events = outcome(world, message_id)
    assert row.status == "processed"
    assert decisions[-1].decided_by == "sam" and decisions[-1].category == "card_renewal"
    assert decisions[-1].action == "book"
    assert len(replies) == 1 and replies[0].to_address == "amina.el@example.org"
    assert replies[0].status == "sent"  # the directory transport took it right after the commit
    assert any(e.kind == "staff_decided" and e.actor == "sam" for e in events)
    labels = list(iter_labelled_examples(world.app.sessions))
    assert [(label.message_id, label.category, label.action, label.labelled_by) for label in labels] == [
        (message_id, "card_renewal", "book", "sam")
    ]
    assert labels[0].machine_action == "triage"
    # Redirected to the next item waiting.
    assert response.headers["Location"].endswith(f"/triage/{world.ids['second']}")


def test_choosing_another_category_and_action(as_user, world):
    message_id = world.ids["second"]
    decide(as_user("sam"), message_id, outcome="choose", category="card_lost", action="auto")
    _, decisions, replies, _ = outcome(world, message_id)
    assert (decisions[-1].category, decisions[-1].action) == ("card_lost", "book")
    assert len(replies) == 1


def test_preview_follows_the_chosen_category(as_user, world):
    client = as_user("sam")
    message_id = world.ids["renewal"]
    renewal = client.get(f"/triage/{message_id}/preview?category=card_renewal").json
    departure = client.get(f"/triage/{message_id}/preview?category=departure_permanent").json
    assert renewal["action"] == "book" and departure["action"] == "online"
    assert renewal["text"] != departure["text"] and "Subject:" in renewal["text"]
    spam = client.get(f"/triage/{message_id}/preview?category=spam").json
    assert spam["action"] == "ignore" and "no reply" in spam["text"]


def test_split_gives_each_request_its_own_reply(as_user, world):
    message_id = world.ids["renewal"]
    decide(
        as_user("sam"),
        message_id,
        outcome="split",
        part_category=["card_renewal", "info_family_reunification", ""],
        part_action=["auto", "redirect_info", "auto"],
    )
    row, decisions, replies, _ = outcome(world, message_id)
    assert row.status == "processed"
    assert [(d.category, d.action) for d in decisions if d.decided_by == "sam"] == [
        ("card_renewal", "book"),
        ("info_family_reunification", "redirect_info"),
    ]
    assert len(replies) == 2 and len({r.rfc_message_id for r in replies}) == 2
    with world.app.sessions() as session:
        label = session.scalars(select(LabelledExample)).one()
        assert label.intents == ["card_renewal", "info_family_reunification"]


def test_marking_as_spam_ignores_without_reply(as_user, world):
    message_id = world.ids["hostile"]
    decide(as_user("sam"), message_id, outcome="spam")
    row, decisions, replies, _ = outcome(world, message_id)
    assert row.status == "ignored" and decisions[-1].category == "spam" and not replies


def test_a_hand_written_reply_is_sent_as_written(as_user, world):
    message_id = world.ids["renewal"]
    text = "Beste mevrouw,\n\nU kunt langskomen op dinsdag.\n\nMet vriendelijke groeten,\nSam"
    decide(
        as_user("sam"), message_id, outcome="hand", category="card_renewal", action="book", reply_text=text
    )
    _, _, replies, events = outcome(world, message_id)
    sent = message_from_bytes(replies[0].data, policy=policy.default)
    assert sent.get_content_type() == "text/plain"
    assert sent.get_content().replace("\r\n", "\n").strip() == text.strip()
    assert sent["Auto-Submitted"] is None and sent["In-Reply-To"]
    assert next(e for e in events if e.kind == "staff_decided").detail["hand_reply"] is True


AUTOMATIC_NOTICE = re.compile(r"automatisch antwoord|automatic reply|réponse automatique", re.IGNORECASE)


def test_a_hand_written_reply_follows_the_chosen_request_with_the_real_case_reference(as_user, world):
    message_id = world.ids["renewal"]
    client = as_user("sam")
    assert AUTOMATIC_NOTICE.search(client.get(f"/triage/{message_id}").text)  # the automatic reply's preview

    def draft(category: str, action: str) -> str:
        url = f"/triage/{message_id}/preview"
        return client.get(url, query_string={"draft": "1", "category": category, "action": action}).json[
            "text"
        ]

    renewal, switch = draft("card_renewal", "book"), draft("switch_c_d", "file")
    assert switch != renewal and "MIG-NEW" in switch and not AUTOMATIC_NOTICE.search(switch)
    text = switch.replace("\n\n", "\n\nWe will look at it this week.\n\n", 1)
    decide(client, message_id, outcome="hand", category="switch_c_d", action="file", reply_text=text)
    row, _, replies, _ = outcome(world, message_id)
    with world.app.sessions() as session:
        reference = session.get_one(Case, row.case_id).reference
    sent = message_from_bytes(replies[0].data, policy=policy.default)
    body = sent.get_content().replace("\r\n", "\n")
    assert body.strip() == text.replace("MIG-NEW", reference).strip()
    assert "MIG-NEW" not in body and not AUTOMATIC_NOTICE.search(body) and reference in sent["Subject"]


def test_a_case_placeholder_in_a_reply_that_opens_no_case_is_refused(as_user, world):
    message_id = world.ids["renewal"]
    decide(
        as_user("sam"),
        message_id,
        outcome="hand",
        category="card_renewal",
        action="book",
        reply_text="See MIG-NEW",
    )
    row, _, replies, _ = outcome(world, message_id)
    assert row.status == "triage" and not replies


def test_two_people_never_work_the_same_item(as_user, world):
    message_id = world.ids["renewal"]
    sam, sara = as_user("sam"), as_user("sara")
    assert 'id="decide"' in sam.get(f"/triage/{message_id}").text
    page = sara.get(f"/triage/{message_id}").text
    assert "sam is working on this" in page and 'id="decide"' not in page
    response = sara.post(
        f"/triage/{message_id}/decide", data={"csrf_token": csrf_token(page), "outcome": "spam"}
    )
    assert response.status_code == 302
    assert outcome(world, message_id)[0].status == "triage"
    # Once sam's lease runs out, sara may take the item over.
    world.clock.advance(seconds=world.settings.triage_lease_seconds + 1)
    decide(sara, message_id, outcome="spam")
    assert outcome(world, message_id)[0].status == "ignored"


def test_an_item_decided_already_cannot_be_decided_again(as_user, world):
    message_id = world.ids["renewal"]
    client = as_user("sam")
    page = client.get(f"/triage/{message_id}").text
    token = csrf_token(page)
    client.post(
        f"/triage/{message_id}/decide", data={"csrf_token": token, "outcome": "accept", "sender_checked": "y"}
    )
    client.post(f"/triage/{message_id}/decide", data={"csrf_token": token, "outcome": "spam"})
    row, decisions, replies, _ = outcome(world, message_id)
    assert row.status == "processed" and len(replies) == 1
    assert [d.decided_by for d in decisions] == ["pipeline", "sam"]


def test_a_hand_reply_to_a_suppressed_address_is_refused_whole(as_user, world):
    from mailflow.storage.models import SuppressedAddress

    message_id = world.ids["renewal"]
    with world.app.sessions.begin() as session:
        session.add(
            SuppressedAddress(address="amina.el@example.org", reason="hard bounce", since=world.clock())
        )
    response = decide(
        as_user("sam"), message_id, outcome="hand", category="card_renewal", action="book", reply_text="Beste"
    )
    assert response.headers["Location"].endswith(f"/triage/{message_id}")
    row, decisions, replies, _ = outcome(world, message_id)
    assert row.status == "triage" and not replies and [d.decided_by for d in decisions] == ["pipeline"]


@pytest.fixture
def undo_world(tmp_path):
    built = build_world(desk_settings(tmp_path / "data", desk_undo_seconds=10), standard_mails())
    yield built
    built.app.close()


def test_a_decision_waits_out_its_undo_window_then_is_applied(undo_world):
    world = undo_world
    client = create_app(world.app, TESTING=True).test_client()
    assert login(client, "sam").status_code == 302
    message_id = world.ids["second"]
    decide(client, message_id, outcome="choose", category="card_lost", action="auto")
    row, _, replies, _ = outcome(world, message_id)
    assert row.status == "triage" and not replies  # nothing done yet
    assert 'id="undo-latest"' in client.get("/triage").text
    world.clock.advance(seconds=11)
    client.get("/triage")  # any page applies what is due
    row, decisions, replies, _ = outcome(world, message_id)
    assert row.status == "processed" and decisions[-1].decided_by == "sam" and len(replies) == 1
    assert 'id="undo-latest"' not in client.get("/triage").text


def test_a_decision_no_reply_can_carry_is_refused_before_it_waits(undo_world):
    world = undo_world
    client = create_app(world.app, TESTING=True).test_client()
    assert login(client, "sam").status_code == 302
    message_id = world.ids["second"]
    for category, action in (("switch_eplus_fplus", "request_documents"), ("return_report", "book")):
        response = decide(client, message_id, outcome="choose", category=category, action=action)
        assert response.headers["Location"].endswith(f"/triage/{message_id}")
        page = client.get(f"/triage/{message_id}").text
        assert "Not done:" in page and 'id="undo-latest"' not in page  # said now, nothing waiting
    world.clock.advance(seconds=60)
    client.get("/triage")
    row, decisions, replies, _ = outcome(world, message_id)
    assert row.status == "triage" and not replies and [d.decided_by for d in decisions] == ["pipeline"]


def test_undo_within_the_window_does_nothing_and_marking_spam_is_undoable(undo_world):
    world = undo_world
    client = create_app(world.app, TESTING=True).test_client()
    assert login(client, "sam").status_code == 302
    message_id = world.ids["second"]
    decide(client, message_id, outcome="spam")
    page = client.get("/triage").text
    client.post(f"/triage/{message_id}/undo", data={"csrf_token": csrf_token(page)})
    world.clock.advance(seconds=60)
    client.get("/triage")
    row, decisions, replies, events = outcome(world, message_id)
    assert row.status == "triage" and not replies and [d.decided_by for d in decisions] == ["pipeline"]
    assert any(e.kind == "staff_decision_undone" and e.actor == "sam" for e in events)
    # Too late once applied: the undo says so and changes nothing.
    decide(client, message_id, outcome="spam")
    world.clock.advance(seconds=11)
    late = client.post(
        f"/triage/{message_id}/undo", data={"csrf_token": csrf_token(client.get("/triage").text)}
    )
    assert late.status_code == 302 and outcome(world, message_id)[0].status == "ignored"


def test_a_persons_decision_keeps_each_document_once(tmp_path):
    """The pipeline stored the documents when it put the email in triage; deciding it (here in two
    parts, each acting on the email) must not list them again on the email's and the case's pages."""
    from mailflow.storage.models import AttachmentRecord
    from tests.web import emails

    mail = emails.email(
        sender="amina.el@example.org",
        subject="Vernieuwing verblijfskaart",
        dmarc="fail",
        text="Goedendag, ik wil mijn verblijfskaart vernieuwen. Mijn paspoort zit erbij.",
        attachments=[
            ("paspoort.txt", "text/plain", b"Paspoort van Amina\n"),
            ("foto.txt", "text/plain", b"x\n"),
        ],
    )
    world = build_world(desk_settings(tmp_path / "docs"), {"with_documents": mail})
    try:
        client = create_app(world.app, TESTING=True).test_client()
        login(client, "sam")
        message_id = world.ids["with_documents"]
        decide(
            client,
            message_id,
            outcome="split",
            part_category=["card_renewal", "info_family_reunification", ""],
            part_action=["auto", "redirect_info", "auto"],
        )
        with world.app.sessions() as session:
            assert session.get_one(Message, message_id).status == "processed"
            stored = session.scalars(
                select(AttachmentRecord.filename).where(AttachmentRecord.message_id == message_id)
            ).all()
        assert sorted(stored) == ["foto.txt", "paspoort.txt"]
        assert client.get(f"/archive/{message_id}").text.count("paspoort.txt</b>") == 1
    finally:
        world.app.close()
