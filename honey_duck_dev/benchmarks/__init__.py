"""Benchmarks: every sink's throughput and peak memory against its baselines, side by side.

Run `python -m honey_duck_dev.benchmarks` (see `--help`); `approaches/<word>.py` says what is
measured for the sink `<word>`, found by module name.
"""
