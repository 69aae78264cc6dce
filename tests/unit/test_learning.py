"""The learned model: training, calibrated probabilities, the artefact and its refusals."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mailflow.classification.learning import artefact
from mailflow.classification.learning.artefact import (
    ArtefactError,
    load_model,
    load_model_or_none,
    save_model,
)
from mailflow.classification.learning.features import FEATURES_VERSION, ModelInput, ask_text, model_input
from mailflow.classification.learning.training import (
    Example,
    TrainingError,
    feature_matrix,
    fit_calibrated,
    fit_features,
    linear_form,
    train,
)
from mailflow.classification.word_vectors import WordVectors
from mailflow.domain import Classification, Screening
from tests.unit.sklearn_reference import sklearn_matrix, sklearn_predictions

PERSON = Screening(machine_category=None, sender_verdict="pass")

# Small, varied phrasings per category in three languages: enough for a linear model to separate.
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
        "I am leaving Belgium for good next month",
        "we move back to our country permanently",
        "ik verhuis definitief naar het buitenland",
        "ik vertrek voorgoed uit België",
        "je quitte la Belgique définitivement",
        "départ définitif vers le Canada en juin",
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


def examples(texts: dict[str, list[str]] = TEXTS) -> list[Example]:
    return [
        Example(model_input("", text, (), PERSON, in_reply_to_ours=False), category, f"{category}-{i}")
        for category, phrases in texts.items()
        for i, text in enumerate(phrases)
    ]


@pytest.fixture(scope="module")
def model():
    return train(examples(), corpus="synthetic")


def ask(text: str, documents: tuple[str, ...] = ()) -> ModelInput:
    return model_input("", text, documents, PERSON, in_reply_to_ours=False)


def test_model_input_normalises_text_and_lists_facts():
    screening = Screening(machine_category="bounce", sender_verdict="none")
    item = model_input(
        "Bijlage 35", "Mijn K-kaart", ("passport", "passport"), screening, in_reply_to_ours=True
    )
    assert item.text == "annex 35\nmijn k card"
    assert item.facts == ("doc:passport", "machine:bounce", "reply:ours")


def test_what_is_asked_is_the_subject_the_questions_and_the_ends_of_the_text():
    story = (
        "Vraag over mijn kaart\n"
        "Hallo,\n"
        "Ik kwam in 2019 naar Gent met een bijlage 35 en later een oranje kaart.\n"
        "Mijn broer heeft een E+ kaart en woont in Antwerpen. "
        "Hij is vorig jaar verhuisd. "
        "Kan ik nu een F+ kaart krijgen? "
        "Ik werk sinds 2021 bij een bedrijf in Gent. "
        "Ik hoor graag van u welke documenten ik moet meebrengen.\n"
        "Mvg\n"
        "Ahmed"
    )
    asked = ask_text(story)
    assert asked.startswith("vraag over mijn card")  # the subject
    assert "ik kwam in 2019 naar gent" in asked  # the first sentence
    assert "kan ik nu een f+ card krijgen" in asked
    assert "welke documenten ik moet meebrengen" in asked and "sinds 2021" in asked  # the last two
    assert "broer" not in asked and "verhuisd" not in asked  # the story's middle
    assert "hallo" not in asked and "ahmed" not in asked  # greetings and names
    assert ask_text("Subject only\n") == "subject only"


def test_emails_without_an_asking_sentence_still_make_a_model():
    """Two-word emails without a subject have nothing the asking block could learn from: it is empty."""
    short = {
        "card_lost": ["kaart verloren", "card lost", "carte perdue"],
        "info_students": ["student visa", "studentenvisum", "etudiant etranger"],
    }
    found = train(examples(short), corpus="synthetic")
    assert found.features.asks is not None and len(found.features.asks) == 0
    prediction = found.predict(ask("kaart verloren"))
    assert max(prediction, key=prediction.get) == "card_lost"


def test_trained_model_recognises_new_phrasings(model):
    assert set(model.categories) == set(TEXTS)
    for text, expected in [
        ("somebody stole my card, I have the police report", "card_lost"),
        ("ik vertrek definitief naar Spanje", "departure_permanent"),
        ("comment s'inscrire comme étudiant à l'université", "info_students"),
    ]:
        probabilities = model.predict(ask(text))
        assert max(probabilities, key=probabilities.get) == expected, (text, probabilities)
        assert sum(probabilities.values()) == pytest.approx(1.0)


def test_card_records_what_the_model_was_trained_on(model):
    card = model.card
    assert card.examples == {"card_lost": 6, "departure_permanent": 6, "info_students": 6}
    assert card.corpus == "synthetic"
    assert card.version.split("-")[0] == card.trained_at.replace("-", "").replace(":", "")[:15] + "Z"
    assert len(card.version.split("-")[1]) == 12


def test_one_email_prediction_equals_scikit_learns_computation(model):
    items = [ask("I lost my card"), ask("student", ("passport",)), ask("xyz qqq unknown words")]
    batch = sklearn_predictions(model, items)["categories"]
    for item, row in zip(items, batch, strict=True):
        single = model.predict(item)
        # scikit-learn computes the features in float32, the served path in float64.
        assert [single[c] for c in model.categories] == pytest.approx(list(row), abs=1e-6)


@pytest.mark.parametrize("categories", [("card_lost", "departure_permanent"), tuple(TEXTS)])
def test_linear_form_reproduces_calibrated_classifier(categories):
    chosen = [e for e in examples() if e.category in categories]
    features = fit_features([e.input for e in chosen])
    matrix = feature_matrix(features, [e.input for e in chosen])
    calibrated = fit_calibrated(matrix, np.array([e.category for e in chosen]), c=1.0, folds=3)
    names, weights, intercepts, beta = linear_form(calibrated)
    logits = beta * (matrix @ weights.T + intercepts)
    ours = np.exp(logits - logits.max(axis=1, keepdims=True))
    ours /= ours.sum(axis=1, keepdims=True)
    assert names == tuple(calibrated.classes_)
    np.testing.assert_allclose(ours, calibrated.predict_proba(matrix), atol=1e-6)


def test_categories_with_too_few_examples_are_left_out(caplog):
    texts = {**TEXTS, "card_defect": ["my chip is broken", "card damaged"]}
    with caplog.at_level(logging.WARNING):
        model = train(examples(texts))
    assert "card_defect" not in model.categories
    assert model.card.left_out == {"card_defect": 2}
    assert "card_defect (2)" in caplog.text


def test_one_category_cannot_make_a_model():
    with pytest.raises(TrainingError, match="two categories"):
        train(examples({"card_lost": TEXTS["card_lost"], "spam": ["buy now"]}))


def test_save_and_load_round_trip(model, tmp_path: Path):
    save_model(model.with_evaluation({"harmful_rate": 0.01}), tmp_path)
    manifest = json.loads((tmp_path / artefact.MANIFEST_FILE).read_text())
    assert manifest["model_version"] == model.card.version
    assert manifest["features_version"] == FEATURES_VERSION
    assert manifest["evaluation"] == {"harmful_rate": 0.01}
    assert len(manifest["sha256"]) == 64
    loaded = load_model(tmp_path)
    assert loaded.categories == model.categories
    assert loaded.card.version == model.card.version
    item = ask("ik ben mijn kaart kwijt")
    assert loaded.predict(item) == pytest.approx(model.predict(item), abs=1e-6)


def _saved(model, directory: Path) -> Path:
    save_model(model, directory)
    return directory


def _edit_manifest(directory: Path, **changes) -> None:
    path = directory / artefact.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_corrupted_model_file_is_refused_with_a_warning(model, tmp_path: Path, caplog):
    directory = _saved(model, tmp_path)
    data = bytearray((directory / artefact.MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (directory / artefact.MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="SHA-256"):
        load_model(directory)
    with caplog.at_level(logging.WARNING):
        assert load_model_or_none(directory) is None
    assert "rules alone" in caplog.text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": 99}, "format"),
        ({"features_version": FEATURES_VERSION + 1}, "feature recipe"),
        ({"sklearn_version": "0.24.2"}, "scikit-learn 0.24.2"),
        ({"sha256": None}, "sha256"),
        ({"categories": ["card_lost"]}, "categories differ"),
    ],
)
def test_manifest_mismatch_is_refused(model, tmp_path: Path, changes, message):
    directory = _saved(model, tmp_path)
    _edit_manifest(directory, **changes)
    with pytest.raises(ArtefactError, match=message):
        load_model(directory)


def test_consistent_but_wrong_arrays_are_refused(model, tmp_path: Path):
    """A replaced model file whose manifest was updated to match still has to make sense."""
    arrays = model.arrays()
    arrays["weights"] = arrays["weights"][:, :-1]
    np.savez_compressed(tmp_path / artefact.MODEL_FILE, **arrays)
    save_model(model, tmp_path / "good")
    manifest = json.loads((tmp_path / "good" / artefact.MANIFEST_FILE).read_text())
    manifest["sha256"] = artefact._sha256(tmp_path / artefact.MODEL_FILE)
    (tmp_path / artefact.MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match="do not fit"):
        load_model(tmp_path)


def test_unknown_category_is_refused(tmp_path: Path):
    model = train(examples({"card_lost": TEXTS["card_lost"], "not_a_category": TEXTS["info_students"]}))
    with pytest.raises(ArtefactError, match="not_a_category"):
        load_model(_saved(model, tmp_path))


def test_missing_or_unreadable_artefact(tmp_path: Path, caplog):
    with caplog.at_level(logging.WARNING):
        assert load_model_or_none(tmp_path / "nowhere") is None
    assert "no model" in caplog.text
    (tmp_path / artefact.MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ArtefactError, match="JSON"):
        load_model(tmp_path)


def test_model_file_holds_no_pickled_objects(model, tmp_path: Path):
    directory = _saved(model, tmp_path)
    with np.load(directory / artefact.MODEL_FILE, allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)


SIMPLE_EMAIL = (
    b"From: Resident <resident@example.org>\r\nTo: migratie@stad.gent\r\nSubject: kaart verloren\r\n"
    b"Message-ID: <1@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Goedendag, ik ben mijn verblijfskaart verloren. Ik heb aangifte gedaan bij de politie.\r\n"
)


def test_broken_artefact_degrades_the_pipeline_to_the_rules(model, tmp_path: Path, caplog):
    from mailflow.bootstrap import build_analyser
    from mailflow.settings import load_settings

    directory = _saved(model, tmp_path / "model")
    (directory / artefact.MODEL_FILE).write_bytes(b"garbage")
    settings = load_settings(data_dir=tmp_path, model_dir=directory)
    with caplog.at_level(logging.WARNING):
        analyser = build_analyser(settings)
    assert analyser.model is None
    assert "rules alone" in caplog.text
    analysis = analyser.analyse(SIMPLE_EMAIL)
    assert analysis.decision.category == "card_lost"
    assert not any(reason.startswith("model") for reason in analysis.decision.reasons)


def test_installed_model_takes_part_in_the_analysis(model, tmp_path: Path):
    from mailflow.bootstrap import build_analyser
    from mailflow.settings import load_settings

    directory = _saved(model, tmp_path / "model")
    analyser = build_analyser(load_settings(data_dir=tmp_path, model_dir=directory))
    assert analyser.model is not None and analyser.model.card.version == model.card.version
    analysis = analyser.analyse(SIMPLE_EMAIL)
    assert analysis.decision.category == "card_lost"
    assert any(reason.startswith("model: card_lost") for reason in analysis.decision.reasons)


# --- intent, topic and several-requests heads; rules and word vectors as features --------------------

VECTORS = WordVectors(
    words=("lost", "perdu", "verloren", "student", "etudiant", "leaving", "definitief"),
    vectors=np.eye(7, 4, dtype=np.float16),
    weights=np.ones(7, dtype=np.float32),
)
TOPICS = {"card_lost": "cards", "departure_permanent": "departure_return", "info_students": "students"}


def _rich_examples() -> list[Example]:
    rules = Classification("card_lost", 0.7, scores=(("card_lost", 4.0),), balance=-1.0)
    found = []
    for category, phrases in TEXTS.items():
        for i, text in enumerate(phrases):
            item = model_input("", text, (), PERSON, in_reply_to_ours=False, rules=rules if i % 2 else None)
            found.append(Example(item, category, f"{category}-{i}", (category, category) if i == 0 else ()))
    return found


@pytest.fixture(scope="module")
def rich_model():
    return train(_rich_examples(), corpus="synthetic", vectors=VECTORS, topics=TOPICS)


def test_one_email_row_equals_scikit_learns_features_with_rules_and_vectors(rich_model):
    items = [e.input for e in _rich_examples()]
    matrix = sklearn_matrix(rich_model.features, items).toarray()
    np.testing.assert_allclose(feature_matrix(rich_model.features, items).toarray(), matrix, atol=1e-6)
    for number, item in enumerate(items):
        indices, values = rich_model.features.row(item)
        dense = np.zeros(rich_model.features.size)
        np.add.at(dense, indices, values)
        np.testing.assert_allclose(dense, matrix[number], atol=1e-5)


def test_heads_say_what_is_asked_about_what(rich_model):
    prediction = rich_model.predict_all(ask("ik ben mijn kaart verloren"))
    assert max(prediction.categories, key=prediction.categories.get) == "card_lost"
    assert max(prediction.intent, key=prediction.intent.get) == "request"
    assert max(prediction.topic, key=prediction.topic.get) == "cards"
    assert 0.0 <= prediction.several <= 1.0
    question = rich_model.predict_all(ask("which documents does a student need"))
    assert max(question.intent, key=question.intent.get) == "question"


def test_heads_vectors_and_thresholds_survive_the_artefact(rich_model, tmp_path: Path):
    model = rich_model.with_thresholds({"act": 0.9, "redirect_info": 0.7}, [{"threshold": "0.90"}])
    loaded = load_model(_saved(model, tmp_path / "model"))
    assert set(loaded.heads) == {"intent", "topic", "several"}
    assert loaded.requests is not None and loaded.requests.labels == rich_model.requests.labels
    assert loaded.features.vectors is not None and loaded.features.vectors.words == VECTORS.words
    assert loaded.card.thresholds == {"act": 0.9, "redirect_info": 0.7}
    assert loaded.card.risk_coverage == ({"threshold": "0.90"},)
    item = ask("j'ai perdu ma carte")
    found, trained = loaded.predict_all(item), rich_model.predict_all(item)
    # Served from sparse weights: the same sums in another order.
    for head in ("categories", "intent", "topic", "requests"):
        assert getattr(found, head) == pytest.approx(getattr(trained, head), abs=1e-9)
    assert found.several == pytest.approx(trained.several, abs=1e-9)


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [({"act": float("nan")}, "not a number"), ({"act": 2}, "between"), ({"everything": 0.1}, "table")],
)
def test_a_damaged_threshold_refuses_the_model(rich_model, tmp_path: Path, thresholds, message):
    directory = _saved(rich_model, tmp_path / "model")
    _edit_manifest(directory, thresholds=thresholds)
    with pytest.raises(ArtefactError, match=message):
        load_model(directory)


def test_a_missing_head_array_refuses_the_model(rich_model, tmp_path: Path):
    arrays = rich_model.arrays()
    del arrays["head_topic_weights"]
    directory = tmp_path / "model"
    _saved(rich_model, directory)
    np.savez_compressed(directory / artefact.MODEL_FILE, **arrays)
    _edit_manifest(directory, sha256=artefact._sha256(directory / artefact.MODEL_FILE))
    with pytest.raises(ArtefactError, match="inconsistent"):
        load_model(directory)


def test_the_requests_head_judges_each_category_on_its_own(rich_model):
    assert rich_model.requests is not None
    assert set(rich_model.requests.labels) == set(TEXTS)
    lost = rich_model.predict_all(ask("ik ben mijn kaart verloren")).requests
    assert max(lost, key=lost.get) == "card_lost"
    assert all(0.0 <= p <= 1.0 for p in lost.values())


def test_the_requests_head_finds_two_products_in_one_email():
    both = ("card_lost", "departure_permanent")
    mixed = [
        "I lost my card and I am leaving Belgium for good",
        "mijn kaart is gestolen en ik verhuis definitief",
        "j'ai perdu ma carte et je quitte la Belgique définitivement",
        "card stolen, and we move back to our country permanently",
    ]
    examples = _rich_examples() + [
        Example(ask(text), "card_lost", f"mixed-{i}", both) for i, text in enumerate(mixed)
    ]
    model = train(examples, corpus="synthetic", vectors=VECTORS, topics=TOPICS)
    requests = model.predict_all(ask("my card was stolen and I leave Belgium for good")).requests
    category = model.predict_all(ask("my card was stolen and I leave Belgium for good")).categories
    assert requests["card_lost"] > 0.5 and requests["departure_permanent"] > 0.5
    assert requests["departure_permanent"] > category["departure_permanent"]  # not the category head again
    # How many emails of several requests it learnt from: what lets it overrule the rules' split.
    assert model.card.parameters["several_examples"] == sum(len(e.intents) > 1 for e in examples)
    assert model.predict_all(ask("lost card")).several_examples == model.card.parameters["several_examples"]


def test_no_requests_head_without_an_email_of_several_requests():
    single = [replace(example, intents=()) for example in _rich_examples()]
    assert train(single, corpus="synthetic").requests is None


def test_a_damaged_requests_head_refuses_the_model(rich_model, tmp_path: Path):
    arrays = rich_model.arrays()
    arrays["requests_betas"] = arrays["requests_betas"][:-1]
    directory = tmp_path / "model"
    _saved(rich_model, directory)
    np.savez_compressed(directory / artefact.MODEL_FILE, **arrays)
    _edit_manifest(directory, sha256=artefact._sha256(directory / artefact.MODEL_FILE))
    with pytest.raises(ArtefactError, match="requests head"):
        load_model(directory)
