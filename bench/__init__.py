"""Benchmarks: `make bench` prints figures side by side with their baselines and writes .bench/results.json."""
