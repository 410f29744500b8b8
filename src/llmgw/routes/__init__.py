"""Thin HTTP handlers, one module per area."""
