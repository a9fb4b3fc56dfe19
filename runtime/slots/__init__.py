"""Offline typed slot extraction for `collect` nodes.

`extract(kind, utterance, now=..., choices=..., region=...)` reads one typed
value out of a caller's spoken (speech-to-text) answer, deterministically and
without network or models. Canonical values, all JSON-serialisable:

| kind | value | spoken read-back |
|---|---|---|
| text | the words, whitespace collapsed | the same |
| number | int, or float for fractions/decimals | "3.5" |
| yes_no | bool | "yes" / "no" |
| date | "YYYY-MM-DD", relative to `now` | "Tuesday, December 1" |
| time | "HH:MM", 24-hour | "2:30 PM" |
| phone | E.164, e.g. "+12125550142" | "2 1 2, 5 5 5, 0 1 4 2" |
| email | lowercase address | "john dot smith at gmail dot com" |
| choice | the entry of `choices` picked | the same |

None means the answer holds no (single, clear) value of that kind and the
caller should be asked again. The conventions of each kind are documented in
its module: `dates`, `times`, `numbers`, `yesno`, `contact`, `choices`, `text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import get_args

import phonenumbers

from runtime.slots.choices import extract_choice
from runtime.slots.contact import extract_email, extract_phone
from runtime.slots.dates import extract_date
from runtime.slots.extraction import Extraction
from runtime.slots.numbers import extract_number
from runtime.slots.text import extract_text
from runtime.slots.times import extract_time
from runtime.slots.yesno import extract_yes_no
from schemas.spec import SlotKind

__all__ = ["SLOT_KINDS", "Extraction", "extract"]

SLOT_KINDS: tuple[str, ...] = get_args(SlotKind)


def extract(
    kind: SlotKind,
    utterance: str,
    *,
    now: datetime,
    choices: Sequence[str] | None = None,
    region: str = "US",
) -> Extraction | None:
    """The value of `kind` in `utterance`, or None when there is none.

    Never raises for any utterance. Raises `ValueError` for a call that cannot
    be answered: an unknown kind, a `choice` slot without choices, or a region
    that is not an ISO 3166 code known to `phonenumbers`.
    """
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {region!r}: expected an ISO 3166 code such as 'US'")
    match kind:
        case "text":
            return extract_text(utterance)
        case "number":
            return extract_number(utterance)
        case "yes_no":
            return extract_yes_no(utterance)
        case "date":
            return extract_date(utterance, now, region)
        case "time":
            return extract_time(utterance)
        case "phone":
            return extract_phone(utterance, region)
        case "email":
            return extract_email(utterance)
        case "choice":
            if not choices:
                raise ValueError("a choice slot needs a non-empty list of choices")
            return extract_choice(utterance, choices)
    raise ValueError(f"unknown slot kind {kind!r}: expected one of {', '.join(SLOT_KINDS)}")
