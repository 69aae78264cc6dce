"""The shipped product catalogue loads, and every kind of mistake in a catalogue file is refused."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mailflow.classification.catalogue import load_catalogue
from mailflow.classification.cues import compile_cue, normalise
from mailflow.classification.taxonomy import (
    BOOKING_CATEGORIES,
    CATEGORIES,
    EMAIL_CATEGORIES,
    INFO_CATEGORIES,
    MACHINE_CATEGORIES,
    REPLY_LANGUAGES,
)
from mailflow.domain import Action
from mailflow.errors import ConfigurationError
from mailflow.settings import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "classifiers"


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(SHIPPED)


def test_shipped_catalogue_has_every_category_with_the_taxonomy_channel(catalogue):
    assert list(catalogue.products) == list(CATEGORIES)
    expected = {
        **dict.fromkeys(EMAIL_CATEGORIES, Action.FILE),
        **dict.fromkeys(BOOKING_CATEGORIES, Action.BOOK),
        "departure_permanent": Action.ONLINE,
        **dict.fromkeys(INFO_CATEGORIES, Action.REDIRECT_INFO),
        "other_service": Action.REDIRECT_OTHER,
        "status_followup": Action.TRIAGE,
        "unclear": Action.TRIAGE,
        **dict.fromkeys(MACHINE_CATEGORIES, Action.IGNORE),
    }
    assert {p.category: p.action for p in catalogue} == expected


def test_shipped_products_have_texts_and_links(catalogue):
    for product in catalogue:
        assert set(product.title) == set(REPLY_LANGUAGES)
        if product.action in (Action.BOOK, Action.ONLINE, Action.REDIRECT_INFO, Action.REDIRECT_OTHER):
            assert product.link_for("https://stad.gent/afspraak"), product.category
        if product.action is Action.BOOK:
            assert product.bring["nl"], product.category
    assert catalogue.product("return_report").required_documents == (
        "passport_stamp",
        "boarding_pass",
        "annex18",
    )
    assert catalogue.product("switch_c_d").required_documents == ()
    assert "bijlage 12" in " ".join(catalogue.product("card_lost").notes["nl"])
    assert any("EU" in note for note in catalogue.product("child_card").notes["en"])


def test_booking_link_is_built_from_the_base_url(catalogue):
    card_lost = catalogue.product("card_lost")
    assert card_lost.link_for("https://stad.gent/afspraak") == (
        f"https://stad.gent/afspraak?product={card_lost.product_id}"
    )
    assert card_lost.link_for("https://example.org/book?lang=nl") == (
        f"https://example.org/book?lang=nl&product={card_lost.product_id}"
    )
    online = catalogue.product("departure_permanent")
    assert online.link_for("https://stad.gent/afspraak") == online.link


def test_reply_context_is_in_the_reply_language_and_falls_back_to_english(catalogue):
    dutch = catalogue.reply_context("card_lost", "nl", booking_base_url="https://stad.gent/afspraak")
    assert dutch["title"] == catalogue.product("card_lost").title["nl"]
    assert dutch["link"].startswith("https://stad.gent/afspraak?product=")
    turkish = catalogue.reply_context("card_lost", "tr", booking_base_url="https://stad.gent/afspraak")
    assert turkish["title"] == catalogue.product("card_lost").title["en"]


def test_unknown_category_lookup_names_it(catalogue):
    with pytest.raises(KeyError, match="no_such_thing"):
        catalogue.product("no_such_thing")


def test_normalisation_reads_every_spelling_alike():
    assert normalise("Verlenging BIJLAGE 35") == "verlenging annex 35"
    assert normalise("annexe35 / anexo 35") == "annex 35 annex 35"
    assert normalise("in bijlage mijn paspoort") == "in bijlage mijn paspoort"  # an email attachment
    assert normalise("K-kaart, carte K") == "k card card k"
    assert normalise("EU+-kaart") == "eu+ card"
    assert normalise("bijlage 3bis en annexe 3 bis") == "annex 3bis en annex 3bis"
    assert normalise("Çağrı Wiśniewska déclaration d'arrivée") == "cagri wisniewska declaration d arrivee"
    assert normalise("rdv svp") == "rendez vous s il vous plait"


def test_cue_syntax():
    cue = compile_cue("(woon in|woon te) merelbeke|melle .. gent*", 1.0)
    assert cue.search(normalise("Ik woon te Melle, werk in Gentbrugge"))
    assert not cue.search(normalise("Ik woon in Gent"))
    assert compile_cue("annex 3", 1.0).search(normalise("bijlage 3bis")) is None
    assert compile_cue("e card", 1.0).search(normalise("E+ kaart")) is None
    assert compile_cue("na # maanden", 1.0).search(normalise("na 14 maanden"))


def _realised(phrase: str) -> str:
    """A text the phrase describes: first alternatives, a number for ``#``, a word in each gap and an
    ending after each prefix."""
    words = []
    for token in re.findall(r"\([^()]*\)|[^\s()]+", phrase):
        first = token[1:-1].split("|")[0] if token.startswith("(") else token.split("|")[0]
        for word in first.split():
            ending = "en" if word.endswith("*") else ""
            words.append({"#": "3", "..": "x"}.get(word, word.rstrip("*") + ending))
    return " ".join(words)


def test_a_cue_ruled_out_by_its_words_is_one_its_pattern_does_not_match(catalogue):
    """The substring test before each cue's regex only saves time: it never loses a match."""
    cues = [c for p in catalogue for c in (*p.cues, *p.negative_cues, *p.held_when)]
    cues += [*catalogue.markers.question, *catalogue.markers.request, *catalogue.markers.also]
    spec = sorted((PROJECT_ROOT / "classifiers" / "training" / "spec").glob("t*.jsonl"))[:3]
    emails = [json.loads(line) for path in spec for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [normalise(e["subject"] + "\n" + e["body"]) for e in emails[:150]]
    texts += [normalise(_realised(cue.phrase)) for cue in cues]
    matched = ruled_out = 0
    for cue in cues:
        for text in texts:
            expected = cue.pattern.search(text)
            assert cue.search(text) == (expected.span() if expected else None), (cue.phrase, text)
            matched += expected is not None
            ruled_out += cue.absent_from(text)
    assert matched > len(cues) * 0.9 and ruled_out > len(cues) * len(texts) * 0.5


# --- validation, on a copy of the shipped catalogue -------------------------------------------------


@pytest.fixture
def classifiers(tmp_path: Path) -> Path:
    target = tmp_path / "classifiers"
    shutil.copytree(SHIPPED / "products", target / "products")
    shutil.copy(SHIPPED / "markers.toml", target / "markers.toml")
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def refused(directory: Path, *fragments: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_catalogue(directory)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message
    return message


def test_copy_of_the_shipped_catalogue_loads(classifiers):
    assert len(list(load_catalogue(classifiers))) == len(CATEGORIES)


def test_unknown_category(classifiers):
    edit(classifiers / "products/card_lost.toml", 'category = "card_lost"', 'category = "card_gone"')
    refused(classifiers, "card_lost.toml", "'category'", "card_gone")


def test_unknown_action(classifiers):
    edit(classifiers / "products/card_lost.toml", 'action = "book"', 'action = "phone"')
    refused(classifiers, "card_lost.toml", "'action'", "phone")


def test_required_documents_of_unknown_kind(classifiers):
    path = classifiers / "products/annex35_extension.toml"
    edit(path, 'required_documents = ["annex35"]', 'required_documents = ["annex35", "lawyer_letter"]')
    refused(classifiers, "annex35_extension.toml", "'required_documents'", "lawyer_letter")


def test_document_cue_of_unknown_kind(classifiers):
    edit(classifiers / "products/card_lost.toml", "annex12_police = 3.0", "police_report = 3.0")
    refused(classifiers, "card_lost.toml", "'document_cues'", "police_report")


def test_missing_translation(classifiers):
    edit(classifiers / "products/card_lost.toml", 'fr = "Remplacement', 'de = "Remplacement')
    refused(classifiers, "card_lost.toml", "'title'", "missing translation fr")


def test_bring_lists_must_match_across_languages(classifiers):
    edit(classifiers / "products/card_lost.toml", 'nl = ["het attest', 'nl = ["extra", "het attest')
    refused(classifiers, "card_lost.toml", "'bring'", "same number")


@pytest.mark.parametrize("weight", ['"3"', "true", "0", "-1.5", "11", "nan"])
def test_malformed_cue_weight(classifiers, weight):
    edit(classifiers / "products/card_defect.toml", '"chip" = 3.0', f'"chip" = {weight}')
    refused(classifiers, "card_defect.toml", "cues.any.'chip'", "weight")


def test_malformed_negative_cue_weight(classifiers):
    edit(classifiers / "products/card_lost.toml", '"pin|pincode|puk" = 2.0', '"pin|pincode|puk" = "high"')
    refused(classifiers, "card_lost.toml", "negative_cues.nl", "not a number")


@pytest.mark.parametrize("value", ['"belg"', '["(belg"]', "[3]"])
def test_malformed_held_when(classifiers, value):
    with (classifiers / "products/card_defect.toml").open("a") as handle:
        handle.write(f"\n[held_when]\nnl = {value}\n")
    refused(classifiers, "card_defect.toml", "held_when.nl")


def test_malformed_cue_phrase(classifiers):
    edit(classifiers / "products/card_defect.toml", '"chip" = 3.0', '"(chip werkt" = 3.0')
    refused(classifiers, "card_defect.toml", "(chip werkt", "parentheses")


def test_unknown_cue_language(classifiers):
    edit(classifiers / "products/card_defect.toml", "[cues.nl]", "[cues.xx]")
    refused(classifiers, "card_defect.toml", "cues.xx", "unknown cue language")


def test_duplicate_category(classifiers):
    shutil.copy(classifiers / "products/card_lost.toml", classifiers / "products/card_lost_copy.toml")
    refused(classifiers, "card_lost", "already defined")


def test_missing_category(classifiers):
    (classifiers / "products/spam.toml").unlink()
    refused(classifiers, "no product file for spam")


def test_unknown_field(classifiers):
    edit(classifiers / "products/card_lost.toml", 'action = "book"', 'action = "book"\nchannel = "book"')
    refused(classifiers, "card_lost.toml", "'channel'", "unknown field")


def test_linked_product_without_link(classifiers):
    edit(classifiers / "products/departure_permanent.toml", "link = ", "# link = ")
    refused(classifiers, "departure_permanent.toml", "'link'", "needs a 'product_id' or a 'link'")


def test_unknown_related_category(classifiers):
    edit(classifiers / "products/info_asylum.toml", '["orange_card"]', '["orange_kard"]')
    refused(classifiers, "info_asylum.toml", "'related_requests'", "orange_kard")


def test_invalid_toml(classifiers):
    (classifiers / "products/card_lost.toml").write_text("category = \n", encoding="utf-8")
    refused(classifiers, "card_lost.toml", "not valid TOML")


def test_markers_are_validated_too(classifiers):
    edit(classifiers / "markers.toml", "question_mark = 1.0", "question_mark = 1.0\nexclamation = 2")
    refused(classifiers, "markers.toml", "'exclamation'", "unknown field")


def test_a_number_must_count_persons(classifiers):
    edit(classifiers / "markers.toml", "zes = 6", "zes = 6\nhonderd = 100")
    refused(classifiers, "markers.toml", "'persons.numbers'", "from 2 to 6")


def test_changing_a_channel_is_editing_the_file(classifiers):
    path = classifiers / "products/switch_c_d.toml"
    edit(path, 'action = "file"', 'action = "book"\nproduct_id = "migratie-k-kaart"')
    product = load_catalogue(classifiers).product("switch_c_d")
    assert product.action is Action.BOOK
    assert (
        product.link_for("https://stad.gent/afspraak")
        == "https://stad.gent/afspraak?product=migratie-k-kaart"
    )
