"""The desk's message catalogues: every message translated, the compiled files current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from mailflow.web.i18n import LANGUAGES, TRANSLATIONS_DIR, StaffLabels

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [language for language in LANGUAGES if language != "en"]
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def catalogue(language: str):
    with (TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> set[str]:
    """The messages the code and templates use today, extracted as `make translations` does."""
    out = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "lazy_gettext",
         "--no-location", "--omit-header", "-o", str(out), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with out.open("rb") as handle:
        return {m.id for m in read_po(handle) if m.id}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated_with_its_placeholders(language, extracted):
    messages = {m.id: m.string for m in catalogue(language) if m.id}
    missing = sorted(extracted - set(messages))
    assert not missing, f"not in the {language} catalogue (make translations): {missing[:10]}"
    empty = sorted(i for i in extracted if not messages[i])
    assert not empty, f"untranslated in {language}: {empty[:10]}"
    for msgid in extracted:
        assert set(PLACEHOLDER.findall(msgid)) == set(PLACEHOLDER.findall(messages[msgid])), (language, msgid)


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalogue_is_the_current_one(language):
    source = {m.id: m.string for m in catalogue(language) if m.id and m.string}
    with (TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.mo").open("rb") as handle:
        compiled = {m.id: m.string for m in read_mo(handle) if m.id}
    assert compiled == source, f"run make translations: {language} messages.mo is older than messages.po"


def test_staff_names_cover_the_taxonomy_in_every_language():
    labels = StaffLabels.load(ROOT / "classifiers" / "labels.toml")  # raises on a gap
    assert labels.category("annex35_extension", "nl") == "Verlenging bijlage 35"
    names = {language: {labels.category(c, language) for c in labels.categories} for language in LANGUAGES}
    assert all(len(found) == len(labels.categories) for found in names.values())  # no two alike
