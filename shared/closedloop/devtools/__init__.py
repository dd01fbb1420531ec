"""Helpers to run the system locally and in tests: an embedded nats-server and service processes."""
