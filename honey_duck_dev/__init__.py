"""honey_duck's development tooling: the service harness and the benchmarks.

It may import `honey_duck`; `honey_duck` never imports it, so a deployment needs none of it.
"""
