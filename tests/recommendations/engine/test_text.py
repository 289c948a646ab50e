"""The bundled MiniLM encoder loads offline; the cache re-embeds only changed texts."""

from pathlib import Path

import numpy as np

from recommendations.engine.text import (
    EmbeddingCache,
    default_text_model_path,
    embed_with_cache,
    item_text,
)


def test_item_text_joins_the_parts():
    assert item_text("Trail boots", "Waterproof.", "Outdoor", ["hiking", ""]) == (
        "Trail boots. Outdoor. Waterproof.. tags: hiking"
    )
    assert item_text("Only title") == "Only title"


def test_default_model_ships_in_the_wheel():
    path = Path(default_text_model_path())
    assert (path / "config.json").exists() and (path / "tokenizer.json").exists()


def test_encoder_offline_normalised_and_semantic(text_encoder, monkeypatch):
    """Loading needs no network; similar texts are closer than dissimilar ones."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = text_encoder.encode([
        "waterproof hiking boots for mountain trails",
        "trekking shoes for walking in the mountains",
        "dark roast espresso coffee beans",
    ])
    assert emb.shape == (3, text_encoder.dim) == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2
    assert text_encoder.name.startswith("model-")


def test_batches_do_not_change_embeddings(text_encoder):
    texts = ["a short one", "a considerably longer text about garden tools and seeds", "mid size text"]
    together = text_encoder.encode(texts)
    alone = np.stack([text_encoder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_cache_reembeds_only_changed_texts(text_encoder, tmp_path):
    # given
    cache = EmbeddingCache(tmp_path / "cache")
    texts = ["red running shoes", "blue denim jacket", "green tea leaves"]
    first, n1 = embed_with_cache(text_encoder, texts, cache)
    # when: one text changes, one is new; reload the cache from disk
    changed = ["red running shoes", "blue denim jacket (slim fit)", "green tea leaves", "oolong tea"]
    second, n2 = embed_with_cache(text_encoder, changed, EmbeddingCache(tmp_path / "cache"))
    # then
    assert (n1, n2) == (3, 2)
    np.testing.assert_allclose(second[0], first[0])
    np.testing.assert_allclose(second[2], first[2])
    _, n3 = embed_with_cache(text_encoder, changed, EmbeddingCache(tmp_path / "cache"))
    assert n3 == 0
    assert len(EmbeddingCache(tmp_path / "cache")) == 5
