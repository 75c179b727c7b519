"""Measurement: timing with warm-up excluded, GEMM ceilings, the precision choice, environment.

Leaf helpers for the use cases and benchmarks; they import errors, paths, numbers and
``run.devices`` only, never a use case or a consumer of records.
"""
