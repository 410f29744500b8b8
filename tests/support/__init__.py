"""Test support: fake providers speaking each provider's wire format, the gateway as a server, and
process launchers. Shared by the tests and bench/; never part of the installed package."""
