"""Closedloop insights: a read model of every stream, with trends, anomalies, forecasts and segments."""
