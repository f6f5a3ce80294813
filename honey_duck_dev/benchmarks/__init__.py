"""Benchmarks: every sink's throughput and peak memory against its baselines, side by side.

Run `python -m honey_duck_dev.benchmarks` (see `--help`); `approaches.SINKS` says what is measured.
"""
