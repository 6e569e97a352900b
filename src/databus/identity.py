"""Resident ID numbers (GB 11643) and the ``person_ref`` pseudonyms that replace them.

The raw number never leaves the publisher: records on the bus carry ``person_ref``, a
keyed HMAC-SHA256 of the normalised number (DOMAIN.md §3).
"""

from __future__ import annotations

import datetime as dt
import hmac
import operator
import re

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"
#: ``sum(w * ord(c))`` over ASCII digits exceeds ``sum(w * digit)`` by this much.
_ASCII_ZERO_OFFSET = ord("0") * sum(_WEIGHTS)
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#: Every pair of base32 characters, indexed by the 10 bits they encode.
_BASE32_PAIRS = tuple(a + b for a in _BASE32 for b in _BASE32)
#: A person_ref is the first 130 bits of the HMAC, 13 pairs of base32 characters.
_PAIR_SHIFTS = tuple(range(120, -1, -10))
_SHAPE = re.compile(r"\d{17}[\dX]")
PERSON_REF_LENGTH = 26
CITIZEN_ID_LENGTH = 18
#: Masking keeps the first 6 (region) and the last character.
_KEPT = 7
#: A regular expression for anything that looks like a resident ID number in free text.
ID_LIKE = re.compile(r"(?<![0-9])([0-9]{6})[0-9]{10,11}([0-9Xx])(?![0-9])")


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits.

    Computed on the ASCII codes in one C-level ``map``: this runs for every record
    published, so it is kept off the interpreter's per-digit path.
    """
    digits = first17.encode("ascii")
    if len(digits) != len(_WEIGHTS) or not digits.isdigit():
        raise ValueError("the first 17 characters must be digits")
    total = sum(map(operator.mul, digits, _WEIGHTS)) - _ASCII_ZERO_OFFSET
    return _CHECK_CHARACTERS[total % 11]


def birth_date_of(citizen_id: str) -> dt.date:
    """The date of birth encoded in positions 7-14; ``ValueError`` when it is not a date."""
    return dt.date(int(citizen_id[6:10]), int(citizen_id[10:12]), int(citizen_id[12:14]))


def normalise_citizen_id(value: str, *, today: dt.date) -> str:
    """Return the normalised ID number, or raise ``ValueError`` saying what is wrong.

    The message never repeats the number itself, so it is safe to log and to dead-letter.
    """
    candidate = value.strip().upper()
    if len(candidate) != CITIZEN_ID_LENGTH:
        raise ValueError(f"must be {CITIZEN_ID_LENGTH} characters, got {len(candidate)}")
    if not _SHAPE.fullmatch(candidate):
        raise ValueError("must be 17 digits followed by a digit or X")
    try:
        born = birth_date_of(candidate)
    except ValueError:
        raise ValueError("positions 7-14 are not a calendar date") from None
    if born > today:
        raise ValueError("positions 7-14 are a birth date in the future")
    expected = check_character(candidate[:17])
    if candidate[17] != expected:
        raise ValueError("check character does not match (ISO 7064 MOD 11-2)")
    return candidate


def mask_citizen_id(value: str) -> str:
    """Keep the first 6 and the last character; the rest becomes ``*``."""
    if len(value) <= _KEPT:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - _KEPT) + value[-1]


def mask_id_like(text: str) -> str:
    """Mask every run of characters in ``text`` that looks like an ID number."""
    return ID_LIKE.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - _KEPT) + m.group(2), text)


class Pseudonymizer:
    """Turns normalised ID numbers into ``person_ref`` with one secret key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the pseudonym key must not be empty")
        self._key = key

    def person_ref(self, citizen_id: str) -> str:
        """Keyed HMAC-SHA256, base32 without padding, first 26 characters.

        The same characters as ``base64.b32encode(digest)[:26]``, computed from the
        130 bits that are kept (the stdlib encoder is pure Python and encodes all 256).
        """
        digest = hmac.digest(self._key, citizen_id.encode("ascii"), "sha256")
        bits = int.from_bytes(digest[:17], "big") >> 6
        return "".join([_BASE32_PAIRS[(bits >> shift) & 0x3FF] for shift in _PAIR_SHIFTS])
