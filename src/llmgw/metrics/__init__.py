"""Metrics: per-attempt events, the task that owns the SQLite database, and the queries
behind /stats."""
