"""Benchmarks: what scnet-magic costs a notebook, measured side by side.

Run ``python -m benchmarks`` (or ``--quick``) from the repository root. Every comparison runs
both sides in the same process run, with interleaved repetitions, and reports medians and their
ratio: absolute times on a shared machine are noise, ratios measured together are not.
"""
