"""Retraining for real: corpora and staff labels, installation, history, the nightly guard."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from mailflow.bootstrap import App, build_analyser
from mailflow.classification.learning.artefact import HISTORY_DIR, load_model, save_model
from mailflow.classification.learning.features import model_input
from mailflow.classification.learning.training import Example, train
from mailflow.domain import Screening
from mailflow.errors import Interrupted
from mailflow.evaluation.nightly import claim_night, nightly_retrain
from mailflow.evaluation.promotion import at_least_as_good
from mailflow.evaluation.retrain import Retrained, record_result, retrain
from mailflow.runner import Worker
from mailflow.settings import Settings
from mailflow.storage.database import make_engine, make_session_factory, migrate
from mailflow.storage.desk_models import LabelledExample
from mailflow.storage.models import Event, Message

NOW = datetime(2026, 3, 3, 2, 30, tzinfo=UTC)
TEXTS = {
    "card_lost": [
        "I lost my residence card on the train",
        "my card was stolen yesterday, I went to the police",
        "ik ben mijn verblijfskaart verloren",
        "mijn kaart is gestolen, aangifte gedaan bij de politie",
        "j'ai perdu ma carte de séjour",
        "on m'a volé ma carte, déclaration à la police faite",
    ],
    "departure_permanent": [
        "I am leaving Belgium for good next month, please remove me from the register",
        "we move back to our country permanently in June",
        "ik verhuis definitief naar het buitenland",
        "ik vertrek voorgoed uit België en wil me uitschrijven",
        "je quitte la Belgique définitivement",
        "départ définitif vers le Canada en juin, radiation svp",
    ],
    "info_students": [
        "which documents does a student need to register",
        "I will study at Ghent University, how do I enrol as a student",
        "ik kom studeren aan de universiteit, hoe schrijf ik me in als student",
        "welke papieren heeft een student nodig",
        "je suis étudiant à l'université, comment m'inscrire",
        "quels documents pour un étudiant étranger",
    ],
}
STAFF = [
    ("card_lost", "my residence card fell out of my bag and is gone"),
    ("card_lost", "kaart kwijtgeraakt tijdens de verhuis"),
    ("card_lost", "carte de séjour perdue au marché"),
]


def email(text: str, number: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"resident{number}@example.org"
    message["To"] = "migratie@stad.gent"
    message["Subject"] = "Vraag"
    message["Message-ID"] = f"<m{number}@example.org>"
    message.set_content(f"Beste,\n\n{text}\n\nMet vriendelijke groeten,\nA. Resident\n")
    return bytes(message)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("corpus")
    lines = []
    number = 0
    for category, texts in TEXTS.items():
        for text in texts:
            number += 1
            (directory / f"{number:03d}.eml").write_bytes(email(text, number))
            lines.append(json.dumps({"file": f"{number:03d}.eml", "category": category, "action": "triage"}))
    (directory / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return directory


@pytest.fixture(scope="module")
def analyser():
    return build_analyser(Settings(use_model=False))


@pytest.fixture
def app(tmp_path, corpus):
    settings = Settings(data_dir=tmp_path / "data", model_dir=tmp_path / "model", training_corpora=[corpus])
    app = App(settings, clock=lambda: NOW)
    yield app
    app.close()


def add_staff_labels(app: App) -> None:
    with app.sessions.begin() as session:
        for uid, (category, text) in enumerate(STAFF, 1):
            sha = app.blobs.put(email(text, 100 + uid))
            message = Message(
                mailbox="maildir:INBOX", uidvalidity=1, uid=uid, sha256=sha, size=1, received_at=NOW,
                status="processed",
            )  # fmt: skip
            session.add(message)
            session.flush()
            session.add(
                LabelledExample(
                    message_id=message.id, sha256=sha, category=category, action="book", intents=[],
                    language="en", labelled_by="sam", labelled_at=NOW, machine_category="unclear",
                    machine_action="triage",
                )
            )  # fmt: skip


def test_retraining_for_real_installs_only_what_wins_and_learns_from_staff(app, analyser, corpus):
    model_dir = app.settings.effective_model_dir
    first = retrain(analyser, model_dir, directories=[corpus], now=NOW)
    # Nothing installed: the candidate is measured against the rules alone, on the same held-out emails.
    assert first.verdict.current.mode == "rules only"
    assert first.verdict.held_out == 3
    assert first.verdict.promote is at_least_as_good(first.verdict.candidate, first.verdict.current)[0]
    assert (first.installed is not None) is first.verdict.promote

    forced = retrain(analyser, model_dir, directories=[corpus], force=True, now=NOW)
    installed = load_model(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert forced.installed == model_dir and installed.card.version == forced.verdict.model.card.version
    assert len(manifest["trained_on"]) == 18
    assert manifest["evaluation"]["promotion"]["candidate"]["harmful_rate"]["total"] == 3
    assert "previous" in manifest["evaluation"]["promotion"]

    again = retrain(analyser, model_dir, directories=[corpus], now=NOW)
    assert again.installed is None and "already learnt" in again.verdict.reason
    assert load_model(model_dir).card.version == installed.card.version

    add_staff_labels(app)
    later = NOW + timedelta(days=1)
    staff = retrain(
        analyser, model_dir, directories=[corpus], sessions=app.sessions, blobs=app.blobs,
        force=True, now=later,
    )  # fmt: skip
    assert staff.staff == 3 and staff.emails == 21
    newest = load_model(model_dir)
    assert newest.card.examples["card_lost"] == 9
    assert (model_dir / HISTORY_DIR / f"{installed.card.version}.json").is_file()
    record_result(app.sessions, staff, actor="test", now=later)
    with app.sessions() as session:
        event = session.scalars(select(Event).where(Event.kind == "model_promoted")).one()
    assert event.detail["installed_version"] == newest.card.version


def test_only_one_of_two_workers_claims_the_night(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engines = [make_engine(url), make_engine(url)]
    migrate(engines[0])
    workers = [make_session_factory(engine) for engine in engines]
    start = threading.Barrier(2)
    won: list[str] = []

    def claim(index: int) -> None:
        start.wait()
        if claim_night(workers[index], worker_id=f"w{index}", now=NOW):
            won.append(f"w{index}")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert not claim_night(workers[0], worker_id="w0", now=NOW + timedelta(minutes=5))
    assert claim_night(workers[1], worker_id="w1", now=NOW + timedelta(days=1))
    for engine in engines:
        engine.dispose()


def fake_result(installed: Path | None) -> Retrained:
    verdict = SimpleNamespace(
        model=SimpleNamespace(card=SimpleNamespace(version="v9")) if installed else None
    )
    return Retrained(verdict, installed, {"promoted": bool(installed)}, 18, 0)  # type: ignore[arg-type]


def test_nightly_job_runs_once_across_workers_and_swaps_the_model(app, tmp_path):
    calls: list[dict] = []
    swapped: list[str] = []

    def fake_retrain(analyser, model_dir, **kwargs):
        calls.append(kwargs)
        return fake_result(model_dir)

    second = SimpleNamespace(
        settings=app.settings, sessions=app.sessions, worker_id="other",
        clock=lambda: NOW + timedelta(minutes=1), analyser=None, blobs=app.blobs,
        refresh_model=lambda: swapped.append("other"),
    )  # fmt: skip
    app.refresh_model = lambda: swapped.append("app")  # type: ignore[method-assign]
    monkey_analyser = build_analyser(app.settings.model_copy(update={"use_model": False}))
    app.__dict__["analyser"] = monkey_analyser
    assert nightly_retrain(app, retrain=fake_retrain) is not None
    assert nightly_retrain(second, retrain=fake_retrain) is None  # type: ignore[arg-type]
    assert len(calls) == 1 and swapped == ["app"]
    assert calls[0]["sessions"] is app.sessions and calls[0]["directories"] == app.settings.training_corpora
    with app.sessions() as session:
        kinds = session.scalars(select(Event.kind).order_by(Event.seq)).all()
    assert kinds == ["retrain_started", "model_promoted"]


def test_nightly_failure_is_logged_not_raised(app, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    app.__dict__["analyser"] = build_analyser(app.settings.model_copy(update={"use_model": False}))
    with caplog.at_level(logging.ERROR):
        assert nightly_retrain(app, retrain=broken) is None
    assert "nightly retraining failed" in caplog.text
    worker = Worker(
        open_mailbox=lambda: None, make_ingestor=lambda *_: None, outbox=None,  # type: ignore[arg-type]
        poll_interval=60, outbox_interval=5, nightly=broken,
    )  # fmt: skip
    worker._scheduled_nightly()  # must not raise: the worker goes on


class StopAfter:
    """ "Is the worker stopping?" — no until the n-th time it is asked (None: never); notes who asks."""

    def __init__(self, n: int | None = None) -> None:
        self.n, self.asked, self.where = n, 0, []

    def __call__(self) -> bool:
        self.asked += 1
        self.where.append(sys._getframe(2).f_code.co_name)  # the step asking, through give_up_if
        return self.n is not None and self.asked >= self.n


def test_retraining_gives_up_at_any_step_once_stopping_and_installs_nothing(app, analyser, corpus):
    model_dir = app.settings.effective_model_dir
    add_staff_labels(app)
    whole = StopAfter()
    kwargs = {"directories": [corpus], "sessions": app.sessions, "blobs": app.blobs, "force": True}
    assert retrain(analyser, model_dir.with_name("whole"), stopping=whole, **kwargs).installed
    first_ask = {where: n for n, where in reversed(list(enumerate(whole.where, 1)))}
    # Asked before each email (the corpus's, then the staff's), each model fitted, each threshold fold,
    # and last just before installing.
    assert set(first_ask) == {"observe_all", "retrain", "fit", "held_out_points"}, whole.where
    assert whole.where[-1] == "retrain" and whole.where.count("held_out_points") >= 8
    middle_fold = first_ask["held_out_points"] + 2
    for n in sorted({*first_ask.values(), middle_fold, whole.asked}):
        with pytest.raises(Interrupted):
            retrain(analyser, model_dir, stopping=StopAfter(n), **kwargs)
        assert not model_dir.exists(), whole.where[n - 1]


def test_nightly_retraining_given_up_is_recorded_and_keeps_the_model(app, caplog):
    app.__dict__["analyser"] = build_analyser(app.settings.model_copy(update={"use_model": False}))
    with caplog.at_level(logging.INFO):
        assert nightly_retrain(app, stopping=StopAfter(3)) is None
    assert "nightly retraining given up" in caplog.text and "retraining failed" not in caplog.text
    assert not app.settings.effective_model_dir.exists()
    with app.sessions() as session:
        kinds = session.scalars(select(Event.kind).order_by(Event.seq)).all()
    assert kinds == ["retrain_started", "retrain_interrupted"]


def test_the_worker_tells_its_nightly_job_when_it_is_stopping():
    seen: list[bool] = []

    def nightly(stopping) -> None:
        seen.append(stopping())
        worker.stop()  # SIGTERM arrives while the job runs
        seen.append(stopping())

    worker = Worker(
        open_mailbox=lambda: None, make_ingestor=lambda *_: None, outbox=None,  # type: ignore[arg-type]
        poll_interval=60, outbox_interval=5, nightly=nightly,
    )  # fmt: skip
    worker._scheduled_nightly()
    assert seen == [False, True]


def tiny_model(words: str):
    person = Screening(machine_category=None, sender_verdict="pass")
    examples = [
        Example(model_input("", f"{words} {category} {i}", (), person, in_reply_to_ours=False), category)
        for category in ("card_lost", "spam")
        for i in range(4)
    ]
    return train(examples)


def test_running_app_picks_up_a_newly_installed_model(app):
    model_dir = app.settings.effective_model_dir
    save_model(tiny_model("first"), model_dir)
    assert app.analyser.model is not None
    first = app.analyser.model.card.version
    assert not app.refresh_model()
    newer = tiny_model("second")
    save_model(newer, model_dir)
    assert app.refresh_model()
    assert app.analyser.model.card.version == newer.card.version != first
    assert not app.refresh_model()
