"""Studies over many records: the seed study (does a setting move the Dice beyond seed noise?).

A consumer of records: imports records, errors and numbers, never the gate or the report.
"""
