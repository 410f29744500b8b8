"""The HTTP layer: the Quart app, its endpoints, the ASGI edge and the server."""
