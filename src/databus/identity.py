"""Resident ID numbers (GB 11643) and the ``person_ref`` pseudonyms that replace them.

The raw number never leaves the publisher: records on the bus carry ``person_ref``, a
keyed HMAC-SHA256 of the normalised number (DOMAIN.md §3).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"
_SHAPE = re.compile(r"\d{17}[\dX]")
PERSON_REF_LENGTH = 26
CITIZEN_ID_LENGTH = 18
#: Masking keeps the first 6 (region) and the last character.
_KEPT = 7
#: A regular expression for anything that looks like a resident ID number in free text.
ID_LIKE = re.compile(r"(?<![0-9])([0-9]{6})[0-9]{10,11}([0-9Xx])(?![0-9])")


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
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
        """Keyed HMAC-SHA256, base32 without padding, first 26 characters."""
        digest = hmac.new(self._key, citizen_id.encode("ascii"), hashlib.sha256).digest()
        return base64.b32encode(digest).decode("ascii")[:PERSON_REF_LENGTH]
