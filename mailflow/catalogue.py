"""The product catalogue: one TOML file per category in ``<classifiers>/products/``.

Which channel handles a category (file by email, book an appointment, an online procedure, …), what
documents it needs, where its link points and which words announce it are business rules the city
changes from time to time, so they live in these files: changing a product's channel is editing its
file. ``<classifiers>/markers.toml`` holds the vocabulary that is not about one product (questions,
requests, several persons). Everything is validated at start-up; any problem is a
``ConfigurationError`` naming the file and the field.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from mailflow.cues import Cue, compile_cue, normalise
from mailflow.domain import Action
from mailflow.errors import ConfigurationError
from mailflow.taxonomy import CATEGORIES, CUE_LANGUAGES, DOCUMENT_KINDS, PRODUCT_ACTIONS, REPLY_LANGUAGES

MAX_WEIGHT = 10.0
# Evidence an attached required document gives its product when the file names no other weight.
REQUIRED_DOCUMENT_WEIGHT = 2.0
_LINKED_ACTIONS = {Action.BOOK, Action.ONLINE, Action.REDIRECT_INFO, Action.REDIRECT_OTHER}
_PRODUCT_KEYS = {
    "category",
    "action",
    "title",
    "product_id",
    "link",
    "required_documents",
    "bring",
    "notes",
    "document_cues",
    "cues",
    "negative_cues",
    "related_requests",
    "same_request_as",
}
_PRODUCT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Product:
    category: str
    action: Action
    title: Mapping[str, str]
    required_documents: tuple[str, ...] = ()  # any one of these completes a ``file`` request
    product_id: str | None = None  # the booking system's product; the link is built from it
    link: str | None = None  # a fixed link (online procedure, another service)
    bring: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    notes: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    document_cues: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    cues: tuple[Cue, ...] = ()
    negative_cues: tuple[Cue, ...] = ()
    # A question about this topic may be worded like these requests ("can I get a K card?").
    related_requests: tuple[str, ...] = ()
    # Asked together with these, it is still one request (an annex 35 is one, extended or new).
    same_request_as: tuple[str, ...] = ()

    def link_for(self, booking_base_url: str) -> str | None:
        """The link a reply gives: the booking page of ``product_id``, else the fixed ``link``."""
        if self.product_id is None:
            return self.link
        scheme, netloc, path, query, fragment = urlsplit(booking_base_url)
        query = "&".join(part for part in (query, urlencode({"product": self.product_id})) if part)
        return urlunsplit((scheme, netloc, path, query, fragment))

    def document_weight(self, kind: str) -> float:
        """How much an attached document of this kind says that the email is about this product."""
        if kind in self.document_cues:
            return self.document_cues[kind]
        return REQUIRED_DOCUMENT_WEIGHT if kind in self.required_documents else 0.0


@dataclass(frozen=True)
class Markers:
    """Vocabulary about the kind of email rather than its product."""

    question: tuple[Cue, ...]
    request: tuple[Cue, ...]
    question_mark: float  # weight of a "?" in the text
    self_words: frozenset[str]  # "mij", "me", "moi": the writer as object of the request
    conjunctions: frozenset[str]
    possessives: frozenset[str]
    relatives: Mapping[str, int]  # family word → how many persons it counts for
    several: tuple[Cue, ...]  # "allebei", "both of us": two persons
    also: tuple[Cue, ...]  # "ook", "aussi", "also": announces a further request


@dataclass(frozen=True)
class Catalogue:
    products: Mapping[str, Product]
    markers: Markers

    def product(self, category: str) -> Product:
        try:
            return self.products[category]
        except KeyError:
            raise KeyError(f"no product for category {category!r}") from None

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products.values())


def load_catalogue(directory: Path) -> Catalogue:
    """Read and validate ``directory/products/*.toml`` and ``directory/markers.toml``."""
    product_dir = directory / "products"
    files = sorted(product_dir.glob("*.toml"))
    if not files:
        raise ConfigurationError(f"no product files in {product_dir}")
    products: dict[str, Product] = {}
    origin: dict[str, Path] = {}
    for path in files:
        product = _product(path, _read(path))
        if product.category in products:
            raise ConfigurationError(
                f"{path}: category {product.category!r} is already defined in {origin[product.category]}"
            )
        products[product.category] = product
        origin[product.category] = path
    missing = [category for category in CATEGORIES if category not in products]
    if missing:
        raise ConfigurationError(f"{product_dir}: no product file for categories {', '.join(missing)}")
    ordered = {category: products[category] for category in CATEGORIES}
    markers = _markers(directory / "markers.toml")
    return Catalogue(products=MappingProxyType(ordered), markers=markers)


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc


def _product(path: Path, raw: dict[str, Any]) -> Product:
    def fail(field: str, problem: str) -> ConfigurationError:
        return ConfigurationError(f"{path}: field {field!r}: {problem}")

    unknown = sorted(set(raw) - _PRODUCT_KEYS)
    if unknown:
        raise fail(unknown[0], "unknown field")
    category = raw.get("category")
    if category not in CATEGORIES:
        raise fail("category", f"{category!r} is not a category of the taxonomy")
    action_id = raw.get("action")
    if action_id not in PRODUCT_ACTIONS:
        raise fail("action", f"{action_id!r} is not one of {', '.join(sorted(PRODUCT_ACTIONS))}")
    action = Action(action_id)
    required = _kinds(raw.get("required_documents", []), lambda p: fail("required_documents", p))
    product_id = raw.get("product_id")
    if product_id is not None and not (isinstance(product_id, str) and _PRODUCT_ID.fullmatch(product_id)):
        raise fail("product_id", f"{product_id!r} is not a product id (letters, digits, '-', '_', '.')")
    link = raw.get("link")
    if link is not None and not (isinstance(link, str) and link.startswith("https://") and len(link) > 8):
        raise fail("link", f"{link!r} is not an https:// address")
    if action in _LINKED_ACTIONS and product_id is None and link is None:
        raise fail("link", f"a {action.value!r} product needs a 'product_id' or a 'link'")
    document_cues = raw.get("document_cues", {})
    if not isinstance(document_cues, dict):
        raise fail("document_cues", "must be a table of document kind = weight")
    for kind, weight in document_cues.items():
        if kind not in DOCUMENT_KINDS:
            raise fail("document_cues", f"{kind!r} is not a document kind of the taxonomy")
        _weight(weight, lambda p, kind=kind: fail(f"document_cues.{kind}", p))
    return Product(
        category=category,
        action=action,
        title=MappingProxyType(_texts(raw.get("title"), lambda p: fail("title", p))),
        required_documents=required,
        product_id=product_id,
        link=link,
        bring=MappingProxyType(_text_lists(raw.get("bring", {}), lambda p: fail("bring", p))),
        notes=MappingProxyType(_text_lists(raw.get("notes", {}), lambda p: fail("notes", p))),
        document_cues=MappingProxyType({kind: float(weight) for kind, weight in document_cues.items()}),
        cues=_cues(raw.get("cues", {}), "cues", fail),
        negative_cues=_cues(raw.get("negative_cues", {}), "negative_cues", fail),
        related_requests=_categories(raw.get("related_requests", []), lambda p: fail("related_requests", p)),
        same_request_as=_categories(raw.get("same_request_as", []), lambda p: fail("same_request_as", p)),
    )


def _categories(value: Any, fail: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(category, str) for category in value):
        raise fail("must be a list of categories")
    for category in value:
        if category not in CATEGORIES:
            raise fail(f"{category!r} is not a category of the taxonomy")
    return tuple(value)


def _kinds(value: Any, fail: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(kind, str) for kind in value):
        raise fail("must be a list of document kinds")
    for kind in value:
        if kind not in DOCUMENT_KINDS:
            raise fail(f"{kind!r} is not a document kind of the taxonomy")
    return tuple(value)


def _texts(value: Any, fail: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise fail(f"must be a table with {', '.join(REPLY_LANGUAGES)}")
    _languages(value, fail)
    for language in REPLY_LANGUAGES:
        if not isinstance(value[language], str) or not value[language].strip():
            raise fail(f"the {language!r} text is empty or not a string")
    return dict(value)


def _text_lists(value: Any, fail: Any) -> dict[str, tuple[str, ...]]:
    """An optional table of per-language lists; when present, every reply language is there."""
    if not isinstance(value, dict):
        raise fail("must be a table of language = list of texts")
    if not value:
        return {}
    _languages(value, fail)
    lists = {}
    for language in REPLY_LANGUAGES:
        items = value[language]
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
            raise fail(f"the {language!r} entry must be a list of non-empty texts")
        lists[language] = tuple(items)
    counts = {len(items) for items in lists.values()}
    if len(counts) > 1:
        raise fail("the languages do not have the same number of entries")
    return lists


def _languages(value: dict[str, Any], fail: Any) -> None:
    missing = [language for language in REPLY_LANGUAGES if language not in value]
    if missing:
        raise fail(f"missing translation {', '.join(missing)}")
    extra = sorted(set(value) - set(REPLY_LANGUAGES))
    if extra:
        raise fail(f"unknown language {', '.join(extra)}")


def _cues(value: Any, field: str, fail: Any) -> tuple[Cue, ...]:
    if not isinstance(value, dict):
        raise fail(field, "must be a table of language tables")
    cues = []
    for language, table in value.items():
        where = f"{field}.{language}"
        if language not in CUE_LANGUAGES:
            raise fail(where, f"unknown cue language (known: {', '.join(sorted(CUE_LANGUAGES))})")
        if not isinstance(table, dict):
            raise fail(where, "must be a table of phrase = weight")
        for phrase, weight in table.items():
            _weight(weight, lambda p, key=f"{where}.{phrase!r}": fail(key, p))
            try:
                cues.append(compile_cue(phrase, float(weight)))
            except ValueError as exc:
                raise fail(f"{where}.{phrase!r}", str(exc)) from exc
    return tuple(cues)


def _weight(value: Any, fail: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(f"weight {value!r} is not a number")
    if not 0 < value <= MAX_WEIGHT:
        raise fail(f"weight {value!r} is outside (0, {MAX_WEIGHT:g}]")


def _markers(path: Path) -> Markers:
    raw = _read(path)

    def fail(field: str, problem: str) -> ConfigurationError:
        return ConfigurationError(f"{path}: field {field!r}: {problem}")

    unknown = sorted(set(raw) - {"question", "request", "question_mark", "persons", "also"})
    if unknown:
        raise fail(unknown[0], "unknown field")
    question_mark = raw.get("question_mark", 0.0)
    if question_mark:
        _weight(question_mark, lambda p: fail("question_mark", p))
    persons = raw.get("persons", {})
    if not isinstance(persons, dict):
        raise fail("persons", "must be a table")
    relatives = persons.get("relatives", {})
    if not isinstance(relatives, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in relatives.values()
    ):
        raise fail("persons.relatives", "must be a table of word = number of persons (>= 1)")
    return Markers(
        question=_cues(raw.get("question", {}), "question", fail),
        request=_cues(raw.get("request", {}), "request", fail),
        question_mark=float(question_mark),
        self_words=_words(persons, "self", fail),
        conjunctions=_words(persons, "conjunctions", fail),
        possessives=_words(persons, "possessives", fail),
        relatives=MappingProxyType({normalise(word): count for word, count in relatives.items()}),
        several=_cues({"any": {phrase: 1.0 for phrase in _list(persons, "several", fail)}}, "persons", fail),
        also=_phrases(raw.get("also", {}), fail),
    )


def _phrases(value: Any, fail: Any) -> tuple[Cue, ...]:
    """A table of language = list of phrases, compiled as cues of weight 1."""
    if not isinstance(value, dict):
        raise fail("also", "must be a table of language = list of phrases")
    table = {}
    for language, phrases in value.items():
        if not isinstance(phrases, list) or not all(isinstance(p, str) and p.strip() for p in phrases):
            raise fail(f"also.{language}", "must be a list of phrases")
        table[language] = {phrase: 1.0 for phrase in phrases}
    return _cues(table, "also", fail)


def _list(table: dict[str, Any], key: str, fail: Any) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(word, str) and word.strip() for word in value):
        raise fail(f"persons.{key}", "must be a list of words")
    return value


def _words(table: dict[str, Any], key: str, fail: Any) -> frozenset[str]:
    return frozenset(normalise(word) for word in _list(table, key, fail))
