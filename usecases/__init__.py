"""usecase-bench: reproducible benchmarks of the Galaxy Europe GPU JupyterLab use cases."""

__version__ = "0.1.0"
