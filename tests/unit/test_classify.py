"""Behaviour of the cue classifier on emails written for these tests (not taken from the corpus)."""

from __future__ import annotations

import pytest

from mailflow.classification.catalogue import load_catalogue
from mailflow.classification.persons import named
from mailflow.classification.rules import classify
from mailflow.domain import Screening
from mailflow.settings import PROJECT_ROOT

VERIFIED = Screening(machine_category=None, sender_verdict="pass")


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(PROJECT_ROOT / "classifiers")


def run(catalogue, text, subject="", documents=(), *, screening=VERIFIED, in_reply_to_ours=False):
    return classify(text, subject, list(documents), screening, catalogue, in_reply_to_ours=in_reply_to_ours)


SINGLE_REQUESTS = [
    # (category, subject, text, documents)
    (
        "return_report",
        "terug in Gent",
        "Dag, ik ben vorige week teruggekomen na vijf maanden in Ghana en wil mijn terugkeer melden. "
        "In bijlage mijn instapkaart.",
        ["boarding_pass"],
    ),
    (
        "return_report",
        "Retour",
        "Bonjour, je suis rentrée en Belgique le 3 mars après 6 mois au Cameroun. Je souhaite déclarer "
        "mon retour, voici le cachet d'entrée dans mon passeport.",
        ["passport_stamp"],
    ),
    (
        "annex35_extension",
        "prolongation",
        "Bonjour, mon annexe 35 expire la semaine prochaine et le recours au CCE est toujours pendant. "
        "Pouvez-vous la prolonger ? Ci-joint mon annexe 35.",
        ["annex35"],
    ),
    (
        "annex35_appeal",
        "annex 35",
        "Dear Sir, my lawyer lodged a suspensive appeal with the Council for Alien Law Litigation "
        "yesterday. I need an annex 35. Attached is the receipt of the appeal.",
        ["appeal_proof"],
    ),
    (
        "switch_c_d",
        "L card",
        "Hello, I have lived in Ghent for six years with a B card and I would like to apply for the "
        "long-term resident card (L card).",
        [],
    ),
    (
        "switch_eplus_fplus",
        "duurzaam verblijf",
        "Beste, ik ben Spaanse en woon al 6 jaar in Gent. Graag vraag ik het duurzaam verblijf aan "
        "(EU+ kaart).",
        [],
    ),
    (
        "identity_change",
        "nouveau nom",
        "Bonjour, suite à mon mariage mon nom a changé. Je vous envoie mon acte de mariage pour "
        "mettre à jour mes données.",
        ["marriage_certificate"],
    ),
    (
        "cgrs_papers",
        "CGVS",
        "Hallo, hierbij het attest dat ik van het CGVS kreeg, zodat u mijn gegevens kan aanpassen.",
        ["cgrs_decision"],
    ),
    (
        "annex49_request",
        "annexe 49",
        "Bonjour, mon employeur a demandé le renouvellement de mon permis unique, la décision n'est pas "
        "encore prise. Pouvez-vous me délivrer une annexe 49 ?",
        [],
    ),
    (
        "long_stay_registration",
        "registration",
        "Hi, I am Portuguese and moved to Ghent last month for a job. I want to register for a stay of "
        "more than three months. Attached my identity card.",
        ["identity_card"],
    ),
    (
        "appointment_cancel",
        "afspraak",
        "Goeiemorgen, ik kan morgen niet komen op mijn afspraak van 10u. Mag die geannuleerd worden?",
        [],
    ),
    (
        "card_renewal",
        "renewal",
        "Hello, I received the letter from the city: my residence card expires in May and I have to "
        "renew it. When can I come?",
        ["invitation_letter"],
    ),
    (
        "card_lost",
        "portefeuille volé",
        "Bonjour, on m'a volé mon portefeuille avec ma carte de séjour. J'ai fait la déclaration à la "
        "police. Je voudrais un rendez-vous pour une nouvelle carte.",
        [],
    ),
    (
        "card_defect",
        "kaart",
        "Hallo, de chip van mijn verblijfskaart werkt niet meer. Kan ik een nieuwe kaart aanvragen?",
        [],
    ),
    (
        "card_pickup",
        "PIN letter",
        "Hi, I got the letter with my PIN and PUK codes today. Do I need an appointment to pick up my card?",
        [],
    ),
    (
        "child_card",
        "kaart voor onze dochter",
        "Dag, wij willen een verblijfskaart aanvragen voor onze dochter van 5 jaar. Wij hebben allebei "
        "een B-kaart.",
        [],
    ),
    (
        "guarantee_3bis",
        "3bis",
        "Good morning, I want to have my signature on the annex 3bis legalised so my parents can visit. "
        "Can I book an appointment?",
        [],
    ),
    (
        "orange_card",
        "carte orange",
        "Bonjour, je suis demandeur d'asile et ma carte orange expire vendredi. Je voudrais un "
        "rendez-vous pour la prolonger.",
        [],
    ),
    (
        "refugee_card",
        "erkend",
        "Hallo, ik ben vorige maand erkend als vluchteling door het CGVS. Ik wil een afspraak voor mijn "
        "verblijfskaart.",
        [],
    ),
    (
        "single_permit_card",
        "annex 46",
        "Hello, I received my annex 46 and arrived with a D visa last week. How do I book the "
        "appointment for my residence card?",
        [],
    ),
    (
        "departure_temporary",
        "vertrek",
        "Beste, ik vertrek in april voor zeven maanden naar Marokko en wil mijn tijdelijk vertrek melden.",
        [],
    ),
    (
        "short_stay_registration",
        "déclaration d'arrivée",
        "Bonjour, mon père est arrivé hier du Sénégal et reste un mois chez nous. Il doit faire sa "
        "déclaration d'arrivée. Quand pouvons-nous venir ?",
        [],
    ),
    (
        "departure_permanent",
        "départ",
        "Bonjour, je quitte définitivement la Belgique le mois prochain. Que dois-je faire ?",
        [],
    ),
    (
        "other_service",
        "adres",
        "Hallo, ik ben verhuisd binnen Gent. Hoe geef ik mijn nieuw adres door?",
        [],
    ),
    (
        "other_service",
        "renewal",
        "Hello, I live in Destelbergen and my residence card expires next month. Can I renew it in Ghent?",
        [],
    ),
    (
        "status_followup",
        "no answer",
        "Hello, I already sent my documents three weeks ago and still no answer. Is my file complete?",
        [],
    ),
    (
        "info_permanent_residence",
        "K kaart?",
        "Goeiedag, wat zijn de voorwaarden om een K-kaart te krijgen? Moet ik een inburgeringsattest hebben?",
        [],
    ),
    (
        "info_family_reunification",
        "family",
        "Hi, my husband lives in Nigeria. What are the conditions for family reunification and how much "
        "do I need to earn?",
        [],
    ),
    (
        "info_regularisation",
        "9bis",
        "Bonjour, je vis en Belgique sans papiers depuis 7 ans. Est-ce que je peux demander une "
        "régularisation 9bis ?",
        [],
    ),
    (
        "info_decision",
        "brief",
        "Hallo, ik kreeg een bevel om het grondgebied te verlaten. Wat betekent dit voor mij?",
        [],
    ),
    (
        "info_departure_return",
        "abroad",
        "Hello, if I stay 14 months in India for my mother, do I lose my right of residence?",
        [],
    ),
    (
        "info_students",
        "studies",
        "Bonjour, ma nièce veut venir étudier à l'université de Gand. Quelles sont les conditions ?",
        [],
    ),
]


@pytest.mark.parametrize(
    ("category", "subject", "text", "documents"),
    SINGLE_REQUESTS,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(SINGLE_REQUESTS)],
)
def test_single_requests(catalogue, category, subject, text, documents):
    result = run(catalogue, text, subject, documents)
    assert result.category == category, result.reasons
    assert result.intents == ()
    assert 0.0 <= result.confidence <= 1.0


def test_a_question_is_for_the_information_centre_and_a_request_for_the_product(catalogue):
    question = run(catalogue, "Can I get an L card after five years? What are the conditions?")
    request = run(catalogue, "I would like to apply for an L card, please start my application.")
    assert question.category == "info_permanent_residence"
    assert request.category == "switch_c_d"


def test_asking_how_to_get_it_done_is_a_request(catalogue):
    result = run(
        catalogue, "Kan ik de verlenging van mijn bijlage 35 per mail aanvragen? Het beroep loopt nog."
    )
    assert result.category == "annex35_extension"


def test_bijlage_alone_is_an_email_attachment(catalogue):
    result = run(catalogue, "Beste, in bijlage vindt u het document. Groeten")
    assert result.category == "unclear"


def test_nothing_asked_is_unclear_with_low_confidence(catalogue):
    result = run(catalogue, "Thank you very much!", "thanks")
    assert result.category == "unclear"
    assert result.confidence < 0.55
    assert result.reasons == ("no cue matched",)


def test_more_evidence_gives_more_confidence(catalogue):
    weak = run(catalogue, "Mijn kaart is kwijt.")
    strong = run(
        catalogue, "Mijn verblijfskaart is gestolen, ik heb aangifte gedaan bij de politie.", "gestolen"
    )
    assert weak.category == strong.category == "card_lost"
    assert strong.confidence > weak.confidence


def test_machine_mail_from_screening_wins_outright(catalogue):
    bounce = Screening(machine_category="bounce", sender_verdict="none")
    result = run(catalogue, "I would like to renew my residence card", screening=bounce)
    assert result.category == "bounce"
    assert result.confidence >= 0.95


def test_machine_mail_recognised_by_its_text(catalogue):
    result = run(
        catalogue, "I am out of office until 20 March with limited access to email.", "Out of office"
    )
    assert result.category == "auto_reply"


def test_several_products_are_several_intents(catalogue):
    result = run(
        catalogue,
        "Hello, I lost my residence card last week. I also want to report a temporary departure: I leave "
        "for Brazil for six months in May.",
    )
    assert set(result.intents) == {"card_lost", "departure_temporary"}
    assert result.category in result.intents


def test_context_is_not_a_second_request(catalogue):
    result = run(
        catalogue,
        "Beste, ik ben erkend als vluchteling en mijn oranje kaart vervalt binnenkort. Ik wil een "
        "afspraak voor mijn verblijfskaart.",
    )
    assert result.category == "refugee_card"
    assert result.intents == ()


@pytest.mark.parametrize(
    ("text", "category", "persons"),
    [
        ("Ik wil een K-kaart aanvragen voor mij en mijn vrouw.", "switch_c_d", 2),
        ("Je voudrais faire la déclaration d'arrivée pour moi et mon fils.", "short_stay_registration", 2),
        (
            "I want to register me, my wife and my daughter for more than three months.",
            "long_stay_registration",
            3,
        ),
    ],
)
def test_a_request_for_several_persons_lists_one_intent_per_person(catalogue, text, category, persons):
    result = run(catalogue, text)
    assert result.category == category
    assert result.intents == (category,) * persons


@pytest.mark.parametrize(
    ("text", "persons"),
    [
        ("Хочу записаться для меня и моей жены.", 2),
        ("Запись для меня и моих детей, пожалуйста.", 3),
        ("Для мене і моєї дружини потрібна картка.", 2),
        ("Карта за мен и моята съпруга.", 2),
        ("Хочу записаться, моя жена уже была у вас.", 1),
        ("Мы оба хотим продлить наши карточки.", 2),
        ("Wir beide möchten unsere Karten verlängern.", 2),
        ("Wir beide waren im Urlaub, ich möchte meine Karte verlängern.", 1),
    ],
)
def test_persons_named_in_other_languages(catalogue, text, persons):
    assert named(text, catalogue.markers) == persons


def test_persons_named_in_the_subject_are_not_counted_again_in_the_text(catalogue):
    """The text opens with the subject: "voor mij en mijn vrouw" there and "mijn vrouw" in the
    greeting below it are the same two persons."""
    text = (
        "K-kaart voor mij en mijn vrouw\n\nGoeiedag, mijn vrouw Yasmina en ik willen een K-kaart aanvragen."
    )
    result = run(catalogue, text, "K-kaart voor mij en mijn vrouw")
    assert result.intents == ("switch_c_d",) * 2


@pytest.mark.parametrize(
    ("text", "counted"),
    [
        ("Wij willen de verblijfskaarten van onze drie kinderen laten vernieuwen.", 3),
        ("We kregen 3 PIN brieven en willen de kaarten komen afhalen.", 3),
        ("Nous voulons renouveler nos cartes, voici nos cinq lettres de convocation.", 5),
        ("Ik wil mijn kaart vernieuwen, ze vervalt op 3 maart 2026.", 0),
        ("My card expires on the 4th of May, I want to renew it.", 0),
        ("After 5 years of legal residence I want my permanent card.", 0),
        ("Ik wil mijn kaart vernieuwen, ik stuur 3 bijlagen mee.", 0),
        ("Ik wil mijn kaart van 5 jaar vernieuwen.", 0),
        ("Wij willen alle drie onze kaarten laten vernieuwen.", 3),
        ("We would like to renew the cards of all four of us.", 4),
        ("Nous sommes trois et voulons renouveler nos cartes.", 3),
        ("Ik wil mijn kaart vernieuwen, ik ben alle drie maanden in het buitenland geweest.", 0),
        ("Il nous faut trois nouvelles cartes, les nôtres ont été volées.", 3),
        ("In bijlage de instapkaarten van ons 3, we zijn terug.", 3),
        ("Wij waren met ons 2 maanden weg, ik wil mijn kaart vernieuwen.", 0),
        ("Wij willen met z'n drieën onze kaarten komen vernieuwen.", 3),
        ("Üçümüz için randevu istiyoruz.", 3),
        ("Нам нужно прийти втроём за картами.", 3),
        ("أرسلت لكم رسائل بطاقات أولادي الثلاثة.", 3),
        ("نريد موعدا يوم الاثنين لتجديد بطاقتي.", 0),
        ("Nous sommes très inquiets, ma carte expire bientôt.", 0),
        ("With all due respect, my card expired and I want a new one.", 0),
        ("Ik wil mijn kaart vernieuwen, ik was alle drie de maanden in Marokko.", 0),
        # In the other languages residents write in
        ("Хотим продлить карточки для наших троих детей.", 3),
        ("Нужна запись всем троим.", 3),
        ("Мы были в Украине три месяца, хочу продлить карточку.", 0),
        ("Искаме карти за трите си деца.", 3),
        ("Ми хочемо продовжити картки, нас троє.", 3),
        ("نحن أربعة أشخاص ونريد تجديد البطاقات.", 4),
        ("کارت اقامت برای سه نفر می خواهیم.", 3),
        ("Dört kişi için kart yenilemek istiyoruz.", 4),
        ("Duam të rinovojmë kartat për tre fëmijët tanë.", 3),
        ("Waxaan rabnaa kaararka saddex carruur ah.", 3),
    ],
)
def test_a_number_counts_the_persons_of_one_request(catalogue, text, counted):
    """A number before persons or the papers each person has counts persons; a date, a duration, a
    card's years or the attachments count nothing."""
    assert run(catalogue, text).persons == counted


def test_a_number_between_the_possessive_and_the_family_word_counts_them(catalogue):
    result = run(catalogue, "Ik wil een K-kaart aanvragen voor mij en mijn twee kinderen.")
    assert result.intents == ("switch_c_d",) * 3


def test_describing_the_family_is_not_a_request_for_each(catalogue):
    result = run(
        catalogue, "Ik en mijn man hebben een F-kaart. Ik wil een verblijfskaart voor onze zoon van 3 jaar."
    )
    assert result.category == "child_card"
    assert result.intents == ()


@pytest.mark.parametrize(
    "text",
    [
        "Ik wil een Kids-ID voor mijn dochtertje van 4 (Belg). Kan dat bij jullie?",
        "Mon mari est belge et nous voulons une carte pour notre fils de 2 ans.",
        "Our daughter has a Belgian passport, but we would like the card for children under 12.",
    ],
)
def test_a_belgian_parent_or_child_holds_a_childs_card_for_a_person(catalogue, text):
    assert "child_card" in run(catalogue, text).held


@pytest.mark.parametrize(
    "text",
    [
        "De school vraagt een Belgisch verblijfsdocument voor onze zoon van 5 jaar (Pools paspoort).",
        "For our son's card: we got his visa at the Belgian embassy in Accra.",
    ],
)
def test_belgian_alone_holds_nothing(catalogue, text):
    assert run(catalogue, text).held == ()


def test_a_question_next_to_a_request_is_a_second_request(catalogue):
    result = run(
        catalogue,
        "Ik wil een afspraak om de bijlage 3bis voor mijn moeder te laten legaliseren. Ook werd het visum "
        "van mijn zus geweigerd, wat kunnen we doen?",
    )
    assert set(result.intents) == {"guarantee_3bis", "info_short_stay"}
    assert result.category == "guarantee_3bis"


def test_phone_typed_text_without_accents(catalogue):
    result = run(catalogue, "bjr je veux un rdv svp ma carte de sejour est perdue", "carte perdue")
    assert result.category == "card_lost"


def test_a_reply_in_our_thread_is_read_with_our_subject(catalogue):
    result = run(
        catalogue,
        "Hier is de foto.",
        "Re: Melding van terugkeer - ontbrekende documenten",
        ["passport_stamp"],
        in_reply_to_ours=True,
    )
    assert result.category == "return_report"


def test_documents_add_evidence(catalogue):
    without = run(catalogue, "Hello, here is my document for the city.")
    with_annex = run(catalogue, "Hello, here is my document for the city.", documents=["annex35"])
    assert without.category == "unclear"
    assert with_annex.category == "annex35_extension"


def test_reasons_name_cues_not_personal_data(catalogue):
    result = run(catalogue, "Mijn verblijfskaart is gestolen. RRN 85.07.30-033.61, Jan Peeters, Kouter 1.")
    assert any("gestolen" in reason for reason in result.reasons)
    joined = " ".join(result.reasons)
    assert "85.07.30" not in joined and "Peeters" not in joined and "Kouter" not in joined
