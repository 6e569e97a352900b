"""Resident ID numbers (GB 11643) and the ``person_ref`` pseudonyms that replace them.

The raw number never leaves the publisher: records on the bus carry ``person_ref``, a
keyed HMAC-SHA256 of the normalised number (DOMAIN.md §3). Text that merely *looks
like* an ID number (also when disguised by separators, full-width or other Unicode
digits, or invisible characters) is found by :func:`contains_id_number` and masked by
:func:`mask_id_like`, so that it reaches no topic, file, terminal or metric.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import operator
import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from typing import Final

from databus.errors import ConfigurationError

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"
#: ``sum(w * ord(c))`` over ASCII digits exceeds ``sum(w * digit)`` by this much.
_ASCII_ZERO_OFFSET = ord("0") * sum(_WEIGHTS)
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#: Every pair of base32 characters, indexed by the 10 bits they encode.
_BASE32_PAIRS = tuple(a + b for a in _BASE32 for b in _BASE32)
#: A person_ref is the first 130 bits of the HMAC, 13 pairs of base32 characters.
_PAIR_SHIFTS = tuple(range(120, -1, -10))
_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
PERSON_REF_LENGTH = 26
CITIZEN_ID_LENGTH = 18
#: Masking keeps the first 6 (region) and the last character.
_KEPT = 7
#: The shortest pseudonym key accepted: 256 bits, the size of the HMAC-SHA256 output.
MIN_KEY_BYTES: Final = 32
_KEY_ID_PREFIX = b"databus pseudonym key id\0"

#: The check character: X, x and their look-alikes (Cyrillic Ha, Greek Chi).
_X = "Xx\u0425\u0445\u03a7\u03c7"
ID_LIKE = re.compile(rf"(?<!\d)\d{{16,17}}[\d{_X}](?!\d)")
"""An ID number written as one run: 17 or 18 decimal digits of any script (the last may
be an X), with no digit right before or after. Masked text never matches it."""


def _disguised() -> str:
    """An ID number in digit groups: between any two of its characters up to three
    separators (spaces of any kind, hyphens and dashes, dots, slashes, underscores,
    commas), and positions 7-14 a plausible date of birth (1800-2199), so that codes
    such as ``V-H370102001-00000001`` (17 digits in two groups) are not taken for one."""
    gap = r"[\s\-./_,\u00b7\u2010-\u2015\u2027\u2212\u3001\u3002\u30fb]{0,3}"
    region = rf"[0-9](?:{gap}[0-9]){{5}}"
    year = rf"{gap}(?:1{gap}[89]|2{gap}[01]){gap}[0-9]{gap}[0-9]"
    month = rf"{gap}(?:0{gap}[1-9]|1{gap}[0-2])"
    day = rf"{gap}(?:0{gap}[1-9]|[12]{gap}[0-9]|3{gap}[01])"
    rest = rf"{gap}[0-9]{gap}[0-9]{gap}(?:[0-9]{gap}[0-9{_X}]|[0-9{_X}])"
    return region + year + month + day + rest


_ID_SHAPED = re.compile(rf"(?<![0-9])(?:[0-9]{{16,17}}[0-9{_X}]|{_disguised()})(?![0-9])")
"""What :func:`contains_id_number` looks for, in text whose digits are ASCII."""


def _is_invisible(character: str) -> bool:
    category = unicodedata.category(character)
    return category in {"Cf", "Mn", "Me"} or character in "\u115f\u1160\u3164\uffa0"


@cache
def _reading() -> dict[int, str | None]:
    """``str.translate`` table: every decimal digit of any script as its ASCII digit;
    format characters (U+200B..U+200D, U+2060, U+FEFF, soft hyphen, bidi marks...),
    combining marks and Hangul fillers deleted. Built on first use (about 40 ms),
    since ASCII text never needs it."""
    table: dict[int, str | None] = {}
    for span in (range(0x80, 0x30000), range(0xE0000, 0xE1000)):
        for code in span:
            character = chr(code)
            if character.isdecimal():
                table[code] = str(unicodedata.decimal(character))
            elif _is_invisible(character):
                table[code] = None
    return table


def normalise_text(text: str) -> str:
    """``text`` as the ID-shape check reads it: NFKC (full-width digits and letters,
    no-break spaces), every decimal digit in ASCII, no invisible characters. ASCII text
    is returned as is."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_reading())


def contains_id_number(text: str) -> bool:
    """Whether ``text`` contains something shaped like a resident ID number once
    normalised: a run of 17 or 18 digits (the last may be an X) with no digit beside it,
    or such digits in groups split by a few separators, with a date of birth inside
    (``370102 19491231 002X``). It runs on every code field of every record: one search."""
    if not text.isascii():
        text = normalise_text(text)
    return _ID_SHAPED.search(text) is not None


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

    Full-width or other Unicode digits and invisible characters are normalised first, so
    that one person written two ways still gets one ``person_ref``. The message never
    repeats the number itself, so it is safe to log and to dead-letter.
    """
    candidate = value.strip().upper()
    if not candidate.isascii():
        candidate = normalise_text(candidate).upper()
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
    """Mask everything in ``text`` that :func:`contains_id_number` would find: each
    becomes its digits with the first 6 and the last kept (``370102***********X``).

    Other than ASCII text is read through :func:`normalise_text` one character at a
    time, so that the masked spans are cut out of the original and the rest of it
    (Chinese, full-width punctuation) stays as written. For the ``raw`` of dead letters,
    terminal lines and files; never on the per-record path.
    """
    if text.isascii():
        return _masked(text, text, range(len(text)))
    if not contains_id_number(text):
        return text
    table = _reading()
    read: list[str] = []
    origin: list[int] = []
    for position, character in enumerate(text):
        seen = character
        if not character.isascii():
            seen = unicodedata.normalize("NFKC", character).translate(table)
        read.append(seen)
        origin += [position] * len(seen)
    masked = _masked(text, "".join(read), origin)
    if contains_id_number(masked):  # NFKC of the whole differs from its characters': be safe
        normalised = normalise_text(masked)
        return _masked(normalised, normalised, range(len(normalised)))
    return masked


def _masked(text: str, read: str, origin: Sequence[int]) -> str:
    """``text`` with the ID numbers found in ``read`` masked; ``read`` is ``text`` as
    normalised, its character ``i`` coming from ``text[origin[i]]``."""
    parts: list[str] = []
    done = 0
    for found in _ID_SHAPED.finditer(read):
        kept = "".join(c for c in found.group(0) if c.isdigit() or c in _X)
        parts += [text[done : origin[found.start()]], mask_citizen_id(kept)]
        done = origin[found.end() - 1] + 1
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def pseudonym_key_id(key: bytes) -> str:
    """The public id of a pseudonym key (never the key): the first 16 hex digits of
    SHA-256 over a fixed label and the key, so that a change of key can be seen."""
    return hashlib.sha256(_KEY_ID_PREFIX + key).hexdigest()[:16]


class Pseudonymizer:
    """Turns normalised ID numbers into ``person_ref`` with one secret key."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: bytes) -> None:
        """A key shorter than :data:`MIN_KEY_BYTES` is refused: a short HMAC key can be
        guessed, and every pseudonym made with it then names its person."""
        if len(key) < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"the pseudonym key is {len(key)} bytes; it must be at least "
                f"{MIN_KEY_BYTES} bytes (for example 32 random bytes, base64-encoded)"
            )
        self._key = key
        #: The key's public id, carried in the ``ce_keyid`` header of every message.
        self.key_id = pseudonym_key_id(key)

    def person_ref(self, citizen_id: str) -> str:
        """Keyed HMAC-SHA256, base32 without padding, first 26 characters.

        The same characters as ``base64.b32encode(digest)[:26]``, computed from the
        130 bits that are kept (the stdlib encoder is pure Python and encodes all 256).
        """
        digest = hmac.digest(self._key, citizen_id.encode("ascii"), "sha256")
        bits = int.from_bytes(digest[:17], "big") >> 6
        return "".join([_BASE32_PAIRS[(bits >> shift) & 0x3FF] for shift in _PAIR_SHIFTS])
