"""The names a setting may take, each defined once: the config validates against them and the
modules that give them a meaning import them from here. Imports nothing (not even pyspark), so
the config needs no stage package and the GPU kernels stay importable without Spark.

- :data:`BACKENDS`, :data:`QUANTIZATIONS` (``embed.embedders.<name>.backend``/``quantize``):
  the inference engines of a sentence-transformers embedder (``anime_recs.embeddings.engine``);
- :data:`RECIPES` (``finetune.recipe``): the fine-tuning recipes, each training on one table
  with one of the :data:`LOSSES` (``anime_recs.training.recipes``, ``.finetune``; ``lora``
  through low-rank adapters on the encoder, ``.lora``);
- :data:`EMBEDDER_KINDS` (``embed.embedders.<name>.kind``): an encoder run in Spark or an
  OpenAI-compatible API (``anime_recs.embeddings``);
- :data:`JACCARD_MODES` (``jaccard.mode``): how the promoter Jaccard is counted, the matrix
  broadcast or title-block tiles (``anime_recs.similarity.stage``), ``auto`` choosing.
"""

from __future__ import annotations

BACKENDS = ("torch", "onnx")
QUANTIZATIONS = ("none", "int8")
RECIPES = ("contrastive", "case_study", "lora")
LOSSES = ("CosineSimilarityLoss", "MultipleNegativesRankingLoss")
SENTENCE_TRANSFORMERS, OPENAI = "sentence-transformers", "openai"
EMBEDDER_KINDS = (SENTENCE_TRANSFORMERS, OPENAI)
AUTO, BROADCAST, TILES = "auto", "broadcast", "tiles"
JACCARD_MODES = (AUTO, BROADCAST, TILES)
