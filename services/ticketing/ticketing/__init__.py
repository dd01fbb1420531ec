"""Closedloop ticketing service."""
