"""What the reply templates may show: product facts, the resident's name, phrases and document names."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailflow.errors import ConfigurationError
from mailflow.replies.mime import clean_text

LANGUAGES = ("nl", "fr", "en")
_PHRASE_KEYS = frozenset(
    {
        "greeting_named",
        "greeting_anonymous",
        "closing",
        "signature",
        "notes_heading",
        "automatic_notice",
        "subject_fallback",
    }
)

# Actions whose whole point is a link: a reply without one would only make the resident write again.
_LINK_REQUIRED = frozenset({"book", "online", "redirect_info"})
_LINK = re.compile(r"(?:https?://[^\s\"'<>\\^`{|}]+|mailto:[^\s\"'<>\\^`{|}]+@[^\s\"'<>\\^`{|}]+)")
_MAX_NAME = 60
_MAX_NAME_WORDS = 5
# A display name is sender-controlled text echoed to whoever the address belongs to; anything that
# looks like an address, a link or a number is no one's name and could carry an advertisement.
_NOT_A_NAME = re.compile(r"[@<>{}\[\]|\\/$%*=_:;#\d]|www\.|https?", re.IGNORECASE)


@dataclass(frozen=True)
class ProductFacts:
    """The product's facts, already in the reply language: ``title``, ``link``, ``bring``, ``notes``."""

    title: str = ""
    link: str | None = None
    bring: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, product: Mapping[str, object], action: str) -> ProductFacts:
        """Read the keys the templates use (others are ignored); ValueError on unusable values."""
        title = product.get("title") or ""
        if not isinstance(title, str):
            raise ValueError("product title must be text")
        link = product.get("link") or None
        if link is not None and (not isinstance(link, str) or not _LINK.fullmatch(link.strip())):
            raise ValueError("product link must be an http(s) or mailto URL")
        if link is None and action in _LINK_REQUIRED:
            raise ValueError(f"a {action} reply needs the product's link")
        return cls(
            title=title.strip(),
            link=link.strip() if link else None,
            bring=_texts(product.get("bring"), "bring"),
            notes=_texts(product.get("notes"), "notes"),
        )


def _texts(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"product {key} must be text or a list of texts")
    return tuple(item.strip() for item in value if item.strip())


def usable_name(raw: str) -> str:
    """The resident's display name fit for a greeting, or "" to greet without a name."""
    name = clean_text(raw).strip(" '\"")
    if not name or len(name) > _MAX_NAME or len(name.split()) > _MAX_NAME_WORDS or _NOT_A_NAME.search(name):
        return ""
    return name


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc


def load_phrases(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    data = _read_toml(path)
    fallback = data.get("fallback")
    if not isinstance(fallback, dict) or {"language", "notice_language", "notice"} - fallback.keys():
        raise ConfigurationError(f"{path}: [fallback] needs language, notice_language and notice")
    phrases: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        table = data.get(language)
        if not isinstance(table, dict) or _PHRASE_KEYS - table.keys():
            raise ConfigurationError(f"{path}: [{language}] needs {sorted(_PHRASE_KEYS)}")
        phrases[language] = {key: str(value) for key, value in table.items()}
    if fallback["language"] not in LANGUAGES:
        raise ConfigurationError(f"{path}: fallback language must be one of {LANGUAGES}")
    return phrases, {key: str(value) for key, value in fallback.items()}


def load_documents(path: Path) -> dict[str, dict[str, str]]:
    data = _read_toml(path)
    names: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        table = data.get(language)
        if not isinstance(table, dict) or not table:
            raise ConfigurationError(f"{path}: no document names for {language!r}")
        names[language] = {kind: str(name) for kind, name in table.items()}
    kinds = {language: set(table) for language, table in names.items()}
    if len({frozenset(k) for k in kinds.values()}) != 1:
        raise ConfigurationError(f"{path}: languages name different document kinds")
    return names
