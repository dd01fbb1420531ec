"""Request and answer bodies, one module per resource: `users`, `api_keys`, `auth`."""
