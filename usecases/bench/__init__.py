"""Benchmark tools beside the runs: ``gpu`` times the covid_ct hot paths on one device.

Tools, not use cases: they may import the use cases, measure and records (to write records).
"""
