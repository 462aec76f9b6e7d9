"""Benchmarks (not part of the berth package): `python bench/api.py`, see bench/RESULTS.md."""
