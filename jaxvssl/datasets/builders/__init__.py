"""TFDS dataset builders (``synthetic_motion`` and the real-video builders).

Import a builder module to register its data set with TFDS, e.g.
``import jaxvssl.datasets.builders.synthetic_motion`` makes
``tfds.builder('synthetic_motion/default', data_dir=...)`` resolvable.
"""
