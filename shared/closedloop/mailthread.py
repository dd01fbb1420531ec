"""How our e-mails to customers name their ticket, so that an answer finds its way back.

Notify writes three marks on every customer e-mail about a ticket; ingest reads them on inbound mail:

- `Message-ID: <cl.<delivery id>.<ticket id>@<domain>>` — mail clients copy it into the answer's
  `In-Reply-To` and `References`;
- `Reply-To: <local>+<ticket id, 32 hex digits>@<domain>` — the ticket address the answer goes to
  (lower-case hex survives mail systems that fold the case of local parts);
- `[#<reference>]` in the subject — the ticket number, for the answers that keep only the subject.

None of them is a secret (the public page token never goes into a header), so ingest also checks that
the sender is the ticket's customer before it joins an answer to a ticket.
"""

import re
from uuid import UUID

_MESSAGE_ID = re.compile(r"<cl\.[0-9a-f]{32}\.([0-9a-f-]{36})@[^<>\s]+>", re.IGNORECASE)
_ADDRESS = re.compile(r"^[^@+\s]+\+([0-9a-f]{32})@", re.IGNORECASE)
_SUBJECT = re.compile(r"\[#([0-9A-F]{8})\]", re.IGNORECASE)


def message_id(delivery_id: str, ticket_id: str, domain: str) -> str:
    return f"<cl.{UUID(delivery_id).hex}.{UUID(ticket_id)}@{domain}>"


def ticket_of_message_id(value: str) -> str | None:
    match = _MESSAGE_ID.fullmatch(value.strip())
    return match.group(1).lower() if match else None


def reply_address(address: str, ticket_id: str) -> str:
    """support@example.com → support+<ticket id hex>@example.com"""
    local, _, domain = address.rpartition("@")
    return f"{local}+{UUID(ticket_id).hex}@{domain}"


def ticket_of_address(address: str) -> str | None:
    match = _ADDRESS.match(address.strip())
    return str(UUID(match.group(1))) if match else None


def subject_tag(reference: str) -> str:
    return f"[#{reference}]"


def reference_of_subject(subject: str | None) -> str | None:
    match = _SUBJECT.search(subject or "")
    return match.group(1).upper() if match else None


def domain_of(address: str) -> str:
    """The domain of an address such as "Support <support@example.com>"."""
    match = re.search(r"@([^>\s]+)", address)
    return match.group(1) if match else "closedloop.local"
