"""Ablation files for `jaxvssl ablate`: each defines `get_ablation()` (docs/ablations.md)."""
