"""Every link that leaves the system points at ticketing's customer pages, built here from the one
public base URL (`TICKETING_PUBLIC_BASE_URL`): notify and the pages take the links from the ticket
events instead of building their own, so a deployment sets the base once."""

_base_url = "http://127.0.0.1:8003"


def set_base_url(url: str) -> None:
    global _base_url
    _base_url = url.rstrip("/")


def base_url() -> str:
    return _base_url


def status_url(token: str) -> str:
    """The customer's page: conversation, status, expected response time, reply form (and CSAT once resolved)."""
    return f"{_base_url}/tickets/{token}"


def csat_url(token: str) -> str:
    """The same page opened at its rating form."""
    return f"{_base_url}/tickets/{token}/csat"


def reference(ticket_id: str) -> str:
    """The short ticket number customers see and quote in subjects, e.g. "3F2B9C1E"."""
    return ticket_id.split("-")[0].upper()
