"""Embedding fixtures: a tiny random BERT sentence-transformer (built once) and titles."""

from __future__ import annotations

import pytest

from anime_recs.tables import ANIME_SCHEMA

TINY_MAX_SEQ = 64


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A randomly initialised 2-layer BERT (hidden 32) + mean pooling, saved as a folder.

    The tokenizer is the packaged MiniLM's WordPiece tokenizer (offline).
    """
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from anime_recs.models import resolve_model_path

    root = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("packaged:all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )
    )
    hf_dir = root / "hf"
    bert.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    word = models.Transformer(str(hf_dir), max_seq_length=TINY_MAX_SEQ)
    pooling = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    st_dir = root / "st"
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(st_dir))
    return str(st_dir)


DESCRIPTIONS = {
    1: "A boy and his robot travel the galaxy looking for a lost planet.",
    2: "High school students form a volleyball team\nand aim for the national finals.",
    3: "  A detective   with a notebook that kills.  ",
    4: "Cooking battles decide the fate of a famous culinary academy.",
    5: "A quiet slice-of-life story about a girl who moves to the countryside "
    "and learns to grow vegetables with her grandmother, season after season.",
    6: "Mecha pilots defend the last city of humanity against giant invaders.",
}


def anime_row(anime_id: int, description: str | None, has_description: bool) -> dict:
    row = {f.name: None for f in ANIME_SCHEMA.fields}
    row.update(
        anime_id=anime_id,
        name=f"Title {anime_id}",
        description=description,
        has_description=has_description,
    )
    return row


@pytest.fixture()
def anime_df(spark):
    """Six titled anime, one without a description, one with only whitespace."""
    rows = [anime_row(i, d, True) for i, d in DESCRIPTIONS.items()]
    rows.append(anime_row(7, None, False))
    rows.append(anime_row(8, "   ", True))
    return spark.createDataFrame(rows, ANIME_SCHEMA)
