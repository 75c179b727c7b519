"""usecase-bench: reproducible benchmarks of the Galaxy Europe GPU JupyterLab use cases.

The Python API (``usecases/api.py``, loaded on first use so that ``import usecases`` stays
light): ``run(usecase, *overrides)``, ``resume(run_dir)``, ``load_record(path)``,
``compare(baseline, current)``, ``report(records, out=...)`` and ``UserError``, the one
exception a user can fix.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["UserError", "__version__", "compare", "load_record", "report", "resume", "run"]
_API = {"UserError", "compare", "load_record", "report", "resume", "run"}


def __getattr__(name: str):
    if name in _API:
        from usecases import api

        return getattr(api, name)
    raise AttributeError(f"module 'usecases' has no attribute {name!r}")
