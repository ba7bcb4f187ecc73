"""Benchmarks (scripts, not tests): `python -m benchmarks.<name> --help`."""
