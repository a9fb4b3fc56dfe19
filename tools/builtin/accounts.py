"""Account and billing tools: look up a customer, list recent charges with the
duplicated one spotted, and issue refunds exactly once.

A charge is a duplicate when an earlier charge on the same account has the same
amount and description within `DUPLICATE_WINDOW`; the later one is the one to
refund. A charge is refunded at most once, never for more than it was.

Refunds are idempotent: each has a key (the caller's `idempotency_key`, or
`ACCOUNT:CHARGE` when none is given), and a request whose key was used before
for the same account, charge and amount returns that first refund with
`replayed: true` instead of paying again. A default key replays only within
`DEFAULT_KEY_WINDOW` (a call's lifetime); after that the request is a new one
and is refused because the charge is already refunded. So a tool call retried
after a timeout, or repeated later in the same call, cannot refund twice.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from tools.builtin.data import BusinessData, BusinessStore, run_in_transaction
from tools.builtin.inputs import params, parse_account_number, parse_money, parse_phone
from tools.builtin.speech import (
    money,
    spoken_balance,
    spoken_date,
    spoken_list,
    spoken_money,
)
from tools.registry import Tool, ToolError
from tools.store import Account, Charge, Refund

DUPLICATE_WINDOW = timedelta(days=3)
#: How long a request without an idempotency key replays the refund it matches
#: (one call's lifetime); later it is a new request and is refused.
DEFAULT_KEY_WINDOW = timedelta(hours=1)
DEFAULT_CHARGE_LIMIT = 5

_ACCOUNT_NUMBER = {
    "type": "string",
    "minLength": 1,
    "description": "Account number, like AC-1001 (the digits alone also work).",
}


def duplicate_charges(charges: list[Charge]) -> list[Charge]:
    """The charges that repeat an earlier one (same amount and description
    within `DUPLICATE_WINDOW`), newest first."""
    ordered = sorted(charges, key=lambda c: (c.day, c.charge_id))
    dupes = [
        later
        for i, later in enumerate(ordered)
        if any(
            earlier.amount == later.amount
            and earlier.description == later.description
            and later.day - earlier.day <= DUPLICATE_WINDOW
            for earlier in ordered[:i]
        )
    ]
    return dupes[::-1]


def _account_view(acct: Account) -> dict[str, Any]:
    return {
        "found": True,
        "account_number": acct.account_number,
        "name": acct.name,
        "first_name": acct.name.split()[0],
        "phone": acct.phone,
        "email": acct.email,
        "plan": acct.plan,
        "zip_code": acct.zip_code,
        "balance": money(acct.balance),
        "balance_spoken": spoken_balance(acct.balance),
        "due_date": acct.due_date.isoformat(),
        "due_date_spoken": spoken_date(acct.due_date),
    }


def _charge_spoken(charge: Charge) -> str:
    return f"{spoken_money(charge.amount)} for {charge.description} on {spoken_date(charge.day)}"


class Accounts:
    """Account and billing operations on one store; each runs in one store
    transaction."""

    def __init__(self, store: BusinessStore) -> None:
        self.store = store

    @staticmethod
    def _account(tx: BusinessData, account_number: str) -> Account:
        number = parse_account_number(account_number)
        acct = tx.account(number)
        if acct is None:
            raise ToolError(f"There is no account {number}.")
        return acct

    def lookup(self, phone: str | None = None, account_number: str | None = None) -> dict[str, Any]:
        """The account with that number (preferred) or phone, or `{found:
        false}` with the reason; at least one of the two must be given."""
        if not phone and not account_number:
            raise ToolError("Give a phone number or an account number to look up.")
        try:
            with self.store.transaction() as tx:
                if account_number:
                    acct = tx.account(parse_account_number(account_number))
                else:
                    acct = tx.account_by_phone(parse_phone(phone or ""))
                if acct is not None:
                    return _account_view(acct)
        except ToolError as exc:
            return {
                "found": False,
                "phone": phone,
                "account_number": account_number,
                "reason": str(exc),
            }
        return {
            "found": False,
            "phone": phone,
            "account_number": account_number,
            "reason": "No account matches.",
        }

    def recent_charges(self, account_number: str, limit: int | None = None) -> dict[str, Any]:
        """The newest `limit` charges (default 5) and the id of a duplicated
        charge not yet refunded, if any. `spoken` lists the charges ("$44.99 for
        ... on November 27 and ..."); `duplicate_spoken` describes the duplicate."""
        with self.store.transaction() as tx:
            acct = self._account(tx, account_number)
            charges = tx.account_charges(acct.account_number)
            refunded = {c.charge_id for c in charges if tx.refund_of_charge(c.charge_id)}
        shown = charges[: limit or DEFAULT_CHARGE_LIMIT]
        dupe = next((c for c in duplicate_charges(charges) if c.charge_id not in refunded), None)
        spoken = (
            spoken_list([_charge_spoken(c) for c in shown], "and") if shown else "no recent charges"
        )
        dupe_spoken = (
            f"the {spoken_money(dupe.amount)} charge for {dupe.description} on "
            f"{spoken_date(dupe.day)} was billed twice"
            if dupe is not None
            else None
        )
        return {
            "account_number": acct.account_number,
            "charges": [
                {
                    "charge_id": c.charge_id,
                    "date": c.day.isoformat(),
                    "date_spoken": spoken_date(c.day),
                    "amount": money(c.amount),
                    "amount_spoken": spoken_money(c.amount),
                    "description": c.description,
                    "refunded": c.charge_id in refunded,
                }
                for c in shown
            ],
            "count": len(shown),
            "duplicate_charge_id": dupe.charge_id if dupe else None,
            "duplicate_amount": money(dupe.amount) if dupe else None,
            "duplicate_amount_spoken": spoken_money(dupe.amount) if dupe else None,
            "has_duplicate": dupe is not None,
            "spoken": spoken,
            "duplicate_spoken": dupe_spoken,
        }

    @staticmethod
    def _charge_to_refund(tx: BusinessData, acct: Account, charge_id: str | None) -> Charge:
        if charge_id:
            charge = tx.charge(charge_id.strip().upper())
            if charge is None or charge.account_number != acct.account_number:
                raise ToolError(f"There is no charge {charge_id} on account {acct.account_number}.")
            return charge
        dupes = duplicate_charges(tx.account_charges(acct.account_number))
        if not dupes:
            raise ToolError(
                f"There is no duplicated charge on account {acct.account_number}; "
                "say which charge to refund."
            )
        # An unrefunded duplicate first; else the refunded one, so a retry replays.
        pending = [c for c in dupes if tx.refund_of_charge(c.charge_id) is None]
        return (pending or dupes)[0]

    def refund(
        self,
        account_number: str,
        reason: str,
        charge_id: str | None = None,
        amount: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Refund a charge (the duplicated one when `charge_id` is omitted), in
        full or `amount` of it, and credit the balance. A repeated request with
        the same key returns the first refund, also when the two race from
        different processes (the database's unique keys decide, and the loser
        replays the winner's refund); refunding an already refunded charge or
        more than it was is refused with `ToolError`."""

        def work(tx: BusinessData) -> dict[str, Any]:
            return self._refund(tx, account_number, reason, charge_id, amount, idempotency_key)

        return run_in_transaction(self.store, work)

    def _refund(
        self,
        tx: BusinessData,
        account_number: str,
        reason: str,
        charge_id: str | None,
        amount: float | None,
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        acct = self._account(tx, account_number)
        earlier = tx.refund_by_key(idempotency_key) if idempotency_key else None
        if earlier is not None:
            # The key names the request: without a charge_id it is the same charge.
            charge = (
                self._charge_to_refund(tx, acct, charge_id)
                if charge_id
                else self._known_charge(tx, earlier.charge_id)
            )
            value = charge.amount if amount is None else parse_money(amount)
            if self._same(earlier, acct, charge, value):
                return self._view(tx, earlier, acct, replayed=True)
            raise ToolError(
                f"Idempotency key {idempotency_key!r} was already used for "
                f"refund {earlier.refund_id}; use a new key for another refund."
            )
        charge = self._charge_to_refund(tx, acct, charge_id)
        value = charge.amount if amount is None else parse_money(amount)
        key = idempotency_key or f"{acct.account_number}:{charge.charge_id}"
        earlier = tx.refund_by_key(key)
        if earlier is not None:
            # Only a default key gets here: an explicit one was handled above.
            fresh = tx.now() - earlier.issued_at <= DEFAULT_KEY_WINDOW
            if fresh and self._same(earlier, acct, charge, value):
                return self._view(tx, earlier, acct, replayed=True)
        previous = tx.refund_of_charge(charge.charge_id)
        if previous is not None:
            # The same request committed by a concurrent transaction between our
            # reads (READ COMMITTED sees it only from this statement on): a replay,
            # under the same rules as a key found above.
            fresh = idempotency_key is not None or (
                tx.now() - previous.issued_at <= DEFAULT_KEY_WINDOW
            )
            if (
                fresh
                and previous.idempotency_key == key
                and self._same(previous, acct, charge, value)
            ):
                return self._view(tx, previous, acct, replayed=True)
            raise ToolError(
                f"Charge {charge.charge_id} was already refunded "
                f"({spoken_money(previous.amount)}, refund {previous.refund_id})."
            )
        if value > charge.amount:
            raise ToolError(
                f"{spoken_money(value)} is more than the charge of {spoken_money(charge.amount)}."
            )
        refund = tx.add_refund(acct.account_number, charge.charge_id, value, reason.strip(), key)
        return self._view(tx, refund, self._account(tx, acct.account_number), replayed=False)

    @staticmethod
    def _known_charge(tx: BusinessData, charge_id: str) -> Charge:
        charge = tx.charge(charge_id)
        if charge is None:  # refunds reference charges by foreign key
            raise ToolError(f"The refunded charge {charge_id} no longer exists.")
        return charge

    @staticmethod
    def _same(earlier: Refund, acct: Account, charge: Charge, value: Decimal) -> bool:
        return (earlier.account_number, earlier.charge_id, earlier.amount) == (
            acct.account_number,
            charge.charge_id,
            value,
        )

    def _view(
        self, tx: BusinessData, refund: Refund, acct: Account, *, replayed: bool
    ) -> dict[str, Any]:
        charge = self._known_charge(tx, refund.charge_id)
        return {
            "refund_id": refund.refund_id,
            "status": "issued",
            "replayed": replayed,
            "account_number": refund.account_number,
            "charge_id": refund.charge_id,
            "charge_description": charge.description,
            "charge_date": charge.day.isoformat(),
            "amount": money(refund.amount),
            "amount_spoken": spoken_money(refund.amount),
            "reason": refund.reason,
            "issued_at": refund.issued_at.isoformat(timespec="seconds"),
            "new_balance": money(acct.balance),
            "new_balance_spoken": spoken_balance(acct.balance),
        }


def account_tools(store: BusinessStore) -> list[Tool]:
    """The `accounts.*` and `billing.*` tools bound to `store`."""
    accounts = Accounts(store)
    return [
        Tool(
            "accounts.lookup",
            "Find a customer account by account number or phone number; returns found=false "
            "when there is none.",
            params(
                {
                    "phone": {"type": "string", "description": "Phone number, any common format."},
                    "account_number": _ACCOUNT_NUMBER,
                },
                [],
            ),
            accounts.lookup,
        ),
        Tool(
            "accounts.recent_charges",
            "List an account's most recent charges and spot a charge that was billed twice.",
            params(
                {
                    "account_number": _ACCOUNT_NUMBER,
                    "limit": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 50,
                        "description": "How many charges, newest first (default 5).",
                    },
                },
                ["account_number"],
            ),
            accounts.recent_charges,
        ),
        Tool(
            "billing.refund",
            "Refund a charge on an account (the duplicated charge when no charge_id is given). "
            "Safe to retry: the same request returns the first refund.",
            params(
                {
                    "account_number": _ACCOUNT_NUMBER,
                    "charge_id": {
                        "type": "string",
                        "minLength": 1,
                        "description": "The charge to refund, like CH-2006.",
                    },
                    "amount": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "description": "Amount to refund; the whole charge when omitted.",
                    },
                    "reason": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Why the refund is given.",
                    },
                    "idempotency_key": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Repeat a request with the same key to get the same refund; "
                        "defaults to the account and charge.",
                    },
                },
                ["account_number", "reason"],
            ),
            accounts.refund,
        ),
    ]
