"""Request and answer bodies, one module per resource: `feedback`, `customers`, `invitations`."""
