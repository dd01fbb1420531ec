"""Closedloop ingest service."""
