"""Serving: the lists a scheduled run publishes (``user_recommendations``), exports, lookup."""
