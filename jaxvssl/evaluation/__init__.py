"""Evaluation suite: features, retrieval, linear probe, finetune, shuffle sensitivity, reports.

Modules (import the one you need; the numpy-only ones do not pull in JAX):
  features      extract_features / make_backbone_embed_fn / feature cache      (numpy; JAX lazily)
  aggregation   clip-level vs video-level top-1 from per-clip logits [V, N, C] (numpy)
  retrieval     chunked exact cosine top-k, R@k, per-query JSON                (numpy)
  linear_probe  logistic regression on frozen features, grid on a train split  (JAX / optax)
  finetune      whole-network finetuning with a new head                        (JAX / flax / optax)
  shuffle       shuffle sensitivity of a trained linear probe                  (numpy + linear_probe)
  reports       results.json / results.md, compare() ablation table            (stdlib)
  plots         loss / R@k curves, retrieval gallery, 2-D embedding            (matplotlib Agg)
  monitor       online kNN / R@k monitoring during pretraining                 (numpy)
  suite         evaluate_frozen: retrieval + linear probe + shuffle, cached features, summary
"""
