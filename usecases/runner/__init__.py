"""Run machinery: the command line, one run of one use case, devices, termination.

config (conf/, Hydra) -> ``cli`` -> ``app.run_usecase`` -> a use case's ``run`` -> one record.
May import: errors, paths, numbers, measure, records (writing), a use case by name, and
``report`` at a run's end (the only place that calls it). Nothing imports ``run`` but
run.py and the bench tools (for ``devices``).
"""
