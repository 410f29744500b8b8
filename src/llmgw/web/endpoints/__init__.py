"""The endpoints, one module per area (chat, models, health, stats)."""
