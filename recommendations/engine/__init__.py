"""Tailored's ML core: pure Python (numpy, scipy, torch, transformers), never Django.

Entry points: ``data.build_dataset`` -> ``text.embed_with_cache`` ->
``train.fit_recommender`` -> ``Recommender.save`` / ``models.load_recommender``.
"""
