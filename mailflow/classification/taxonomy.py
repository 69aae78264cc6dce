"""The ids of the request taxonomy (docs: ``taxonomy.md``): the one place in code that lists them.

Which channel a category is handled through is a business rule kept in the product catalogue
(``classifiers/products/*.toml``), not here: this module only names what exists.
"""

from __future__ import annotations

# Categories in the order of the taxonomy's tables.
EMAIL_CATEGORIES: tuple[str, ...] = (
    "return_report",
    "annex35_extension",
    "annex35_appeal",
    "switch_eplus_fplus",
    "switch_c_d",
    "identity_change",
    "cgrs_papers",
    "annex49_request",
    "long_stay_registration",
    "appointment_cancel",
)
BOOKING_CATEGORIES: tuple[str, ...] = (
    "card_renewal",
    "card_lost",
    "card_defect",
    "card_pickup",
    "child_card",
    "guarantee_3bis",
    "orange_card",
    "refugee_card",
    "single_permit_card",
    "departure_temporary",
    "short_stay_registration",
)
ONLINE_CATEGORIES: tuple[str, ...] = ("departure_permanent",)
INFO_CATEGORIES: tuple[str, ...] = (
    "info_short_stay",
    "info_eu_citizen",
    "info_students",
    "info_single_permit",
    "info_family_reunification",
    "info_asylum",
    "info_regularisation",
    "info_permanent_residence",
    "info_departure_return",
    "info_prolong_stay",
    "info_decision",
)
MACHINE_CATEGORIES: tuple[str, ...] = ("auto_reply", "bounce", "spam")
OTHER_CATEGORIES: tuple[str, ...] = ("other_service", "status_followup", "unclear", *MACHINE_CATEGORIES)

# What a resident asks the counter to do (as opposed to a question for the Information Centre).
REQUEST_CATEGORIES: tuple[str, ...] = EMAIL_CATEGORIES + BOOKING_CATEGORIES + ONLINE_CATEGORIES
CATEGORIES: tuple[str, ...] = REQUEST_CATEGORIES + INFO_CATEGORIES + OTHER_CATEGORIES

UNCLEAR = "unclear"
STATUS_FOLLOWUP = "status_followup"
OTHER_SERVICE = "other_service"

# The channels a product can be configured with; ``request_documents`` is derived by ``decide``.
PRODUCT_ACTIONS: frozenset[str] = frozenset(
    {"file", "book", "online", "redirect_info", "redirect_other", "triage", "ignore"}
)

DOCUMENT_KINDS: frozenset[str] = frozenset(
    {
        "passport",
        "passport_stamp",
        "identity_card",
        "residence_card",
        "orange_card",
        "boarding_pass",
        "annex18",
        "annex35",
        "appeal_proof",
        "annex12_police",
        "annex26",
        "annex46",
        "annex49",
        "annex3bis",
        "cgrs_decision",
        "birth_certificate",
        "marriage_certificate",
        "court_decision",
        "naturalisation_decree",
        "employment_contract",
        "rental_contract",
        "payslip",
        "household_composition",
        "pin_puk_letter",
        "invitation_letter",
        "order_to_leave",
        "decision_letter",
        "photo",
        "other",
    }
)

# Every template and every product text exists in these languages.
REPLY_LANGUAGES: tuple[str, ...] = ("nl", "fr", "en")
# Languages a cue table may be written for; ``any`` holds language-neutral cues (ids, acronyms).
CUE_LANGUAGES: frozenset[str] = frozenset(
    {"any", "nl", "fr", "en", "de", "tr", "ar", "es", "pl", "ro", "pt", "it", "bg", "ru", "uk"}
)


# What an email asks, whatever it is about: the intent of each category.
INTENTS: tuple[str, ...] = ("request", "question", "status", "cancel", "nothing", "machine")


def intent_of(category: str) -> str:
    if category in INFO_CATEGORIES:
        return "question"
    if category in MACHINE_CATEGORIES:
        return "machine"
    return {STATUS_FOLLOWUP: "status", UNCLEAR: "nothing", "appointment_cancel": "cancel"}.get(
        category, "request"
    )
