"""Benchmarks: measure, never assert times. Run from the repository root as
``python -m benchmarks.<name>`` (``make bench`` runs them all through :mod:`benchmarks.run_all`)."""
