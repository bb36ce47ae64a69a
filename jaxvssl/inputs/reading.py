"""Reading a split: this process's shard of a TFDS split (frames kept as JPEG bytes,
SkipDecoding) or of a caller's in-memory source, each example tagged with its global 'index'."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import ml_collections

from jaxvssl.tf_setup import import_tensorflow

# TF must never grab an accelerator that JAX owns: hide GPUs before TFDS (or
# anything else) touches TF.
tf = import_tensorflow()
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,wrong-import-position


class LocalSplit(NamedTuple):
  """This process's shard of a split.

  dataset: examples in a FIXED order, skip-decoded ('video' tf.string [T]),
    each with 'index' int32: its position in the whole split.
  num_examples: examples in this shard.
  total_examples: examples in the whole split.
  max_examples: the largest shard over all processes (eval padding target).
  """

  dataset: tf.data.Dataset
  num_examples: int
  total_examples: int
  max_examples: int


def graph_fn(fn):
  """Marks a tf.data function as plain graph code: it has no tensor-dependent
  Python control flow (tf.cond / while_loop are explicit), so AutoGraph's
  conversion would only slow down every pipeline build."""
  return tf.autograph.experimental.do_not_convert(fn)


def _with_index(ds: tf.data.Dataset, offset: int = 0, step: int = 1) -> tf.data.Dataset:
  """Adds 'index' = offset + step * position, unless examples already carry one
  (a filtered `load_split` keeps its split positions, so seeds derived from
  the index do not depend on the filter)."""
  if 'index' in ds.element_spec:
    return ds
  return ds.enumerate().map(
    graph_fn(lambda i, ex: {**ex, 'index': tf.cast(i * step + offset, tf.int32)})
  )


def load_split(
  data_cfg: ml_collections.ConfigDict, split: str, process_index: int = 0, process_count: int = 1
) -> tf.data.Dataset:
  """This process's shard of a TFDS split, frames undecoded ('video' tf.string [T]).

  Examples keep the TFDS features and gain 'index' (int32 position in the
  split). The result can be filtered / taken and passed back as `source`
  to any `make_*_dataset`. See `local_split` for the counts.
  """
  return _tfds_local_split(data_cfg, split, process_index, process_count).dataset


def _tfds_local_split(
  data_cfg: ml_collections.ConfigDict, split: str, process_index: int, process_count: int
) -> LocalSplit:
  """Sharding uses `tfds.split_for_jax_process`: each process reads only its
  contiguous part of the split; shards are disjoint and cover it. Records are
  read in a fixed order (shuffle_files=False): shuffling happens in the
  pipeline with explicit seeds, which is what makes resume exact.
  """
  _check_process(process_index, process_count)
  builder = tfds.builder(data_cfg.name, data_dir=data_cfg.data_dir)
  subsplits = [
    tfds.split_for_jax_process(split, process_index=i, process_count=process_count)
    for i in range(process_count)
  ]
  sizes = [builder.info.splits[s].num_examples for s in subsplits]
  ds = builder.as_dataset(
    split=subsplits[process_index],
    shuffle_files=False,
    decoders={'video': tfds.decode.SkipDecoding()},
  )
  offset = sum(sizes[:process_index])
  return LocalSplit(_with_index(ds, offset), sizes[process_index], sum(sizes), max(sizes))


def _count(ds: tf.data.Dataset) -> int:
  n = int(ds.cardinality())
  if n >= 0:
    return n
  if n == tf.data.INFINITE_CARDINALITY:
    raise ValueError('pipeline: source must be finite (one pass over the data set).')
  return int(ds.reduce(tf.constant(0, tf.int64), lambda c, _: c + 1))


def _source_local_split(
  source: tf.data.Dataset, process_index: int, process_count: int
) -> LocalSplit:
  """Process p takes examples p, p + P, p + 2P, ... of a finite `source`;
  'index' is the position in `source` unless examples have one. Counting a
  source of unknown cardinality (e.g. a filtered `load_split`) reads it once.
  """
  _check_process(process_index, process_count)
  total = _count(source)
  ds = _with_index(source.shard(process_count, process_index), process_index, process_count)
  return LocalSplit(
    ds, len(range(process_index, total, process_count)), total, -(-total // process_count)
  )


def _check_process(process_index: int, process_count: int) -> None:
  if not 0 <= process_index < process_count:
    raise ValueError(
      f'pipeline: process_index={process_index} not in [0, process_count={process_count}).'
    )


def local_split(
  data_cfg: ml_collections.ConfigDict,
  split: str | None,
  *,
  source: tf.data.Dataset | None = None,
  process_index: int = 0,
  process_count: int = 1,
) -> LocalSplit:
  """This process's shard with its counts: of `source` if given, else of the
  TFDS split `split` of data set `data_cfg.name`."""
  if source is not None:
    return _source_local_split(source, process_index, process_count)
  return _tfds_local_split(data_cfg, split, process_index, process_count)


def require(example: Mapping[str, Any], key: str, why: str) -> tf.Tensor:
  if key not in example:
    raise KeyError(
      f'pipeline: examples have no {key!r} (needed for {why}); keys are {sorted(example)}.'
    )
  return example[key]
