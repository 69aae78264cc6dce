"""Replies residents understand: one name for the counter, formal Dutch and French, no false claims.

Every product of the shipped catalogue that replies is answered in every reply language, once as if its
email had no attachment and once with the product's first required document (where it needs one), the
way ``decide`` chooses the action; each reply is rendered by the real ``ReplyComposer``.
"""

from __future__ import annotations

import html as html_lib
import re
import tomllib
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from mailflow.classification.catalogue import Product, load_catalogue
from mailflow.classification.taxonomy import CATEGORIES, DOCUMENT_KINDS
from mailflow.domain import Action
from mailflow.replies.compose import LANGUAGES, REPLY_ACTIONS, OutgoingReply, ReplyComposer
from mailflow.settings import PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "templates"
CATALOGUE = load_catalogue(PROJECT_ROOT / "classifiers")
BOOKING = "https://stad.gent/afspraak"
CASE = "MIG-2026-000123"

# The one name of each service per reply language.
COUNTER = {"nl": "Loket Migratie", "fr": "Guichet Migration", "en": "Migration Counter"}
INFO_CENTRE = {"nl": "Infopunt Migratie", "fr": "Point Info Migration", "en": "Migration Information Centre"}
# Other names the counter has been given; none may appear in a reply body, in any language.
COUNTER_VARIANTS = [
    r"\bmigratieloket",
    r"\bmigratie[\s-]*balie",
    r"\bmigratie-loket",
    r"\bloket\s+migratie\s+(?:van\s+)?gent",
    r"\bmigratiedienst",
    r"\bdienst\s+migratie",
    r"\bbureau\s+(?:de\s+)?migration",
    r"\bguichet\s+(?:de\s+l[a']\s*|des\s+)?migrations?\b",
    r"\bservice\s+(?:de\s+l[a']\s*|des\s+)?migrations?",
    r"\bmigration\s+(?:office|desk|service|department)",
    r"\bghent\s+migration\s+counter",
]
SIGN_OFF = {"nl": "Stad Gent", "fr": "Ville de Gand", "en": "City of Ghent"}

INFORMAL = {
    # Dutch: every "je"-form (a word on its own, so "je's" and "kun je" count too) and the Flemish "ge/gij".
    "nl": re.compile(r"\b(?:je|jij|jou|jouw|jouwe|jezelf|jullie|ge|gij|gullie)\b", re.IGNORECASE),
    "fr": re.compile(r"\b(?:tu|ton|ta|tes|toi|te)\b|\bt['’](?=\w)", re.IGNORECASE),
}
# Ways of saying "we received your documents"; an email without attachments may not get any of them.
# (Singular "your … document" is left out: "your residence document" is something to bring, not a claim.)
RECEIVED_DOCUMENTS = {
    "nl": [
        r"\b(?:uw|je|jouw)\s+(?:\w+\s+)?(?:documenten|stukken|bijlagen)\b",
        r"\bontvangen\b[^.\n]*\b(?:documenten|document|stukken|bijlagen?)\b",
        r"\b(?:documenten|document|stukken|bijlagen?)\b[^.\n]*\bontvangen\b",
        r"\b(?:documenten|document|stukken)\s+die\s+u\s+(?:stuurde|meestuurde|toevoegde)",
    ],
    "fr": [
        r"\bvos\s+(?:\w+\s+)?(?:documents|pièces)\b",
        r"\bpièces?\s+jointes?\b",
        r"\breçu\b[^.\n]*\b(?:documents?|pièces?)\b",
        r"\b(?:documents?|pièces?)\b[^.\n]*\breçu",
        r"\b(?:documents?|pièces?)\s+(?:que\s+vous\s+avez\s+envoyé|envoyés?|joints?)\b",
    ],
    "en": [
        r"\byour\s+(?:\w+\s+)?(?:documents|attachments?)\b",
        r"\breceived\b[^.\n]*\b(?:documents?|attachments?)\b",
        r"\b(?:documents?|attachments?)\b[^.\n]*\breceived\b",
        r"\b(?:documents?|attachments?)\s+(?:you\s+)?(?:sent|attached)\b",
    ],
}
# Ids of categories and document kinds that no resident would write (plain words like "passport" aside).
INTERNAL_IDS = sorted(i for i in {*CATEGORIES, *DOCUMENT_KINDS} if re.search(r"[_\d]", i))


def channel(product: Product, attached: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The action and missing documents ``decide`` gives this product for these attachments."""
    required = set(product.required_documents)
    if product.action is Action.FILE and required and not required & set(attached):
        return Action.REQUEST_DOCUMENTS.value, product.required_documents
    return product.action.value, ()


def cases() -> list[tuple[str, str, tuple[str, ...]]]:
    found = []
    for product in CATALOGUE:
        if not product.action.replies:
            continue
        attachments: list[tuple[str, ...]] = [()]
        if product.required_documents:
            attachments.append((product.required_documents[0],))
        for language in LANGUAGES:
            for attached in attachments:
                found.append((product.category, language, attached))
    return found


CASES = cases()


def case_id(case: tuple[str, str, tuple[str, ...]]) -> str:
    category, language, attached = case
    return f"{category}-{language}-{'+'.join(attached) or 'no_attachment'}"


@pytest.fixture(scope="module")
def composer() -> ReplyComposer:
    return ReplyComposer(
        TEMPLATES,
        from_address="Loket Migratie Gent <migratie@stad.gent>",
        message_id_domain="stad.gent",
        clock=lambda: datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    )


def render(
    composer: ReplyComposer, category: str, language: str, action: str, missing: tuple[str, ...]
) -> OutgoingReply:
    return composer.compose(
        action=action,
        language=language,
        to_address="amina@example.org",
        to_name="Amina El Idrissi",
        original_subject="Vraag / question",
        original_message_id="<abc123@mail.example.org>",
        original_references=[],
        case_ref=CASE if action in ("file", "request_documents") else None,
        product=CATALOGUE.reply_context(category, language, booking_base_url=BOOKING),
        missing_documents=missing,
        idempotency_key=f"wording:{category}:{language}:{action}",
    )


def bodies(reply: OutgoingReply) -> tuple[str, str]:
    """The plain-text part, and the HTML part's visible body text (tags out, entities decoded)."""
    message = message_from_bytes(reply.data, policy=policy.default)
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    markup = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    body = markup.split("<body", 1)[1].split(">", 1)[1].split("</body>", 1)[0]
    visible = html_lib.unescape(re.sub(r"<[^>]+>", " ", body))
    return text, visible


def without_links(body: str) -> str:
    return re.sub(r"(?:https?://|mailto:)\S+", " ", body)


def words(body: str) -> list[str]:
    return re.findall(r"\w+", without_links(body).lower())


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_reply_wording(composer: ReplyComposer, case: tuple[str, str, tuple[str, ...]]) -> None:
    category, language, attached = case
    action, missing = channel(CATALOGUE.product(category), attached)
    reply = render(composer, category, language, action, missing)
    assert reply.language == language
    text, visible = bodies(reply)

    for part, body in (("text", text), ("html", visible)):
        where = f"{case_id(case)} ({action}, {part})"
        plain = without_links(body)
        # The counter's one name, in the signature at least, and no other name for it.
        assert re.search(rf"^\s*{COUNTER[language]}\s*$", body, re.MULTILINE), f"{where}: no signature"
        assert SIGN_OFF[language] in body, where
        for name in (COUNTER[language], INFO_CENTRE[language]):
            spelled = {m.group(0) for m in re.finditer(re.escape(name), plain, re.IGNORECASE)}
            assert spelled <= {name}, f"{where}: {sorted(spelled)} instead of {name!r}"
        for variant in COUNTER_VARIANTS:
            for found in re.finditer(variant, plain, re.IGNORECASE):
                assert found.group(0) == COUNTER[language], f"{where}: {found.group(0)!r}"
        for other in LANGUAGES:
            if other != language:
                assert COUNTER[other] not in plain, f"{where}: the {other} name of the counter"
                assert INFO_CENTRE[other] not in plain, f"{where}: the {other} name of the Information Centre"
        if action == "redirect_info":
            assert INFO_CENTRE[language] in plain, where
        # Formal Dutch and French.
        if language in INFORMAL:
            informal = INFORMAL[language].findall(plain)
            assert not informal, f"{where}: informal {informal}"
        # No claim about documents the email did not carry.
        if not attached:
            for claim in RECEIVED_DOCUMENTS[language]:
                found = re.search(claim, plain, re.IGNORECASE)
                assert not found, f"{where}: claims documents were received: {found.group(0)!r}"
        # No internal ids, codes or template leftovers.
        for internal in INTERNAL_IDS:
            assert not re.search(rf"\b{internal}\b", plain), f"{where}: internal id {internal!r}"
        assert "{{" not in body and "{%" not in body and "None" not in plain, where

    # The plain text and the HTML say the same, word for word.
    assert words(text) == words(visible), case_id(case)


def test_every_reply_template_is_covered_in_every_language() -> None:
    rendered = {(channel(CATALOGUE.product(c), a)[0], lang) for c, lang, a in CASES}
    assert rendered == {(action, lang) for action in REPLY_ACTIONS for lang in LANGUAGES}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "category", [p.category for p in CATALOGUE if p.action is Action.FILE], ids=lambda c: c
)
def test_a_file_reply_never_claims_documents(composer: ReplyComposer, category: str, language: str) -> None:
    """Staff may choose ``file`` for an email without attachments: the reply cannot tell, so never claims."""
    text, visible = bodies(render(composer, category, language, "file", ()))
    for body in (text, visible):
        for claim in RECEIVED_DOCUMENTS[language]:
            found = re.search(claim, without_links(body), re.IGNORECASE)
            assert not found, f"{category} ({language}): {found.group(0)!r}"


@pytest.mark.parametrize("action", ["online", "file"])
def test_other_languages_get_english_under_a_formal_dutch_line(composer: ReplyComposer, action: str) -> None:
    """taxonomy.md, "Reply language": English, with a Dutch line on top."""
    category = "departure_permanent" if action == "online" else "switch_c_d"
    reply = render(composer, category, "tr", action, ())
    message = message_from_bytes(reply.data, policy=policy.default)
    assert reply.language == "en"
    assert message["Content-Language"] == "en, nl"
    text, visible = bodies(reply)
    notice = text.splitlines()[0]
    assert "Engels" in notice and not INFORMAL["nl"].search(notice), notice
    assert text.splitlines()[1] == ""
    assert text.splitlines()[2] == "Dear Amina El Idrissi,"
    assert visible.split()[: len(notice.split())] == notice.split()
    assert re.search(rf"^{COUNTER['en']}$", text, re.MULTILINE)
    # The product's texts are the English ones, like the rest of the reply.
    assert CATALOGUE.product(category).title["en"] in text


def test_phrases_and_document_names_are_formal() -> None:
    """What every reply shares, checked at the source as well as in the replies above."""
    replies = TEMPLATES / "replies"
    phrases = tomllib.loads((replies / "phrases.toml").read_text("utf-8"))
    documents = tomllib.loads((replies / "documents.toml").read_text("utf-8"))
    for language, pattern in INFORMAL.items():
        for key, value in [*phrases[language].items(), *documents[language].items()]:
            assert not pattern.search(value), f"{language}.{key}: {value!r}"
    assert not INFORMAL["nl"].search(phrases["fallback"]["notice"])
    assert phrases["fallback"]["language"] == "en" and phrases["fallback"]["notice_language"] == "nl"
