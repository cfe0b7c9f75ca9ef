"""Evaluation: benchmarks over ../shared/data-style folders and their scoring."""
