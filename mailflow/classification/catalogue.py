"""The product catalogue: one TOML file per category in ``<classifiers>/products/``.

Which channel handles a category (file by email, book an appointment, an online procedure, …), what
documents it needs, where its link points and which words announce it are business rules the city
changes from time to time, so they live in these files: changing a product's channel is editing its
file. ``<classifiers>/markers.toml`` holds the vocabulary that is not about one product (see
``classification.markers``). Everything is validated at start-up; any problem is a ``ConfigurationError``
naming the file and the field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from mailflow.classification.cues import Cue, FieldError, check_weight, cue_lists, cue_tables
from mailflow.classification.markers import Markers, parse_markers
from mailflow.classification.taxonomy import (
    CATEGORIES,
    CUE_LANGUAGES,
    DOCUMENT_KINDS,
    PRODUCT_ACTIONS,
    REPLY_LANGUAGES,
    intent_of,
)
from mailflow.domain import Action
from mailflow.errors import ConfigurationError

# Evidence an attached required document gives its product when the file names no other weight.
REQUIRED_DOCUMENT_WEIGHT = 2.0
# The language a product's texts are shown in when the resident's is none of the reply languages.
FALLBACK_LANGUAGE = "en"
_LINKED_ACTIONS = {Action.BOOK, Action.ONLINE, Action.REDIRECT_INFO, Action.REDIRECT_OTHER}
_KEYS = frozenset(
    {
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
        "held_when",
        "related_requests",
        "same_request_as",
        "topic",
    }
)
_TOPIC = re.compile(r"[a-z][a-z_]*")
_PRODUCT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Product:
    category: str
    action: Action
    title: Mapping[str, str]
    required_documents: tuple[str, ...] = ()  # any one of these completes a ``file`` request
    product_id: str | None = None  # the booking system's product; the link is built from it
    link: str | None = None  # a fixed link (online procedure, another service)
    bring: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    notes: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    document_cues: Mapping[str, float] = field(default_factory=_empty)
    cues: tuple[Cue, ...] = ()
    negative_cues: tuple[Cue, ...] = ()
    # Words that may rule the product out where nothing else can tell: an email the model files under
    # it goes to a person (a child with a Belgian parent is Belgian: no residence card, a Kids-ID).
    held_when: tuple[Cue, ...] = ()
    # A question about this topic may be worded like these requests ("can I get a K card?").
    related_requests: tuple[str, ...] = ()
    # Asked together with these, it is still one request (an annex 35 is one, extended or new).
    same_request_as: tuple[str, ...] = ()
    # What it is about, across questions and requests (the product family): "cards", "asylum", …
    topic: str = ""

    @property
    def intent(self) -> str:
        return intent_of(self.category)

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

    def reply_context(self, category: str, language: str, *, booking_base_url: str) -> Mapping[str, Any]:
        """What a reply shows of the product, in ``language`` (English when it has no texts)."""
        product = self.product(category)
        language = language if language in REPLY_LANGUAGES else FALLBACK_LANGUAGE
        return MappingProxyType(
            {
                "category": product.category,
                "action": product.action.value,
                "title": product.title[language],
                "link": product.link_for(booking_base_url),
                "bring": product.bring.get(language, ()),
                "notes": product.notes.get(language, ()),
                "required_documents": product.required_documents,
            }
        )


def load_catalogue(directory: Path) -> Catalogue:
    """Read and validate ``directory/products/*.toml`` and ``directory/markers.toml``."""
    product_dir = directory / "products"
    files = sorted(product_dir.glob("*.toml"))
    if not files:
        raise ConfigurationError(f"no product files in {product_dir}")
    products: dict[str, Product] = {}
    origin: dict[str, Path] = {}
    for path in files:
        product = _in_file(path, _product)
        if product.category in products:
            raise ConfigurationError(
                f"{path}: category {product.category!r} is already defined in {origin[product.category]}"
            )
        products[product.category] = product
        origin[product.category] = path
    missing = [category for category in CATEGORIES if category not in products]
    if missing:
        raise ConfigurationError(f"{product_dir}: no product file for {', '.join(missing)}")
    ordered = {category: products[category] for category in CATEGORIES}
    markers = _in_file(directory / "markers.toml", parse_markers)
    return Catalogue(products=MappingProxyType(ordered), markers=markers)


def _in_file(path: Path, parse: Any) -> Any:
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return parse(raw)
    except FieldError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc


def _product(raw: dict[str, Any]) -> Product:
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise FieldError(unknown[0], "unknown field")
    category = raw.get("category")
    if category not in CATEGORIES:
        raise FieldError("category", f"{category!r} is not a category of the taxonomy")
    action = raw.get("action")
    if action not in PRODUCT_ACTIONS:
        raise FieldError("action", f"{action!r} is not one of {', '.join(sorted(PRODUCT_ACTIONS))}")
    product_id = raw.get("product_id")
    if product_id is not None and not (isinstance(product_id, str) and _PRODUCT_ID.fullmatch(product_id)):
        raise FieldError("product_id", f"{product_id!r} is not a product id (letters, digits, '-', '_', '.')")
    link = raw.get("link")
    if link is not None and not (isinstance(link, str) and re.fullmatch(r"https://\S+", link)):
        raise FieldError("link", f"{link!r} is not an https:// address")
    if Action(action) in _LINKED_ACTIONS and product_id is None and link is None:
        raise FieldError("link", f"a {action!r} product needs a 'product_id' or a 'link'")
    topic = raw.get("topic")
    if not (isinstance(topic, str) and _TOPIC.fullmatch(topic)):
        raise FieldError("topic", f"{topic!r} is not a topic name (lower-case letters and '_')")
    document_cues = raw.get("document_cues", {})
    if not isinstance(document_cues, dict):
        raise FieldError("document_cues", "must be a table of document kind = weight")
    for kind in document_cues:
        _kinds([kind], "document_cues")
    return Product(
        category=category,
        action=Action(action),
        title=MappingProxyType(_texts(raw.get("title"))),
        required_documents=_kinds(raw.get("required_documents", []), "required_documents"),
        product_id=product_id,
        link=link,
        bring=MappingProxyType(_text_lists(raw.get("bring", {}), "bring")),
        notes=MappingProxyType(_text_lists(raw.get("notes", {}), "notes")),
        document_cues=MappingProxyType(
            {kind: check_weight(weight, f"document_cues.{kind}") for kind, weight in document_cues.items()}
        ),
        cues=cue_tables(raw.get("cues", {}), "cues", CUE_LANGUAGES),
        negative_cues=cue_tables(raw.get("negative_cues", {}), "negative_cues", CUE_LANGUAGES),
        held_when=cue_lists(raw.get("held_when", {}), "held_when", CUE_LANGUAGES),
        related_requests=_categories(raw.get("related_requests", []), "related_requests"),
        same_request_as=_categories(raw.get("same_request_as", []), "same_request_as"),
        topic=topic,
    )


def _kinds(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(kind, str) for kind in value):
        raise FieldError(field, "must be a list of document kinds")
    for kind in value:
        if kind not in DOCUMENT_KINDS:
            raise FieldError(field, f"{kind!r} is not a document kind of the taxonomy")
    return tuple(value)


def _categories(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(category, str) for category in value):
        raise FieldError(field, "must be a list of categories")
    for category in value:
        if category not in CATEGORIES:
            raise FieldError(field, f"{category!r} is not a category of the taxonomy")
    return tuple(value)


def _texts(value: Any) -> dict[str, str]:
    _languages(value, "title")
    for language in REPLY_LANGUAGES:
        if not isinstance(value[language], str) or not value[language].strip():
            raise FieldError("title", f"the {language!r} text is empty or not a string")
    return dict(value)


def _text_lists(value: Any, field: str) -> dict[str, tuple[str, ...]]:
    """An optional table of per-language lists; when present, every reply language is there."""
    if value == {}:
        return {}
    _languages(value, field)
    lists = {}
    for language in REPLY_LANGUAGES:
        items = value[language]
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
            raise FieldError(field, f"the {language!r} entry must be a list of non-empty texts")
        lists[language] = tuple(items)
    if len({len(items) for items in lists.values()}) > 1:
        raise FieldError(field, "the languages do not have the same number of entries")
    return lists


def _languages(value: Any, field: str) -> None:
    if not isinstance(value, dict):
        raise FieldError(field, f"must be a table with {', '.join(REPLY_LANGUAGES)}")
    missing = [language for language in REPLY_LANGUAGES if language not in value]
    if missing:
        raise FieldError(field, f"missing translation {', '.join(missing)}")
    extra = sorted(set(value) - set(REPLY_LANGUAGES))
    if extra:
        raise FieldError(field, f"unknown language {', '.join(extra)}")
