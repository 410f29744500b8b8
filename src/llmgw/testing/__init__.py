"""Test support shipped with the package: the fake provider used by tests and benchmarks."""
