"""Who may do what in the console. The scopes are the project's (see the auth contract); the console
checks them on every page and action, and the services check the user's token again."""

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "agent": frozenset({"feedback:read", "tickets:read", "tickets:write", "reports:read"}),
    "lead": frozenset({"feedback:read", "tickets:read", "tickets:write", "reports:read", "config:write",
                       "models:write"}),
    "analyst": frozenset({"reports:read", "tickets:read", "feedback:read"}),
    "admin": frozenset({"admin"}),
}


# The insights section (trends, anomalies, forecasts, drivers, segments, …) is for the people who study the
# feedback, not for the people who work it: agents read the lead view's three insight charts but are
# refused these pages. A role rule of the console's, on top of the `reports:read` scope the insights API
# checks, because an agent holds that scope too (for the dashboards).
INSIGHTS_ROLES = frozenset({"analyst", "lead", "admin"})


def scopes_of(role: str) -> frozenset[str]:
    return ROLE_SCOPES.get(role, frozenset())


def allows(scopes: frozenset[str] | set[str] | list[str], needed: str) -> bool:
    """`admin` implies every scope."""
    return "admin" in scopes or needed in scopes
