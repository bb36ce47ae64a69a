"""Experiment configs: one file per method (`get_config(variant)`), shared scales in `common`."""
