"""Unique Pupil Numbers (England and Wales).

A UPN is 13 characters: a check letter, the 3-digit LA number, the 4-digit establishment
number, 2 digits for the year of allocation and a 3-character serial whose last character
is a letter for a temporary UPN. The check letter is the weighted sum of characters 2-13
(weights 2 to 13, a letter counting as its place in the alphabet below), modulo 23.
"""

from __future__ import annotations

import re

# I, O and S are never used, so they can't be mistaken for 1, 0 and 5.
ALPHABET = "ABCDEFGHJKLMNPQRTUVWXYZ"
_SHAPE = re.compile(rf"[{ALPHABET}]\d{{11}}[0-9{ALPHABET}]")


def check_letter(body: str) -> str:
    """The check letter for the 12 characters after it."""
    total = 0
    for weight, char in enumerate(body, start=2):
        total += weight * (int(char) if char.isdigit() else ALPHABET.index(char))
    return ALPHABET[total % 23]


def upn_problem(upn: str) -> str | None:
    """Why `upn` is not a valid UPN, or None when it is."""
    if len(upn) != 13:
        return "a UPN is 13 characters"
    if not _SHAPE.fullmatch(upn):
        return "a UPN is a letter, 11 digits and a final digit or letter (never I, O or S)"
    if check_letter(upn[1:]) != upn[0]:
        return "the UPN's check letter does not match"
    return None
