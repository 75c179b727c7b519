"""Measurement: timing with warm-up excluded, GEMM ceilings, the precision choice, the machine
(environment, GPUs via nvidia-smi).

Leaf helpers for the run machinery, the use cases and the benchmarks: they import errors,
paths and numbers only, never the run machinery, a use case or a consumer of records.
"""
