"""The classification benchmark: its figures, the corpus reader, attachment formats, cross-validation."""

from __future__ import annotations

import io
import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailflow.evaluation import metrics
from mailflow.evaluation.corpus import CorpusError, read_labelled
from mailflow.evaluation.metrics import Outcome, Ratio
from mailflow.evaluation.report import as_dict, render


def outcome(expected: str, got: str, *, name: str = "x.eml", **extra) -> Outcome:
    """``expected`` and ``got`` as "category/action"."""
    expected_category, expected_action = expected.split("/")
    category, action = got.split("/")
    return Outcome(name, expected_category, expected_action, category, action, **extra)


HARMFUL = [
    ("card_lost/book", "card_renewal/book"),  # wrong booking link
    ("return_report/file", "return_report/request_documents"),  # right category, wrong action
    ("card_lost/book", "spam/ignore"),  # a resident's email ignored
    ("switch_c_d/triage", "switch_c_d/file"),  # needed a person (e.g. DMARC failed), was filed
    ("status_followup/triage", "card_pickup/book"),
]
HARMLESS = [
    ("card_lost/book", "card_lost/book"),
    ("bounce/ignore", "auto_reply/ignore"),  # machine mail ignored under another machine category
    ("spam/ignore", "spam/ignore"),
    ("card_lost/book", "card_renewal/triage"),  # wrong, but a person sees it
    ("card_lost/triage", "card_lost/triage"),
]


@pytest.mark.parametrize(("expected", "got"), HARMFUL)
def test_harmful(expected, got):
    assert outcome(expected, got).harmful


@pytest.mark.parametrize(("expected", "got"), HARMLESS)
def test_not_harmful(expected, got):
    assert not outcome(expected, got).harmful


def test_harmful_rate_counts_over_all_emails():
    outcomes = [outcome(e, g) for e, g in HARMFUL + HARMLESS]
    assert metrics.harmful_rate(outcomes) == Ratio(5, 10)
    assert metrics.harmful_rate([]).value is None


def test_automation_rate():
    outcomes = [
        outcome("card_lost/book", "card_lost/book"),  # automated correctly
        outcome("bounce/ignore", "auto_reply/ignore"),  # machine mail: the action is what counts
        outcome("return_report/request_documents", "return_report/request_documents"),
        outcome("card_lost/book", "card_lost/triage"),  # right guess, but not automated
        outcome("card_lost/book", "card_renewal/book"),  # automated wrongly
        outcome("card_lost/book", "spam/ignore"),
        outcome("status_followup/triage", "status_followup/triage"),  # expected triage: not counted
        outcome("switch_c_d/triage", "switch_c_d/file"),  # expected triage: not counted either
    ]
    assert metrics.automation_rate(outcomes) == Ratio(3, 6)


def test_category_figures_and_compact_confusion():
    outcomes = [
        outcome("card_lost/book", "card_lost/book"),
        outcome("card_lost/book", "card_renewal/book"),
        outcome("card_lost/book", "card_renewal/triage"),
        outcome("card_renewal/book", "card_renewal/book"),
        outcome("spam/ignore", "unclear/triage"),
    ]
    figures = metrics.category_figures(outcomes)
    assert (figures["card_lost"].precision, figures["card_lost"].recall) == (1.0, pytest.approx(1 / 3))
    assert (figures["card_renewal"].precision, figures["card_renewal"].recall) == (pytest.approx(1 / 3), 1.0)
    assert figures["unclear"].recall is None and figures["unclear"].precision == 0.0
    assert figures["spam"].precision is None
    assert metrics.confusion(outcomes) == [("card_lost", "card_renewal", 2), ("spam", "unclear", 1)]


def test_language_accuracy_per_language_and_overall():
    outcomes = [
        outcome("a/b", "a/b", expected_language="nl", language="nl"),
        outcome("a/b", "a/b", expected_language="nl", language="en"),
        outcome("a/b", "a/b", expected_language="fr", language="fr"),
        outcome("a/b", "a/b", expected_language="tr", language="nl"),
        outcome("a/b", "a/b"),  # unlabelled: not counted
    ]
    languages = metrics.language_accuracy(outcomes)
    assert languages["nl"] == Ratio(1, 2)
    assert languages["fr"] == Ratio(1, 1)
    assert languages["en"] == Ratio(0, 0)
    assert languages["nl+fr+en"] == Ratio(2, 3)
    assert languages["all"] == Ratio(2, 4)


def test_document_accuracy_by_attachment_format():
    outcomes = [
        outcome(
            "a/b", "a/b", documents=(("passport", "passport", "image"), ("payslip", "other", "text_pdf"))
        ),
        outcome("a/b", "a/b", documents=(("annex35", "annex35", "text_pdf"),)),
    ]
    assert metrics.document_accuracy(outcomes) == {"image": Ratio(1, 1), "text_pdf": Ratio(1, 2)}


def test_intents_and_speed():
    several = ("card_renewal", "child_card")
    outcomes = [
        outcome("a/b", "a/b", expected_intents=several, intents=tuple(reversed(several)), milliseconds=10),
        outcome("a/b", "a/b", expected_intents=several, intents=(), milliseconds=30, attachments=1),
        outcome("a/b", "a/b", milliseconds=20),
    ]
    assert metrics.intent_accuracy(outcomes) == Ratio(1, 2)
    speed = metrics.speed(outcomes)
    assert speed["mean_ms_without_attachments"] == 15
    assert speed["mean_ms_with_attachments"] == 30
    assert speed["emails_per_second"] == pytest.approx(50.0)


def test_split_misses_are_counted_by_how_they_went_wrong():
    two, family = ("card_renewal", "child_card"), ("orange_card",) * 3
    outcomes = [
        outcome("a/b", "a/b", expected_intents=two, intents=two),  # right: not a miss
        outcome("a/b", "a/b", expected_intents=two, intents=()),
        outcome("a/b", "a/b", expected_intents=family, intents=family[:2]),
        outcome("a/b", "a/b", expected_intents=two, intents=("card_renewal", "card_lost")),
        outcome("a/b", "a/b", intents=two),
        outcome("a/b", "a/b"),
    ]
    misses = metrics.intent_misses(outcomes)
    assert misses == {"read_as_one": 1, "persons_miscounted": 1, "requests_differ": 1, "split_needlessly": 1}
    report = as_dict(metrics.figures(outcomes), outcomes, corpus="c", mode="m")
    assert "read as one 1, persons miscounted 1, other requests 1, one request split 1" in render(report)


def test_report_lists_harmful_emails_and_marks_targets():
    outcomes = [outcome(e, g, name=f"e{i}.eml") for i, (e, g) in enumerate(HARMFUL + HARMLESS)]
    report = as_dict(metrics.figures(outcomes), outcomes, corpus="c", mode="rules only")
    assert report["harmful_rate"] == {"value": 0.5, "hits": 5, "total": 10}
    assert [h["file"] for h in report["harmful"]] == [f"e{i}.eml" for i in range(5)]
    json.dumps(report)
    text = render(report)
    assert "harmful rate" in text and "MISS" in text
    assert "card_lost → card_renewal: 2" in text


def test_report_prints_the_risk_coverage_table_and_the_operating_point():
    from dataclasses import replace

    from mailflow.evaluation.risk import Point

    base = [outcome(e, g, name=f"e{i}.eml") for i, (e, g) in enumerate(HARMFUL + HARMLESS)]
    outcomes = [
        replace(o, unthresholded=Point("act", 0.5 + i / 20, o.harmful, o.correct_automation, True))
        for i, o in enumerate(base)
    ]
    thresholds = {"act": 0.9, "redirect_info": 0.8, "several": 0.5}
    report = as_dict(metrics.figures(outcomes), outcomes, corpus="c", mode="m", thresholds=thresholds)
    report["operating_point"] = thresholds
    rows = {row["threshold"]: row for row in report["risk_coverage"]}
    assert rows["0.30"]["automated"] == 10 and rows["0.30"]["harmful"] == 5
    assert rows["0.90"]["automated"] == 2  # confidences 0.9 and 0.95
    assert rows["chosen"]["harmful"] == report["harmful_rate"]["hits"]
    text = render(report)
    assert "risk–coverage" in text
    assert "operating point: act ≥ 0.90, redirect_info ≥ 0.80, several requests from p ≥ 0.50" in text


# The corpus reader


def write_corpus(directory: Path, labels: list[dict], files: list[str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in files if files is not None else [entry["file"] for entry in labels]:
        (directory / name).write_bytes(b"Subject: x\r\n\r\nx\r\n")
    (directory / "labels.jsonl").write_text("\n".join(json.dumps(entry) for entry in labels) + "\n")
    return directory


def test_read_labelled(tmp_path: Path):
    labels = [
        {"id": "a", "file": "a.eml", "category": "card_lost", "action": "book", "language": "fr"},
        {
            "id": "b",
            "category": "card_renewal",
            "action": "triage",
            "intents": ["card_renewal", "child_card"],
        },
    ]
    directory = write_corpus(tmp_path, labels, ["a.eml", "b.eml"])
    first, second = read_labelled(directory)
    assert (first.name, first.category, first.action, first.language) == ("a.eml", "card_lost", "book", "fr")
    assert second.path == directory / "b.eml" and second.intents == ("card_renewal", "child_card")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"file": "a.eml", "category": "nonsense", "action": "book"}, "unknown category"),
        ({"file": "a.eml", "category": "card_lost", "action": "reply"}, "unknown action"),
        ({"file": "missing.eml", "category": "card_lost", "action": "book"}, "does not exist"),
        ({"file": "../a.eml", "category": "card_lost", "action": "book"}, "must name a file"),
        ({"file": "a.eml", "category": "card_lost", "action": "book", "documents": "passport"}, "list"),
        (
            {
                "file": "a.eml",
                "category": "card_lost",
                "action": "triage",
                "intents": ["card_lost", "cardlost"],
            },
            "unknown category 'cardlost' in intents",
        ),
    ],
)
def test_read_labelled_names_the_faulty_line(tmp_path: Path, entry, message):
    directory = write_corpus(tmp_path, [entry], ["a.eml"])
    with pytest.raises(CorpusError, match=message) as error:
        read_labelled(directory)
    assert "labels.jsonl:1" in str(error.value)


def test_read_labelled_without_labels(tmp_path: Path):
    with pytest.raises(CorpusError, match="cannot read"):
        read_labelled(tmp_path)


# Attachment formats


def _attachment(payload: bytes, sniffed: str):
    from mailflow.domain import Attachment

    return Attachment("f", "s", sniffed, sniffed, len(payload), "0" * 64, payload)


def _pdf(text: str | None) -> bytes:
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF()
    pdf.add_page()
    if text is None:
        image = io.BytesIO()
        Image.new("RGB", (200, 100), "white").save(image, format="PNG")
        pdf.image(image, x=10, y=10, w=100)
    else:
        pdf.set_font("helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def test_attachment_format():
    from mailflow.evaluation.run import attachment_format

    assert attachment_format(_attachment(_pdf("ANNEX 35 special residence document"), "application/pdf")) == (
        "text_pdf"
    )
    assert attachment_format(_attachment(_pdf(None), "application/pdf")) == "image"
    assert attachment_format(_attachment(b"\xff\xd8\xff\xe0", "image/jpeg")) == "image"
    assert attachment_format(_attachment(b"%PDF-1.4 broken", "application/pdf")) == "image"
    assert attachment_format(_attachment(b"hello", "text/plain")) == "other"


# Cross-validation through the real pipeline


PHRASES = {
    ("card_lost", "book"): ["I lost my residence card", "my card was stolen", "ik ben mijn kaart verloren"],
    ("departure_permanent", "online"): [
        "I leave Belgium for good",
        "ik vertrek definitief",
        "départ définitif",
    ],
    ("info_students", "redirect_info"): [
        "how do I register as a student",
        "student inschrijving",
        "étudiant",
    ],
}


def _spy_on_training(monkeypatch) -> list[set[str]]:
    """The examples of every model trained from now on, one set of sources per training."""
    from mailflow.evaluation import run

    trained_on: list[set[str]] = []
    real_train = run.train

    def spy(examples, **kwargs):
        examples = list(examples)
        trained_on.append({example.source for example in examples})
        return real_train(examples, **kwargs)

    monkeypatch.setattr(run, "train", spy)
    return trained_on


def _observed_corpus(tmp_path: Path):
    from mailflow.bootstrap import build_analyser
    from mailflow.evaluation import run
    from mailflow.settings import load_settings

    labels = []
    for (category, action), phrases in PHRASES.items():
        for round_ in range(2):
            for i, phrase in enumerate(phrases):
                name = f"{category}-{round_}{i}.eml"
                message = EmailMessage()
                message["From"], message["To"], message["Subject"] = (
                    "r@example.org",
                    "migratie@stad.gent",
                    "vraag",
                )
                message.set_content(f"Hello,\n{phrase}, number {round_}.\nThanks")
                (tmp_path / name).write_bytes(bytes(message))
                labels.append({"file": name, "category": category, "action": action})
    write_corpus(tmp_path, labels, [])
    analyser = build_analyser(load_settings(data_dir=tmp_path / "data", use_model=False))
    return run.observe_all(analyser, read_labelled(tmp_path))


def test_cross_validation_never_scores_an_email_with_a_model_trained_on_it(tmp_path: Path, monkeypatch):
    from mailflow.bootstrap import build_analyser
    from mailflow.evaluation import run
    from mailflow.settings import load_settings

    observed = _observed_corpus(tmp_path)
    analyser = build_analyser(load_settings(data_dir=tmp_path / "data", use_model=False))

    trained_on = _spy_on_training(monkeypatch)

    scored_by: dict[str, int] = {}
    real_conclude = run._conclude

    def conclude(fold_analyser, one):
        scored_by[one.email.name] = len(trained_on) - 1
        assert fold_analyser.model is not None
        return real_conclude(fold_analyser, one)

    monkeypatch.setattr(run, "_conclude", conclude)
    monkeypatch.setattr(run, "held_out_points", lambda *args: [])  # no inner folds for thresholds
    result = run.cross_validate(analyser, observed, 3)
    assert len(trained_on) == 3
    assert [o.name for o in result.outcomes] == [o.email.name for o in observed]
    for name, fold in scored_by.items():
        assert name not in trained_on[fold]
    assert all(len(sources) == 12 for sources in trained_on)
    assert all(o.model_category is not None for o in result.outcomes)


def test_thresholds_are_chosen_on_emails_the_fold_model_never_saw(tmp_path: Path, monkeypatch):
    from mailflow.bootstrap import build_analyser
    from mailflow.evaluation import run
    from mailflow.settings import load_settings

    observed = _observed_corpus(tmp_path)
    trained_on = _spy_on_training(monkeypatch)

    scored: list[tuple[str, int]] = []
    real_conclude = run._conclude

    def conclude(fold_analyser, one):
        scored.append((one.email.name, len(trained_on) - 1))
        return real_conclude(fold_analyser, one)

    monkeypatch.setattr(run, "_conclude", conclude)
    analyser = build_analyser(load_settings(data_dir=tmp_path / "data", use_model=False))
    points = run.held_out_points(analyser, observed, 3)
    assert len(points) == len(observed) and len(trained_on) == 3
    assert all(name not in trained_on[fold] for name, fold in scored)
    assert {name for name, _ in scored} == {o.email.name for o in observed}


def test_observing_in_several_processes_gives_the_same_observations_in_order(tmp_path: Path, monkeypatch):
    from fpdf import FPDF

    from mailflow.bootstrap import build_analyser
    from mailflow.evaluation import run
    from mailflow.settings import load_settings

    labels = []
    for number in range(6):
        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("helvetica", size=14)
        # Alternating kinds: answers of one reader mixed up between processes would show.
        pdf.cell(text=SHOWN[number % 2])
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "r@example.org", "migratie@stad.gent", "bijlage"
        message.set_content(f"Goedendag,\nhier mijn bijlage 35, nummer {number}.\nDank u")
        message.add_attachment(
            bytes(pdf.output()), maintype="application", subtype="pdf", filename=f"{number}.pdf"
        )
        (tmp_path / f"{number}.eml").write_bytes(bytes(message))
        labels.append({"file": f"{number}.eml", "category": "annex35_extension", "action": "file"})
    write_corpus(tmp_path, labels, [])
    analyser = build_analyser(load_settings(data_dir=tmp_path / "data", use_model=False))
    emails = read_labelled(tmp_path)
    one_by_one = run.observe_all(analyser, emails)
    forked_runs = []
    real = run._observe_forked
    monkeypatch.setattr(run, "_observe_forked", lambda *args: forked_runs.append(1) or real(*args))
    forked = run.observe_all(analyser, emails, jobs=2)
    assert forked_runs == [1]
    assert [o.email.name for o in forked] == [o.email.name for o in one_by_one]
    assert [o.seen.extraction for o in forked] == [o.seen.extraction for o in one_by_one]
    assert [o.seen.features for o in forked] == [o.seen.features for o in one_by_one]
    kinds = [tuple(d.kind for d in o.seen.extraction.documents) for o in forked]
    assert kinds == [(KINDS[number % 2],) for number in range(6)]


SHOWN = (
    "BIJLAGE 35 - Attest van immatriculatie - beroep bij de Raad voor Vreemdelingenbetwistingen",
    "Loonfiche januari",
)
KINDS = ("annex35", "other")
