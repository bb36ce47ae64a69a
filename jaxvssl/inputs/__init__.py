"""The online input: the tf.data training and evaluation pipeline, view specs, video ops, segment
and permutation samplers.

It reads data sets that `jaxvssl.datasets` built and never imports that package.
"""
