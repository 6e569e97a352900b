"""ID number validation and pseudonyms (DOMAIN.md §3)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from databus.identity import (
    Pseudonymizer,
    birth_date_of,
    check_character,
    mask_citizen_id,
    mask_id_like,
    normalise_citizen_id,
)

TODAY = dt.date(2026, 11, 26)


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
    first, second = Pseudonymizer(b"key-one"), Pseudonymizer(b"key-two")
    ref = first.person_ref("11010519491231002X")
    assert ref == first.person_ref("11010519491231002X")
    assert ref != second.person_ref("11010519491231002X")
    assert len(ref) == 26
    assert set(ref) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def test_person_ref_matches_an_independent_hmac() -> None:
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    digest = hmac.new(b"k", b"440524188001010014", hashlib.sha256).digest()
    expected = base64.b32encode(digest).decode().rstrip("=")[:26]
    assert Pseudonymizer(b"k").person_ref("440524188001010014") == expected


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        Pseudonymizer(b"")


def test_masking_keeps_first_six_and_last_one() -> None:
    assert mask_citizen_id("11010519491231002X") == "110105***********X"
    assert mask_id_like('{"id": "440524188001010014", "n": 12}') == (
        '{"id": "440524***********4", "n": 12}'
    )


@given(st.binary(min_size=1, max_size=64), _valid_ids())
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
