"""Write side of the recommendations app, split by sub-domain.

- ``registry``: model versions, atomic activation and rollback, stored recommendation sets.
- ``training``: dataset building from the CRM, training runs, evaluation and promotion.
- ``embedding``: item text embeddings, re-computed only for changed text.
- ``scoring``: scoring customers in shards and writing their top-K with reasons.
"""
