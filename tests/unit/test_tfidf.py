"""The served TF-IDF gives scikit-learn's numbers, the shipped model its predictions, and the worker
classifies with it without importing scikit-learn."""

from __future__ import annotations

import email
import email.policy
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mailflow.classification.learning.artefact import load_model
from mailflow.classification.learning.features import ModelInput, model_input
from mailflow.classification.learning.model import TrainedModel
from mailflow.classification.learning.tfidf import Tfidf, char_wb_ngrams, word_ngrams
from mailflow.domain import Screening
from mailflow.settings import PROJECT_ROOT
from tests.unit.sklearn_reference import sklearn_predictions, sklearn_vectoriser

MODEL_DIR = PROJECT_ROOT / "classifiers" / "model"
SPEC = PROJECT_ROOT / "classifiers" / "training" / "spec"
SAMPLES = PROJECT_ROOT / "samples" / "mailbox"
PERSON = Screening(machine_category=None, sender_verdict="pass")


def spec_emails() -> list[tuple[str, str]]:
    """(subject, body) of every email of the training corpus's specification."""
    found = []
    for path in sorted(SPEC.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                found.append((record.get("subject", ""), record.get("body", "")))
    return found


def sample_emails() -> list[tuple[str, str]]:
    """(subject, plain text) of the sample mailbox's emails."""
    found = []
    for path in sorted(SAMPLES.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        found.append((str(message["Subject"] or ""), body.get_content() if body else ""))
    return found


def hostile_texts() -> list[str]:
    words = " ".join(body for _, body in spec_emails()[:300]).split()
    many = " ".join(random.Random(11).choice(words) for _ in range(10_000))
    return [
        "",
        "a",
        "é",
        " ",
        "\t\n\r\x0b\x0c",
        many,
        "👍🏽 merci 🙏🙏 kaart💳verloren 🇧🇪",
        "مرحبا، أريد تجديد بطاقة الإقامة الخاصة بي. شكرا",
        "我的居留卡丢了。请帮助我。 在留カードを紛失しました 체류카드",
        "kaart\t\tverloren\r\n\n  bijlage\u00a035\u2003\u2003x\u200by \x1c z\u3000w",
        "ÉTUDIANT À L'UNIVERSITÉ — ÇA VA? İSTANBUL ΣΟΦΊΑ straße STRASSE Ǆ ǅ",
        "e\u0301tudiant cafe\u0301 nai\u0308ve",
        "a_b __ 12 3 x1 _ 1_2 ab-cd ab.cd ab'cd",
        "kaart " * 500,
        "ab",
        "verblijfskaart",
        "kaart\x00 ka\x00rt \x00\x00 x\x00",  # numpy drops trailing NULs: no false matches
    ]


def texts_to_check() -> list[str]:
    texts = hostile_texts()
    for subject, body in spec_emails()[::4] + sample_emails():
        texts.append(model_input(subject, body, (), PERSON, in_reply_to_ours=False).text)
        texts.append(f"{subject}\n{body}")  # as written: capitals, accents, punctuation
    return texts


@pytest.fixture(scope="module")
def shipped() -> TrainedModel:
    return load_model(MODEL_DIR)


@pytest.mark.parametrize("block_name", ["words", "chars"])
def test_tfidf_equals_scikit_learns_transform_for_the_shipped_vocabulary(shipped, block_name):
    block: Tfidf = getattr(shipped.features, block_name)
    texts = texts_to_check()
    expected = sklearn_vectoriser(block).transform(texts).tocsr()
    assert expected.nnz > 100_000  # the texts reach deep into the vocabulary
    for number, text in enumerate(texts):
        indices, values = block.row(text)
        start, end = expected.indptr[number], expected.indptr[number + 1]
        np.testing.assert_array_equal(indices, expected.indices[start:end], err_msg=repr(text[:80]))
        np.testing.assert_allclose(values, expected.data[start:end], atol=1e-6, rtol=0)


@pytest.mark.parametrize("analyser", ["word", "char_wb"])
@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (2, 3), (2, 5), (3, 3)])
def test_ngrams_equal_scikit_learns_analyser(analyser, ngram_range):
    fitted = sklearn_vectoriser(Tfidf.from_terms(analyser, ngram_range, ["x"], np.ones(1)))
    analyse = fitted.build_analyzer()
    ours = word_ngrams if analyser == "word" else char_wb_ngrams
    for text in [*hostile_texts(), "one", "one two", "one two three", "a b", "ab cd ef gh"]:
        assert ours(text, ngram_range) == analyse(text), text[:80]


def test_the_shipped_models_predictions_equal_scikit_learns(shipped):
    inputs: list[ModelInput] = [
        model_input(subject, body, (), PERSON, in_reply_to_ours=False)
        for subject, body in spec_emails()[::20] + sample_emails()
    ]
    hostile = hostile_texts()
    inputs += [model_input("", text, ("passport",), PERSON, in_reply_to_ours=True) for text in hostile]
    expected = sklearn_predictions(shipped, inputs)
    assert set(expected) == {"categories", "intent", "topic", "several", "requests"}
    labels = {"categories": shipped.categories, **{n: h.labels for n, h in shipped.heads.items()}}
    labels["requests"] = shipped.requests.labels
    for number, item in enumerate(inputs):
        prediction = shipped.predict_all(item)
        for name, found in (
            ("categories", prediction.categories),
            ("intent", prediction.intent),
            ("topic", prediction.topic),
            ("requests", prediction.requests),
        ):
            got = [found[label] for label in labels[name]]
            np.testing.assert_allclose(got, expected[name][number], atol=1e-6, rtol=0)
        several = expected["several"][number][list(labels["several"]).index("yes")]
        assert prediction.several == pytest.approx(several, abs=1e-6)


WORKER = """
import json, sys
from mailflow.cli import main
main(["-v", "poll-once"], standalone_mode=False)
print(json.dumps({name: name in sys.modules for name in ("sklearn", "scipy", "scipy.sparse")}))
"""


def test_the_worker_classifies_with_the_model_without_importing_scikit_learn(tmp_path: Path):
    from mailflow.adapters.maildir import MaildirMailbox
    from mailflow.settings import Settings

    settings = Settings(data_dir=tmp_path)
    raw = (SAMPLES / "15-carte-sejour-volee.eml").read_bytes()
    MaildirMailbox.from_settings(settings).append("INBOX", raw)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAILFLOW_")} | {
        "MAILFLOW_DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "processed 1" in result.stdout, result.stdout
    assert "learned model" in result.stderr and "loaded" in result.stderr, result.stderr
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert modules == {"sklearn": False, "scipy": False, "scipy.sparse": False}
