#!/usr/bin/env python
"""Run one use case end to end: ``python run.py usecase=covid_ct device=gpu`` (Hydra overrides).

Defaults reproduce the paper (dataset=covid_semiseg scale=paper device=auto); conf/ lists
every option. Writes results/<usecase>/<run id>/ with config.yaml, record.json and run.log.
"""

import sys

from usecases.runner.cli import main

if __name__ == "__main__":
    sys.exit(main())
