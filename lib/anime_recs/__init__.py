"""Anime recommendations on Spark: promoter Jaccard, customized sentence embeddings, NPS."""

__version__ = "0.1.0"
