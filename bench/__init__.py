"""Benchmarks for myositis-cds: ``python -m bench`` (see ``bench/__main__.py``).

Every figure is a ratio against a floor measured in the same run on the same
machine, so results from different machines can be compared by their ratios.
"""
