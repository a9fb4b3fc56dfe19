"""Technical support tools: network outages by ZIP code, a customer's router
status, and a remote router restart.

An outage is active from its start until its estimated end (by the store's
clock). A router restart brings the router back online unless its service area
has an active outage, which no restart can fix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tools.builtin.data import BusinessData, BusinessStore
from tools.builtin.inputs import params, parse_account_number, parse_phone, parse_zip
from tools.builtin.speech import spoken_ago, spoken_eta
from tools.registry import Tool, ToolError
from tools.store import Account, Outage, Router


class Support:
    """Support operations on one store; each runs in one store transaction."""

    def __init__(self, store: BusinessStore) -> None:
        self.store = store

    @staticmethod
    def _active_outage(tx: BusinessData, zip_code: str, now: datetime) -> Outage | None:
        return next(
            (o for o in tx.all_outages() if zip_code in o.zip_codes and o.started <= now < o.eta),
            None,
        )

    def check_outage(self, zip_code: str | int) -> dict[str, Any]:
        """Whether the area of a ZIP code has a network outage now, with the
        expected end; `ToolError` when no ZIP code can be read."""
        code = parse_zip(zip_code)
        with self.store.transaction() as tx:
            now = tx.now()
            area = tx.service_area(code)
            outage = self._active_outage(tx, code, now)
        where = area or f"ZIP code {' '.join(code)}"
        if outage is None:
            return {
                "zip_code": code,
                "area": area,
                "served": area is not None,
                "outage": False,
                "eta": None,
                "eta_spoken": None,
                "cause": None,
                "spoken": f"There is no known outage in {where}",
            }
        eta_spoken = spoken_eta(outage.eta, now)
        return {
            "zip_code": code,
            "area": area,
            "served": True,
            "outage": True,
            "eta": outage.eta.isoformat(timespec="minutes"),
            "eta_spoken": eta_spoken,
            "cause": outage.cause,
            "spoken": (
                f"There is an outage in {where} caused by {outage.cause}. "
                f"We expect service back {eta_spoken}"
            ),
        }

    @staticmethod
    def _account(tx: BusinessData, account_number: str | None, phone: str | None) -> Account | None:
        if not account_number and not phone:
            raise ToolError("Give an account number or a phone number.")
        if account_number:
            return tx.account(parse_account_number(account_number))
        return tx.account_by_phone(parse_phone(phone or ""))

    def _router_view(
        self, tx: BusinessData, acct: Account, router: Router, now: datetime
    ) -> dict[str, Any]:
        outage = self._active_outage(tx, acct.zip_code, now)
        return {
            "found": True,
            "account_number": acct.account_number,
            "online": router.online,
            "status_spoken": "online" if router.online else "offline",
            "model": router.model,
            "last_seen": router.last_seen.isoformat(timespec="seconds"),
            "last_seen_spoken": spoken_ago(router.last_seen, now),
            "area_outage": outage is not None,
            "zip_code": acct.zip_code,
        }

    def router_status(
        self, account_number: str | None = None, phone: str | None = None
    ) -> dict[str, Any]:
        """The router of an account (by number, else phone): online or not,
        model, when last seen; `{found: false}` for an unknown customer."""
        missing = {"found": False, "account_number": account_number, "phone": phone}
        with self.store.transaction() as tx:
            try:
                acct = self._account(tx, account_number, phone)
            except ToolError as exc:
                if not account_number and not phone:
                    raise
                return {**missing, "reason": str(exc)}
            router = None if acct is None else tx.router(acct.account_number)
            if acct is None or router is None:
                return {**missing, "reason": "No account matches."}
            return self._router_view(tx, acct, router, tx.now())

    def restart_router(
        self, account_number: str | None = None, phone: str | None = None
    ) -> dict[str, Any]:
        """Restart an account's router remotely: it comes back online unless
        its area has an outage (`restored: false`). `ToolError` for an unknown
        customer."""
        with self.store.transaction() as tx:
            acct = self._account(tx, account_number, phone)
            router = None if acct is None else tx.router(acct.account_number)
            if acct is None or router is None:
                raise ToolError("I couldn't find a router for that customer.")
            now = tx.now()
            restored = self._active_outage(tx, acct.zip_code, now) is None
            if restored:
                router.online, router.last_seen = True, now
                tx.save_router(router)
            view = self._router_view(tx, acct, router, now)
            return {**view, "restarted": True, "restored": restored}


def support_tools(store: BusinessStore) -> list[Tool]:
    """The `support.*` tools bound to `store`."""
    support = Support(store)
    customer = params(
        {
            "account_number": {
                "type": "string",
                "minLength": 1,
                "description": "Account number, like AC-1001.",
            },
            "phone": {"type": "string", "description": "Phone number on the account."},
        },
        [],
    )
    return [
        Tool(
            "support.check_outage",
            "Check whether there is a network outage in the area of a ZIP code.",
            params(
                {
                    "zip_code": {
                        "type": ["string", "integer"],
                        "description": "5-digit US ZIP code of the service address.",
                    },
                },
                ["zip_code"],
            ),
            support.check_outage,
        ),
        Tool(
            "support.router_status",
            "Whether a customer's router is online, its model and when it was last seen.",
            customer,
            support.router_status,
        ),
        Tool(
            "support.restart_router",
            "Restart a customer's router remotely; it stays offline during an area outage.",
            customer,
            support.restart_router,
        ),
    ]
