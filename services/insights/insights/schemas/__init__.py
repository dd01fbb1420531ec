"""Request and answer bodies, one module per resource (the routers in api/ of the same name)."""
