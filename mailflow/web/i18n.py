"""The desk's languages (Flask-Babel): each person's choice, the configured default, Brussels time.

Message catalogues live in ``translations/`` (English message ids; ``make translations`` extracts
and compiles them). Names of categories and document kinds are catalogue data
(``classifiers/labels.toml``), not messages: they are read through ``StaffLabels``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from babel import Locale
from flask import Flask, session
from flask_babel import Babel, format_date, format_datetime, get_locale
from flask_login import current_user

from mailflow.classification.taxonomy import CATEGORIES, DOCUMENT_KINDS

LANGUAGES = ("nl", "fr", "en")
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


@dataclass(frozen=True)
class StaffLabels:
    """What staff call each category and document kind, per desk language."""

    categories: Mapping[str, Mapping[str, str]]
    kinds: Mapping[str, Mapping[str, str]]

    @classmethod
    def load(cls, path: Path) -> StaffLabels:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
        labels = cls(raw.get("categories", {}), raw.get("kinds", {}))
        labels.check()
        return labels

    def check(self) -> None:
        for table, names, expected in (
            ("categories", self.categories, CATEGORIES),
            ("kinds", self.kinds, DOCUMENT_KINDS),
        ):
            missing = set(expected) - set(names)
            unknown = set(names) - set(expected)
            if missing or unknown:
                raise ValueError(
                    f"labels.toml [{table}]: missing {sorted(missing)}, unknown {sorted(unknown)}"
                )
            for name, texts in names.items():
                absent = [language for language in LANGUAGES if not str(texts.get(language, "")).strip()]
                if absent:
                    raise ValueError(f"labels.toml [{table}.{name}] has no text in {', '.join(absent)}")

    def category(self, category: str | None, language: str) -> str:
        texts = self.categories.get(category or "")
        return texts[language] if texts else (category or "")

    def kind(self, kind: str | None, language: str) -> str:
        texts = self.kinds.get(kind or "")
        return texts[language] if texts else (kind or "")


def desk_language() -> str:
    return str(get_locale() or LANGUAGES[0])


def install(web: Flask, *, default_language: str, timezone: str) -> None:
    web.config.update(
        BABEL_DEFAULT_LOCALE=default_language,
        BABEL_DEFAULT_TIMEZONE=timezone,
        BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS_DIR),
    )
    Babel(web, locale_selector=_chosen_language)
    web.jinja_env.filters.update(
        when=lambda value: _when(value, "short"),
        when_exact=lambda value: _when(value, "medium"),
        day=lambda value: format_date(value, "short") if isinstance(value, (date, datetime)) else "",
        time=lambda value: format_datetime(value, "HH:mm") if isinstance(value, datetime) else "",
        language_name=language_name,
    )


def _chosen_language() -> str | None:
    chosen = getattr(current_user, "locale", None) if current_user else None
    chosen = chosen or session.get("locale")
    return chosen if chosen in LANGUAGES else None  # None: BABEL_DEFAULT_LOCALE


def _when(value: datetime | None, style: str) -> str:
    return format_datetime(value, style) if isinstance(value, datetime) else ""


def language_name(code: str | None) -> str:
    """A language code in the desk's language: "fr" reads "Frans" for a Dutch-speaking clerk."""
    if not code:
        return ""
    try:
        name = Locale.parse(code).get_display_name(desk_language())
    except (ValueError, TypeError):
        return code
    return name[:1].upper() + name[1:] if name else code
