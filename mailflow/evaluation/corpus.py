"""Labelled corpora: directories of ``.eml`` files with a ``labels.jsonl`` beside them.

One JSON object a line, as in ``shared/corpus``: ``file`` (or ``id``), ``category``, ``action``,
optionally ``language``, ``documents`` (one kind per attachment, in order) and ``intents``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailflow.classification.taxonomy import CATEGORIES
from mailflow.domain import Action

LABELS_FILE = "labels.jsonl"
_ACTIONS = frozenset(action.value for action in Action)


class CorpusError(ValueError):
    """A labelled directory is missing or its labels are malformed."""


@dataclass(frozen=True)
class LabelledEmail:
    path: Path
    category: str
    action: str
    language: str = ""
    documents: tuple[str, ...] = ()
    intents: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name


def read_labelled(directory: Path) -> list[LabelledEmail]:
    """Every labelled email of one directory; CorpusError names the line at fault."""
    labels = directory / LABELS_FILE
    try:
        lines = labels.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CorpusError(f"cannot read {labels}: {exc.strerror or exc}") from exc
    emails = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            emails.append(_email(directory, line, f"{labels}:{number}"))
    if not emails:
        raise CorpusError(f"{labels} labels no email")
    return emails


def read_corpora(directories: Sequence[Path]) -> Iterator[LabelledEmail]:
    for directory in directories:
        yield from read_labelled(directory)


def _email(directory: Path, line: str, where: str) -> LabelledEmail:
    try:
        entry = json.loads(line)
    except ValueError as exc:
        raise CorpusError(f"{where}: not JSON ({exc})") from exc
    if not isinstance(entry, dict):
        raise CorpusError(f"{where}: not a JSON object")
    name = entry.get("file") or (f"{entry['id']}.eml" if entry.get("id") else None)
    if not isinstance(name, str) or Path(name).name != name:
        raise CorpusError(f"{where}: 'file' must name a file in {directory}")
    path = directory / name
    if not path.is_file():
        raise CorpusError(f"{where}: {path} does not exist")
    category, action = entry.get("category"), entry.get("action")
    if category not in CATEGORIES:
        raise CorpusError(f"{where}: unknown category {category!r}")
    if action not in _ACTIONS:
        raise CorpusError(f"{where}: unknown action {action!r}")
    intents = tuple(_strings(entry.get("intents"), "intents", where))
    unknown = sorted(set(intents) - set(CATEGORIES))
    if unknown:  # a model trained on them would be refused when loaded
        raise CorpusError(f"{where}: unknown category {unknown[0]!r} in intents")
    return LabelledEmail(
        path=path,
        category=category,
        action=action,
        language=str(entry.get("language") or ""),
        documents=tuple(_strings(entry.get("documents"), "documents", where)),
        intents=intents,
    )


def _strings(value: object, key: str, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CorpusError(f"{where}: {key!r} must be a list of strings")
    return value
