"""Closedloop common library shared by the four services."""
