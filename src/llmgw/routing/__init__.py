"""Route table, round-robin, circuit breaker and failover policy: pure code, clock injected."""
