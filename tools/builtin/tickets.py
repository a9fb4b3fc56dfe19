"""Support ticket tools: open a ticket for a caller's problem and update it.

A ticket starts `open`; `tickets.update` moves it between open, pending,
resolved and closed and appends notes. A ticket may name the caller's phone and
account; an account it names must exist.
"""

from __future__ import annotations

from typing import Any

from tools.builtin.data import BusinessStore
from tools.builtin.inputs import params, parse_account_number, parse_phone, parse_ticket_id
from tools.builtin.speech import spoken_id
from tools.registry import Tool, ToolError
from tools.store import Priority, Ticket, TicketStatus

STATUSES: tuple[TicketStatus, ...] = ("open", "pending", "resolved", "closed")
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high")
DEFAULT_CATEGORY = "general"


def ticket_view(ticket: Ticket) -> dict[str, Any]:
    """The JSON form of a ticket, with its id spelled out for speaking."""
    return {
        "ticket_id": ticket.ticket_id,
        "ticket_id_spoken": spoken_id(ticket.ticket_id),
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category,
        "summary": ticket.summary,
        "phone": ticket.phone,
        "account_number": ticket.account_number,
        "created_at": ticket.created_at.isoformat(timespec="seconds"),
        "notes": list(ticket.notes),
    }


class Tickets:
    """Ticket operations on one store; each runs in one store transaction."""

    def __init__(self, store: BusinessStore) -> None:
        self.store = store

    def create(
        self,
        summary: str,
        phone: str | None = None,
        account_number: str | None = None,
        priority: str | None = None,
        category: str | None = None,
    ) -> dict[str, Any]:
        """Open a ticket; `ToolError` for an empty summary, a malformed phone
        or an account that does not exist."""
        text = summary.strip()
        if not text:
            raise ToolError("A ticket needs a summary of the problem.")
        e164 = parse_phone(phone) if phone else None
        level = next((p for p in PRIORITIES if p == (priority or "normal")), None)
        if level is None:
            raise ToolError(f"Priority must be one of {', '.join(PRIORITIES)}, not {priority!r}.")
        with self.store.transaction() as tx:
            number = None
            if account_number:
                number = parse_account_number(account_number)
                if tx.account(number) is None:
                    raise ToolError(f"There is no account {number}.")
            ticket = tx.add_ticket(
                text,
                level,
                (category or DEFAULT_CATEGORY).strip() or DEFAULT_CATEGORY,
                e164,
                number,
            )
            return ticket_view(ticket)

    def update(
        self, ticket_id: str, status: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        """Change a ticket's status and/or append a note; `ToolError` for an
        unknown ticket or when neither is given."""
        if status is None and not (note and note.strip()):
            raise ToolError("Give a new status or a note to update the ticket.")
        new_status = next((s for s in STATUSES if s == status), None)
        if status is not None and new_status is None:
            raise ToolError(f"Status must be one of {', '.join(STATUSES)}, not {status!r}.")
        number = parse_ticket_id(ticket_id)
        with self.store.transaction() as tx:
            ticket = tx.ticket(number)
            if ticket is None:
                raise ToolError(f"There is no ticket {number}.")
            if new_status is not None:
                ticket.status = new_status
            if note and note.strip():
                ticket.notes.append(note.strip())
            tx.save_ticket(ticket)
            return ticket_view(ticket)


def ticket_tools(store: BusinessStore) -> list[Tool]:
    """The `tickets.*` tools bound to `store`."""
    tickets = Tickets(store)
    return [
        Tool(
            "tickets.create",
            "Open a support ticket describing the caller's problem.",
            params(
                {
                    "summary": {
                        "type": "string",
                        "minLength": 1,
                        "description": "One sentence describing the problem.",
                    },
                    "phone": {"type": "string", "description": "Caller's phone number."},
                    "account_number": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Account number, like AC-1001.",
                    },
                    "priority": {
                        "type": "string",
                        "enum": list(PRIORITIES),
                        "description": "How urgent (default normal).",
                    },
                    "category": {
                        "type": "string",
                        "description": "Area of the problem, e.g. internet or billing.",
                    },
                },
                ["summary"],
            ),
            tickets.create,
        ),
        Tool(
            "tickets.update",
            "Change a ticket's status or add a note to it.",
            params(
                {
                    "ticket_id": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Ticket number, like T-1002.",
                    },
                    "status": {
                        "type": "string",
                        "enum": list(STATUSES),
                        "description": "New status.",
                    },
                    "note": {"type": "string", "description": "A note to append."},
                },
                ["ticket_id"],
            ),
            tickets.update,
        ),
    ]
