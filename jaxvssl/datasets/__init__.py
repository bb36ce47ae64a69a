"""Offline building of data sets: TFDS builders, the synthetic generator, decoding, `prepare`,
motion scores and video-file export.

Nothing here runs during training: the online input (`jaxvssl.inputs`) reads what these modules
wrote. This package imports none of its modules on purpose: importing `jaxvssl.datasets` must stay
cheap and must not pull in TensorFlow.
"""
