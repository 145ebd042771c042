"""malgen: a MAL-shaped synthetic data generator (test and benchmark data for anime_recs).

Writes the three MAL 2020 files (``anime.csv``, ``anime_with_synopsis.csv``,
``rating_complete.csv``) deterministically from a seed (:mod:`malgen.generate`), with synopses
and names from :mod:`malgen.text` and aggregate statistics calibrated to the real files
(:mod:`malgen.calibration`, data in ``calibration.json``). ``anime_recs`` never imports it,
and the project's wheel does not ship it: it is imported from ``lib/`` (an editable install,
pytest's ``pythonpath``, ``jobs/generate.py``).
"""
