"""Routing state kept where every worker of the host sees it (SQLite)."""
