"""Input side of jaxvssl: data set builders, the tf.data pipeline and samplers.

Modules live beside this file (``motion``, ``synthetic``, ``export``, ``tf_setup``,
``builders/``...). This package imports none of them on purpose: importing
``jaxvssl.data`` must stay cheap and must not pull in TensorFlow.
"""
