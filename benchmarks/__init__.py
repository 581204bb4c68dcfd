"""Benchmarks of redditvision; run them all with ``nox -s benchmarks``."""
