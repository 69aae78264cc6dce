"""mask() and the logging filter that applies it to every log record."""

from __future__ import annotations

import io
import logging
import random
import time
from collections.abc import Iterator

import pytest

from mailflow.identifiers import mask
from mailflow.logging_filter import MaskingFilter, install_masking

TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"


def nrn(yy: int, mm: int, dd: int, serial: int) -> str:
    first9 = f"{yy:02d}{mm:02d}{dd:02d}{serial:03d}"
    digits = f"{first9}{97 - int(first9) % 97:02d}"
    return f"{digits[0:2]}.{digits[2:4]}.{digits[4:6]}-{digits[6:9]}.{digits[9:]}"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("RRN 85.07.30-033.28.", "RRN **.**.**-***.28."),
        ("mijn rrn 850730 033 28 groeten", "mijn rrn ****** *** 28 groeten"),
        ("NN:85073003328", "NN:*********28"),
        # 900 101 024 is a multiple of 97: check digits 97
        ("numéro national 90.01.01-024.97", "numéro national **.**.**-***.97"),
        # a BIS number (month + 40)
        (f"BIS {nrn(81, 43, 14, 57)}", f"BIS **.**.**-***.{nrn(81, 43, 14, 57)[-2:]}"),
        # a typo in the check digits is still a national number
        ("Rijksregisternummer 85.07.30-033.61 terug", "Rijksregisternummer **.**.**-***.61 terug"),
        ("kaart 591-1917064-58 ok", "kaart ***-*******-58 ok"),
        ("card 591191706458", "card **********58"),
        ("Carte A n° B 0987654 97", "Carte A n° B ******* 97"),
    ],
)
def test_numbers_keep_their_layout_and_last_two_digits(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mijn pincode is 1234", "mijn pincode is ****"),
        ("PIN: 1234, PUK: 12345678", "PIN: ****, PUK: ********"),
        ("PIN/PUK 1234 / 87654321 ontvangen", "PIN/PUK **** / ******** ontvangen"),
        ("mon code PIN est 4321 et le code PUK 98765432.", "mon code PIN est **** et le code PUK ********."),
        ("les codes PIN et PUK : 0000 et 11112222", "les codes PIN et PUK : **** et ********"),
        ("My PIN code = 246810", "My PIN code = ******"),
        ("pin-code: 9876", "pin-code: ****"),
    ],
)
def test_pin_and_puk_codes_are_hidden(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "Ik heb mijn pin en puk code nog altijd niet ontvangen sinds 2025.",
        "Postcode 9000 Gent",
        "Use code MIGRATION20 for 20% off",
        "PIN 2 keer fout ingegeven",
        "dossier MIG-2026-004410 en MIG-2026-004411",
        "code MIG-2026-004410",
        "Bel 0485 12 34 56 of +32 485 12 34 56 of 09 265 04 00 of +32 9 266 71 11",
        "IBAN BE71 0961 2345 6769, BE71096123456769, btw BE 0440.966.354",
        "pakket 3232 0000 1234 5678, booking ref 4471-2283",
        "afspraak op 12/03/2026 om 9u, of 12 maart",
        "Bijlage 35 vervalt op 16 maart 2026",
    ],
)
def test_what_is_not_personal_is_left_alone(text: str) -> None:
    assert mask(text) == text


def test_case_references_stay_readable_next_to_masked_numbers() -> None:
    text = "Dossier MIG-2026-004410 (RRN 85.07.30-033.28), pincode 1234"
    assert mask(text) == "Dossier MIG-2026-004410 (RRN **.**.**-***.28), pincode ****"


def test_configurable_case_prefix_is_left_alone() -> None:
    assert mask("ref WIB-2026-118337", case_prefix="WIB") == "ref WIB-2026-118337"


def test_mrz_lines_are_hidden_entirely() -> None:
    text = f"Scan van paspoort:\n{TD3}\nEinde"
    masked = mask(text)
    assert masked.splitlines()[0] == "Scan van paspoort:" and masked.splitlines()[-1] == "Einde"
    assert masked.splitlines()[1:3] == ["*" * 44, "*" * 44]


def test_a_damaged_mrz_line_is_hidden_too() -> None:
    text = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<< (rest unreadable)"
    assert mask(text) == "*" * 35 + " (rest unreadable)"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Date of birth: 14/05/1990", "Date of birth: **/**/****"),
        ("geboren op 3 maart 1987 in Gent", "geboren op * ***** **** in Gent"),
        ("née le 1er avril 1992", "née le *** ***** ****"),
        ("Kwame Mensah, born 03/02/1987", "Kwame Mensah, born **/**/****"),
        ("geb. 1/2/1985 te Gent", "geb. */*/**** te Gent"),
        ("né(e) le 01.02.1985", "né(e) le **.**.****"),
    ],
)
def test_dates_of_birth_are_hidden_other_dates_not(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_masking_keeps_length_and_is_idempotent() -> None:
    text = (
        "Beste, NN 85.07.30-033.28, kaart 591-1917064-58, PIN 1234, geboren 14/05/1990,\n"
        f"dossier MIG-2026-004410, afspraak 12 maart 2026.\n{TD3}\n"
    )
    once = mask(text)
    assert len(once) == len(text)
    assert mask(once) == once
    for secret in ("85.07.30-033", "1917064", "1234", "14/05/1990", "ERIKSSON", "L898902C3"):
        assert secret not in once
    assert "MIG-2026-004410" in once and "12 maart 2026" in once


def test_no_generated_number_survives() -> None:
    rng = random.Random(1)
    for _ in range(300):
        number = nrn(rng.randrange(100), rng.randint(1, 12), rng.randint(1, 28), rng.randint(1, 997))
        compact = number.replace(".", "").replace("-", "")
        for written in (number, compact, f"{compact[:6]} {compact[6:9]} {compact[9:]}"):
            masked = mask(f"mijn nummer: {written}.")
            assert compact[:9] not in masked.replace(".", "").replace("-", "").replace(" ", "")
            assert masked.endswith(f"{compact[-2:]}.")


# --- logging ----------------------------------------------------------------------------------------


def _uninstall(logger: logging.Logger) -> None:
    # pytest's own capture handlers can sit on these loggers too: leave them as they were
    for handler in logger.handlers:
        for f in [f for f in handler.filters if isinstance(f, MaskingFilter)]:
            handler.removeFilter(f)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    logger = logging.getLogger("mailflow.test_masking")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    yield logger, stream
    _uninstall(logger)
    logger.removeHandler(handler)


def test_log_arguments_are_masked(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    install_masking(logger)
    logger.info("message %s: NRN %s, PIN %d", "m-42", "85.07.30-033.28", 1234)
    assert stream.getvalue() == "INFO message m-42: NRN **.**.**-***.28, PIN ****\n"


def test_record_message_is_replaced_and_args_cleared() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "NN %s", ("85.07.30-033.28",), None)
    assert MaskingFilter().filter(record)
    assert record.msg == "NN **.**.**-***.28" and record.args is None
    assert record.getMessage() == "NN **.**.**-***.28"


def test_unformattable_arguments_never_pass_raw(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    install_masking(logger)
    logger.info("NN 85.07.30-033.28 %s %s", "only one")
    assert "85.07.30-033" not in stream.getvalue() and "**.**.**-***.28" in stream.getvalue()


def test_tracebacks_are_masked(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    install_masking(logger)
    try:
        raise ValueError("bad number 85.07.30-033.28")
    except ValueError:
        logger.exception("failed for message m-42")
    output = stream.getvalue()
    assert "Traceback" in output and "ValueError: bad number **.**.**-***.28" in output
    assert "85.07.30-033" not in output


def test_child_loggers_are_masked_through_the_handler(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    install_masking(logger)
    logging.getLogger("mailflow.test_masking.child").warning("kaart 591-1917064-58")
    assert stream.getvalue() == "WARNING kaart ***-*******-58\n"


def test_install_is_idempotent(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, _ = captured
    install_masking(logger)
    install_masking(logger)
    for handler in logger.handlers:
        assert sum(isinstance(f, MaskingFilter) for f in handler.filters) == 1


def test_install_defaults_to_the_root_logger() -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        masking = install_masking()
        assert masking in handler.filters
        logging.getLogger("mailflow.somewhere").info("PUK 12345678")
        assert stream.getvalue() == "PUK ********\n"
    finally:
        _uninstall(root)
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.parametrize(
    "text",
    [
        "pin" + " :" * 40 + " x",  # once took exponential time in the PIN pattern
        "PIN en " * 2000 + "1234",
        "85.07.30-033.28 " * 5000,
        "code " + "1234 " * 5000,
        "A<" * 20000,
    ],
)
def test_pathological_input_stays_fast(text: str) -> None:
    started = time.perf_counter()
    mask(text)
    assert time.perf_counter() - started < 2.0
