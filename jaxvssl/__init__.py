"""jaxvssl: self-supervised video representation learning in JAX/Flax.

Layers, lowest first (docs/design.md; `tests/test_layering.py` enforces them):
  errors, tf_setup, parallel, metrics, optim, checkpointing     leaves
  models/ objectives/ inputs/ datasets/ evaluation/             building blocks, independent
    models/      3D CNN, transformer and 2D backbones (flax.linen, NDHWC)
    objectives/  pure, jit-able losses, grouped by the method that uses them
    inputs/      the online tf.data pipeline: views, video ops, segment and permutation samplers
    datasets/    offline data set building: TFDS builders, synthetic_motion, prepare, export
    evaluation/  protocols on an embedding function: retrieval, linear probe, finetune, shuffle
  methods/     one module per method, each registers itself
  config       the schema; every key validated once, at load time
  state, runs  the train state; a run directory restored as an embedding function
  train, evaluate                                               the loop; run-level evaluation
  demo, cli, main                                               entry points
"""

__version__ = '0.1.0'
