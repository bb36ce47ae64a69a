"""jaxvssl: self-supervised video representation learning in JAX/Flax.

Subpackages:
  data/        TFDS builders, the tf.data video pipeline, permutation samplers.
  models/      3D CNN, transformer and 2D backbones (flax.linen, NDHWC).
  objectives/  pure, jit-able loss functions shared by all methods.
  methods/     one module per method: views, networks, loss composition.
  evaluation/  retrieval, linear probe, finetune, shuffle sensitivity, reports.
"""

__version__ = '0.1.0'
