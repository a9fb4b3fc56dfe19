"""Contact slots: phone numbers (E.164, via `phonenumbers`) and email addresses.

Phone: digits may be words ("five five five"), "oh"/"o" next to a digit is 0,
"double five" is 55, "triple oh" is 000, "eight hundred" is 800, groups like
"twelve thirty four" become 1234, and "plus" or "+" starts an international
number. Words after "extension" are ignored. The digits are parsed for
`region` and must form a *valid* number for `phonenumbers`, or, for North
America, at least a 10-digit number with an area code not starting 0 or 1 (see `_plausible_nanp`).

Email: a written address in the text wins; otherwise a spoken one is rebuilt
("john dot smith at gmail dot com", "j underscore doe at g mail dot co dot uk").
The local part is the run of words just before "at" back to a lead-in word
("my email is ...", "it's ..."), joined without spaces; the domain runs to the
word after its last "dot". The address is lowercased and validated with
`email-validator` (syntax only, no DNS).
"""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from runtime.slots.extraction import Extraction
from runtime.slots.words import normalize, numerals

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}
_TENS = frozenset({"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"})
_EXTENSION = re.compile(r"\b(?:extension|ext)\b.*")
#: Longest digit string worth parsing: E.164 allows 15 digits, plus a trunk prefix.
_MAX_DIGITS = 17


def _is_digit_token(token: str) -> bool:
    return token.isdigit() or (token in _DIGIT_WORDS and token not in ("oh", "o"))


def _spell_digits(words: list[str]) -> list[str]:
    """Digit words -> digits, "oh" -> 0 beside a digit, "double x" -> xx, "x hundred" -> x00.

    A digit word after a tens word stays a word, for text2num ("thirty four").
    """
    out: list[str] = []
    repeat = 1
    for i, word in enumerate(words):
        if word in _REPEAT:
            repeat = _REPEAT[word]
            continue
        digit = None if i and words[i - 1] in _TENS else _DIGIT_WORDS.get(word)
        if word in ("oh", "o"):
            near = words[i - 1 : i] + words[i + 1 : i + 2]
            digit = "0" if any(_is_digit_token(w) or w in _REPEAT for w in near) else None
        if word == "hundred" and out and out[-1].isdigit() and len(out[-1]) == 1:
            out[-1] += "00"
        elif digit is not None:
            out.append(digit * repeat)
        elif word.isdigit():
            out.append(word * repeat if len(word) == 1 else word)
        else:
            out.append(word)
        repeat = 1
    return out


def spoken_phone(number: phonenumbers.PhoneNumber, region: str) -> str:
    """Digit groups read one digit at a time: "5 5 5, 1 2 3, 4 5 6 7".

    Numbers of `region` are grouped as written nationally; others
    internationally, starting with "plus" and the country code.
    """
    home = phonenumbers.region_code_for_number(number) == region
    style = phonenumbers.PhoneNumberFormat
    fmt = style.NATIONAL if home else style.INTERNATIONAL
    groups = re.findall(r"\d+", phonenumbers.format_number(number, fmt))
    spoken = ", ".join(" ".join(group) for group in groups)
    return spoken if home else f"plus {spoken}"


def _plausible_nanp(number: phonenumbers.PhoneNumber) -> bool:
    """A 10-digit North American number with a plausible area code. Accepted even when
    `phonenumbers` has no such area code (the 555 numbers of demos and fiction,
    area codes newer than the library's metadata): refusing them would make a
    caller repeat a number the business may well hold."""
    national = str(number.national_number)
    return number.country_code == 1 and len(national) == 10 and national[0] not in "01"


def extract_phone(utterance: str, region: str) -> Extraction | None:
    """The caller's phone number in E.164 form, or None unless the digits form a
    valid number (for `region` when no country code is said)."""
    text = _EXTENSION.sub("", normalize(utterance))
    words = text.split()
    international = bool(words) and ("plus" in words or any(w.startswith("+") for w in words))
    # Digit words are spelled one by one first, so that "eight hundred five five"
    # stays 8 0 0 5 5 rather than becoming 805 5; text2num then reads the groups.
    text = numerals(" ".join(_spell_digits(words)))
    digits = "".join(re.findall(r"\d", text))
    if not digits or len(digits) > _MAX_DIGITS:
        return None
    try:
        number = phonenumbers.parse(("+" if international else "") + digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not (phonenumbers.is_valid_number(number) or _plausible_nanp(number)):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Extraction(e164, spoken_phone(number, region))


_WRITTEN_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SYMBOL_WORDS = {
    "at": "@", "dot": ".", "period": ".", "point": ".", "underscore": "_", "dash": "-",
    "hyphen": "-", "plus": "+",
}  # fmt: skip
_LEAD_IN = frozenset(
    {"is", "its", "it", "email", "e", "mail", "address", "my", "thats", "that", "yes", "yeah",
     "sure", "ok", "okay", "so", "well", "the", "um", "uh", "er", "use", "try", "send", "to",
     "me"}
)  # fmt: skip
_SYMBOL_NAMES = {"@": "at", ".": "dot", "_": "underscore", "-": "dash", "+": "plus"}
_INNER_SYMBOL = re.compile(r"@|(?<=\w)[._+-](?=\w)")


def _rebuild_spoken(words: list[str]) -> str | None:
    tokens = [_SYMBOL_WORDS.get(w, w) for w in words]
    for at in reversed([i for i, t in enumerate(tokens) if t == "@"]):
        local = tokens[:at]
        start = len(local)
        while start > 0 and local[start - 1] not in _LEAD_IN and local[start - 1] != "@":
            start -= 1
        rest = tokens[at + 1 :]
        if "." not in rest:
            continue
        last_dot = len(rest) - 1 - rest[::-1].index(".")
        if last_dot + 1 >= len(rest) or start == len(local):
            continue
        domain = rest[: last_dot + 2]
        return "".join(local[start:]) + "@" + "".join(domain)
    return None


def _valid_address(candidate: str) -> str | None:
    try:
        address = validate_email(candidate, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None
    tld = address.rsplit(".", 1)[-1]
    return address if len(tld) >= 2 and tld.isalpha() else None


def spoken_email(address: str) -> str:
    """The address as words a TTS voice reads unambiguously."""
    for symbol, word in (("@", " at "), (".", " dot "), ("_", " underscore "), ("-", " dash "),
                         ("+", " plus ")):  # fmt: skip
        address = address.replace(symbol, word)
    return " ".join(address.split())


def extract_email(utterance: str) -> Extraction | None:
    """The caller's email address, lowercased and syntactically valid, or None."""
    lowered = utterance.lower()
    written = _WRITTEN_EMAIL.search(lowered)
    candidate = written.group(0).strip(".") if written else None
    if candidate is None:
        # Symbols inside half-written addresses ("john.smith at ...") become words.
        spelled = _INNER_SYMBOL.sub(lambda m: f" {_SYMBOL_NAMES[m.group(0)]} ", lowered)
        candidate = _rebuild_spoken(numerals(normalize(spelled)).split())
    if candidate is None:
        return None
    address = _valid_address(candidate)
    return Extraction(address, spoken_email(address)) if address else None
