"""ID number validation, pseudonyms and their keys (DOMAIN.md §3), and finding and
masking anything shaped like an ID number, however it is disguised."""

# ruff: noqa: RUF001 - digits and letters of other scripts are what these tests are about

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from databus.errors import ConfigurationError
from databus.identity import (
    ID_LIKE,
    Pseudonymizer,
    birth_date_of,
    check_character,
    contains_id_number,
    mask_citizen_id,
    mask_id_like,
    normalise_citizen_id,
    normalise_text,
    pseudonym_key_id,
)
from databus.sim import Province, SimulationConfig

TODAY = dt.date(2026, 11, 26)
KEY_ONE = b"first-test-key-of-at-least-32-bytes"
KEY_TWO = b"second-test-key-of-at-least-32-bytes"


@pytest.mark.parametrize("vector", ["11010519491231002X", "440524188001010014"])
def test_domain_test_vectors_are_valid(vector: str) -> None:
    assert normalise_citizen_id(vector, today=TODAY) == vector
    assert check_character(vector[:17]) == vector[17]


def test_lower_case_x_is_normalised() -> None:
    assert normalise_citizen_id("11010519491231002x", today=TODAY) == "11010519491231002X"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("11010519491231002", "must be 18 characters"),
        ("1101051949123100XX", "17 digits followed by"),
        ("110105194913310025", "not a calendar date"),
        ("110105194902300028", "not a calendar date"),
        ("110105209912310023", "in the future"),
        ("110105194912310021", "check character does not match"),
        ("11010519491231002Y", "17 digits followed by"),
    ],
)
def test_invalid_numbers_are_rejected_with_a_reason(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        normalise_citizen_id(value, today=TODAY)
    assert value not in str(caught.value)


def _valid_ids() -> st.SearchStrategy[str]:
    return st.builds(
        lambda region, born, seq: (
            f"{region:06d}{born:%Y%m%d}{seq:03d}"
            + check_character(f"{region:06d}{born:%Y%m%d}{seq:03d}")
        ),
        st.integers(110000, 659999),
        st.dates(dt.date(1900, 1, 1), TODAY),
        st.integers(0, 999),
    )


@given(_valid_ids())
def test_every_generated_valid_number_passes(citizen_id: str) -> None:
    assert normalise_citizen_id(citizen_id, today=TODAY) == citizen_id


@given(_valid_ids(), st.integers(0, 16), st.integers(1, 9))
def test_changing_one_digit_breaks_the_check(citizen_id: str, position: int, delta: int) -> None:
    digit = (int(citizen_id[position]) + delta) % 10
    altered = citizen_id[:position] + str(digit) + citizen_id[position + 1 :]
    # MOD 11-2 detects every single-digit substitution; the date may break first.
    with pytest.raises(ValueError, match=r"check character|calendar date|future"):
        normalise_citizen_id(altered, today=TODAY)


@given(_valid_ids())
def test_birth_date_is_read_from_positions_7_to_14(citizen_id: str) -> None:
    assert birth_date_of(citizen_id).strftime("%Y%m%d") == citizen_id[6:14]


def test_person_ref_is_stable_keyed_and_26_base32_characters() -> None:
    first, second = Pseudonymizer(KEY_ONE), Pseudonymizer(KEY_TWO)
    ref = first.person_ref("11010519491231002X")
    assert ref == first.person_ref("11010519491231002X")
    assert ref != second.person_ref("11010519491231002X")
    assert len(ref) == 26
    assert set(ref) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def test_person_ref_matches_an_independent_hmac() -> None:
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    digest = hmac.new(KEY_ONE, b"440524188001010014", hashlib.sha256).digest()
    expected = base64.b32encode(digest).decode().rstrip("=")[:26]
    assert Pseudonymizer(KEY_ONE).person_ref("440524188001010014") == expected


@pytest.mark.parametrize("size", [0, 1, 16, 31])
def test_a_key_shorter_than_32_bytes_is_refused(size: int) -> None:
    with pytest.raises(ConfigurationError, match=f"is {size} bytes; it must be at least 32"):
        Pseudonymizer(b"k" * size)


def test_a_key_of_32_bytes_is_accepted() -> None:
    assert len(Pseudonymizer(b"k" * 32).person_ref("440524188001010014")) == 26


def test_the_key_id_is_16_hex_digits_of_a_labelled_sha256_and_not_the_key() -> None:
    expected = hashlib.sha256(b"databus pseudonym key id\0" + KEY_ONE).hexdigest()[:16]
    assert pseudonym_key_id(KEY_ONE) == expected
    assert Pseudonymizer(KEY_ONE).key_id == expected
    assert pseudonym_key_id(KEY_TWO) != expected
    assert len(expected) == 16
    assert int(expected, 16) >= 0
    assert KEY_ONE.hex()[:16] != expected


def test_masking_keeps_first_six_and_last_one() -> None:
    assert mask_citizen_id("11010519491231002X") == "110105***********X"
    assert mask_id_like('{"id": "440524188001010014", "n": 12}') == (
        '{"id": "440524***********4", "n": 12}'
    )


@given(st.binary(min_size=32, max_size=64), _valid_ids())
def test_person_ref_equals_the_textbook_construction(key: bytes, citizen_id: str) -> None:
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    digest = hmac.new(key, citizen_id.encode(), hashlib.sha256).digest()
    assert Pseudonymizer(key).person_ref(citizen_id) == base64.b32encode(digest).decode()[:26]


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_equals_the_textbook_formula(first17: str) -> None:
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    expected = "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]
    assert check_character(first17) == expected


# --- anything shaped like an ID number, however written -------------------------------

VECTOR = "37010219491231002X"


@pytest.mark.parametrize(
    "disguised",
    [
        pytest.param("370102 19491231 002X", id="spaces"),
        pytest.param("370102-1949-1231-002X", id="hyphens"),
        pytest.param("370102.1949.1231.002x", id="dots-lower-x"),
        pytest.param("370102/19491231/002X", id="slashes"),
        pytest.param("370102 - 1949 - 1231 - 002X", id="spaced-hyphens"),
        pytest.param("３７０１０２１９４９１２３１００２Ｘ", id="full-width"),
        pytest.param("370102\u200b19491231\u200b002X", id="zero-width-space"),
        pytest.param("3\u200c7\u200d0102\u206019491231\ufeff002X", id="joiners-and-bom"),
        pytest.param("370102\u00ad19491231002X", id="soft-hyphen"),
        pytest.param("370102\u00a019491231\u00a0002X", id="nbsp"),
        pytest.param("370102\u300019491231\u3000002X", id="ideographic-space"),
        pytest.param("٣٧٠١٠٢١٩٤٩١٢٣١٠٠٢X", id="arabic-indic"),
        pytest.param("३७०१०२१९४९१२३१००२X", id="devanagari"),
        pytest.param("370102１９４９1231\u2011002X", id="mixed"),
        pytest.param("370102194912310020", id="plain"),
        pytest.param("37010219491231002", id="first-17"),
        pytest.param("V-370102 19491231 002X", id="inside-a-code"),
        pytest.param("room 12 370102 19491231 002X", id="after-a-number"),
    ],
)
def test_disguised_id_numbers_are_found_and_masked(disguised: str) -> None:
    assert contains_id_number(disguised)
    masked = mask_id_like(disguised)
    assert not contains_id_number(masked), masked
    assert "370102" in masked
    assert "1949" not in normalise_text(masked)


@pytest.mark.parametrize(
    "code",
    [
        "C370102007", "PA-370102-0001", "E-2026-1182", "H370102001", "JNX", "RS3701-02",
        "M3701-17", "B370102-123", "TC-3701-12345678", "ET-0000000001", "DC-2026-00000001",
        "FR-2026-00000001", "FH370104", "V-H370102001-00000001", "E-C370102007-00000001",
        "0123456789abcdef0123456789abcdef", "1370102194912310020", "2026-03-02 10:15:00.123456",
        "published for the wrong person on 2026-03-02", "张三的住院记录", "Tel 0531-8877 6655",
    ],
)  # fmt: skip
def test_ordinary_codes_are_not_id_numbers(code: str) -> None:
    assert not contains_id_number(code)
    assert mask_id_like(code) == code


def test_every_code_of_a_simulated_province_passes() -> None:
    province = Province(SimulationConfig(seed=3, residents=300, days=30))
    records = [*province.roster(), *province.records()]
    codes = {
        value
        for record in records
        for name, value in record.values.items()
        if name != "citizen_id" and isinstance(value, str)
    }
    assert len(codes) > 100
    assert [code for code in codes if contains_id_number(code)] == []


def test_masking_keeps_the_text_around_as_written() -> None:
    text = "张三，身份证 ３７０１０２ １９４９１２３１ ００２Ｘ，已核对。"
    assert mask_id_like(text) == "张三，身份证 370102***********X，已核对。"
    assert mask_id_like("a 370102194912310020 b 440524188001010014") == (
        "a 370102***********0 b 440524***********4"
    )


def test_a_full_width_citizen_id_is_the_same_person() -> None:
    """Normalised first, so one resident written two ways gets one person_ref."""
    vector = "11010519491231002X"
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in vector)
    assert normalise_citizen_id(full_width, today=TODAY) == vector
    assert normalise_citizen_id("110105\u200b19491231002x", today=TODAY) == vector


_SEPARATORS = st.sampled_from([" ", "-", ".", "/", "_", ",", "\u00a0", "\u3000", "\u2013",
                               "\u2212", "\uff0d", "\u30fb"])  # fmt: skip
_INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"])
_DIGITS = {
    "ascii": "0123456789",
    "full-width": "０１２３４５６７８９",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "extended-arabic-indic": "۰۱۲۳۴۵۶۷۸۹",
    "devanagari": "०१२३४५६७८९",
    "bengali": "০১২৩৪৫৬৭৮৯",
    "mathematical-bold": "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",
}
_AROUND = st.text(st.characters(exclude_categories=("Nd", "No", "Nl", "Cs")), max_size=12)


@st.composite
def _disguised_ids(draw: st.DrawFn) -> tuple[str, str]:
    """(a valid ID number, the same written in disguise inside some other text)."""
    citizen_id = draw(_valid_ids())
    characters = []
    for position, character in enumerate(citizen_id):
        if character == "X":
            written = draw(st.sampled_from(["X", "x", "Ｘ", "ｘ"]))
        else:
            written = draw(st.sampled_from(sorted(_DIGITS.values())))[int(character)]
        gap = "" if position == 0 else "".join(draw(st.lists(_SEPARATORS, max_size=3)))
        hidden = "".join(draw(st.lists(_INVISIBLE, max_size=2)))
        characters.append(gap + hidden + written)
    before, after = draw(_AROUND), draw(_AROUND)
    return citizen_id, f"{before} {''.join(characters)} {after}"


@given(_disguised_ids())
@example(("37010219491231002X", " 370102 19491231 002X "))
def test_disguised_id_numbers_are_always_caught_and_masked(case: tuple[str, str]) -> None:
    citizen_id, text = case
    assert contains_id_number(text)
    masked = mask_id_like(text)
    assert not contains_id_number(masked)
    assert citizen_id[6:17] not in normalise_text(masked).replace(" ", "")


@given(
    st.from_regex(r"[A-Z]{1,3}-?[0-9]{1,9}(-[0-9]{1,7})?", fullmatch=True)
    | st.text(st.characters(codec="utf-8"), max_size=40)
)
def test_text_with_fewer_than_16_digits_is_never_an_id_number(code: str) -> None:
    digits = sum(1 for c in normalise_text(code) if c.isdecimal())
    if digits < 16:
        assert not contains_id_number(code)
        assert mask_id_like(code) == code


@given(st.text(max_size=60))
def test_masked_text_never_contains_an_id_number(text: str) -> None:
    assert not contains_id_number(mask_id_like(text))
    assert not ID_LIKE.search(normalise_text(mask_id_like(text)))
