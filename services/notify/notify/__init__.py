"""Closedloop notify service."""
