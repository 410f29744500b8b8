"""Routing state kept where every worker sees it: SQLite for the workers of one host, Redis
(or Valkey) for every replica behind a load balancer."""
