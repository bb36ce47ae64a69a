"""Per-clip feature extraction from an evaluation data set, and an on-disk feature cache.

The evaluation data set (`jaxvssl.inputs.pipeline.make_eval_dataset`) yields batches
`{'clips': [B, N, T, H, W, 3], 'label': [B], 'video_id': [B], 'valid': [B]}` whose last batch is
padded with `valid=False` rows. `extract_features` embeds every clip of every valid row and drops
the padded rows, so each video of the split appears exactly once (duplicates are an error).

Features are whatever `embed_fn` returns; for the papers' protocols that is the backbone's pooled
last-layer feature (`make_backbone_embed_fn`, `[B, 512]` for C3D / R3D / R(2+1)D). They are kept
per clip (`[V, N, D]`) so that retrieval (mean over clips), the linear probe (clip- and
video-level) and shuffle sensitivity can all be computed from one extraction.

Cache: `save_features` / `load_features` store the dict as an `.npz`; `feature_fingerprint`
hashes the checkpoint (path, file names, sizes, modification times) and the evaluation config so
that a changed checkpoint or config never reuses stale features; `cached_features` ties them
together (extract once, then load). Every path may be on an object store (`gs://`, through
`etils.epath`).

Sharding: `sharded_apply` runs a network on chunks of clips split over the 'data' axis of a
`jax.sharding.Mesh` (variables replicated), like the training step. Every process passes the
same whole chunk (each process reads the whole evaluation split), so the same code runs on one
device, on several local devices and over the hosts of a pod; the output comes back replicated,
so every process holds every feature.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import numpy as np
from etils import epath

from jaxvssl import parallel
from jaxvssl import workdir as workdir_lib

EmbedFn = Callable[[np.ndarray], np.ndarray]
Features = dict[str, np.ndarray]

_REQUIRED_KEYS = ('clips', 'label', 'video_id', 'valid')


def _to_numpy(x: Any) -> np.ndarray:
  """tf.Tensor / jax.Array / list -> np.ndarray without importing TensorFlow."""
  if hasattr(x, 'numpy') and not isinstance(x, np.ndarray):
    x = x.numpy()
  return np.asarray(x)


def _decode_ids(ids: np.ndarray) -> np.ndarray:
  out = [i.decode('utf-8') if isinstance(i, bytes) else str(i) for i in ids.reshape(-1)]
  return np.asarray(out, dtype=object)


def extract_features(
  embed_fn: EmbedFn, dataset_iter: Iterable[Mapping[str, Any]], *, check_unique_ids: bool = True
) -> Features:
  """Embeds every clip of every valid video.

  Args:
    embed_fn: `clips [B', T, H, W, C] -> [B', D]`; called once per batch on the valid clips
      (B' = number of valid rows x N).
    dataset_iter: iterable of batches `{'clips': [B, N, T, H, W, C], 'label': [B],
      'video_id': [B], 'valid': [B] bool}` (numpy or tf tensors).
    check_unique_ids: raise if a video id appears twice (a pipeline that repeats or shards
      wrongly would otherwise silently bias every metric).

  Returns:
    `{'features': float32 [V, N, D], 'labels': int32 [V], 'video_ids': str [V]}` in data set
    order.
  """
  feats, labels, ids = [], [], []
  num_clips = None
  for b, batch in enumerate(dataset_iter):
    missing = [k for k in _REQUIRED_KEYS if k not in batch]
    if missing:
      raise KeyError(f'evaluation batch {b} lacks keys {missing}; has {sorted(batch)}')
    clips = _to_numpy(batch['clips'])
    valid = _to_numpy(batch['valid']).astype(bool).reshape(-1)
    if clips.ndim != 6:
      raise ValueError(f"batch {b}: 'clips' must be [B, N, T, H, W, C], got {clips.shape}")
    if valid.shape[0] != clips.shape[0]:
      raise ValueError(f"batch {b}: 'valid' has {valid.shape[0]} rows, 'clips' {clips.shape[0]}")
    if num_clips is None:
      num_clips = clips.shape[1]
    elif clips.shape[1] != num_clips:
      raise ValueError(f'batch {b}: {clips.shape[1]} clips per video, earlier batches {num_clips}')
    if not valid.any():
      continue
    clips = clips[valid]
    nb = clips.shape[0]
    emb = np.asarray(embed_fn(clips.reshape((nb * num_clips,) + clips.shape[2:])))
    if emb.ndim != 2 or emb.shape[0] != nb * num_clips:
      raise ValueError(
        f'embed_fn returned shape {emb.shape} for {nb * num_clips} clips; expected [B, D]'
      )
    feats.append(emb.astype(np.float32).reshape(nb, num_clips, -1))
    labels.append(_to_numpy(batch['label']).reshape(-1)[valid].astype(np.int32))
    ids.append(_decode_ids(_to_numpy(batch['video_id']).reshape(-1)[valid]))
  if not feats:
    raise ValueError('extract_features: the data set yielded no valid video')
  out = {
    'features': np.concatenate(feats),
    'labels': np.concatenate(labels),
    'video_ids': np.concatenate(ids),
  }
  if check_unique_ids:
    uniq, counts = np.unique(out['video_ids'].astype(str), return_counts=True)
    if (counts > 1).any():
      raise ValueError(f'duplicate video ids in evaluation data: {list(uniq[counts > 1][:5])}')
  return out


def sharded_apply(
  fn: Callable[[Any, Any], Any],
  variables: Any,
  batch_size: int | None = None,
  mesh: Any = None,
) -> EmbedFn:
  """`clips [B, ...] -> fn(variables, clips) [B, D]` as float32 numpy, jitted, in chunks.

  Args:
    fn: a pure function `(variables, x [b, ...]) -> [b, D]`, row-wise independent (eval mode).
    variables: its variables; put on the mesh's devices once, replicated.
    batch_size: if set, clips go through in chunks of this size (bounds device memory) and the
      last chunk is padded to it so only one shape is ever compiled.
    mesh: a `jax.sharding.Mesh` with a 'data' axis (`jaxvssl.parallel.make_mesh`): each chunk is
      split over it (padded to a multiple of its size); None: one device, no sharding.
  """
  if mesh is None:
    apply = jax.jit(fn)
    data, devices = None, 1
  else:
    replicated = parallel.replicated_sharding(mesh)
    data = parallel.data_sharding(mesh)
    devices = mesh.devices.size
    variables = jax.device_put(variables, replicated)
    # Replicated output: every process can read all of it (`addressable_data(0)`), also on a pod.
    apply = jax.jit(fn, in_shardings=(replicated, data), out_shardings=replicated)

  def run(chunk: np.ndarray) -> np.ndarray:
    n = chunk.shape[0]
    size = -(-max(n, batch_size or 0) // devices) * devices
    if size > n:
      chunk = np.concatenate([chunk, np.zeros((size - n,) + chunk.shape[1:], chunk.dtype)])
    if data is None:
      return np.asarray(apply(variables, chunk), np.float32)[:n]
    # Every process holds the whole chunk; each hands over the rows of its own devices.
    x = jax.make_array_from_callback(chunk.shape, data, lambda index: chunk[index])
    return np.asarray(apply(variables, x).addressable_data(0), np.float32)[:n]

  def embed(clips: np.ndarray) -> np.ndarray:
    clips = np.asarray(clips, np.float32)
    if batch_size is None:
      return run(clips)
    return np.concatenate(
      [run(clips[s : s + batch_size]) for s in range(0, len(clips), batch_size)]
    )

  return embed


def make_backbone_embed_fn(
  module: Any,
  variables: Mapping[str, Any],
  batch_size: int | None = None,
  feature: str = 'pooled',
  mesh: Any = None,
) -> EmbedFn:
  """Embedding function from a `jaxvssl.models` backbone, eval mode (BN running statistics).

  Args:
    module: flax module with `apply(variables, x [B,T,H,W,C], train=False) -> [B, D]`.
    variables: its variables (`params` and `batch_stats`).
    batch_size: if set, clips are embedded in chunks of this size (bounds device memory) and the
      last chunk is padded to it so only one shape is ever compiled.
    feature: 'pooled' (the last pooling layer, `[B, D]`) or 'pool5' (the backbone's
      `return_stages=True` 'pool5' output: the spatially max-pooled last conv map, as in
      VCOP/CACL retrieval), flattened to `[B, D']`.
    mesh: split each chunk over this mesh's 'data' axis (`sharded_apply`); None: one device.
  """
  if feature not in ('pooled', 'pool5'):
    raise ValueError(f"feature={feature!r} must be 'pooled' or 'pool5'")

  def forward(v, x):
    if feature == 'pooled':
      return module.apply(v, x, train=False)
    _, stages = module.apply(v, x, train=False, return_stages=True)
    return stages['pool5'].reshape(x.shape[0], -1)

  return sharded_apply(forward, variables, batch_size, mesh)


def feature_fingerprint(
  checkpoint: str | os.PathLike | None, config: Mapping[str, Any] | None, split: str
) -> str:
  """Hex digest identifying (checkpoint, evaluation config, split).

  The checkpoint contributes its path and, when it exists on disk, every file's relative path,
  size and modification time (cheap; a re-saved checkpoint changes the key). The config
  contributes its JSON serialisation with sorted keys (non-JSON values via `repr`).
  """
  h = hashlib.sha256()
  h.update(f'split={split}\n'.encode())
  if checkpoint is not None and not workdir_lib.is_local(checkpoint):
    ckpt = epath.Path(checkpoint)
    h.update(f'checkpoint={ckpt}\n'.encode())
    if ckpt.is_dir():  # an object store: names, sizes and modification times through epath
      for root, _, files in sorted(ckpt.walk()):
        for f in sorted(files):
          st = (epath.Path(root) / f).stat()
          rel = os.fspath(epath.Path(root) / f)[len(os.fspath(ckpt)) :]
          h.update(f'{rel}:{st.length}:{st.mtime}\n'.encode())
    elif ckpt.exists():
      st = ckpt.stat()
      h.update(f'{st.length}:{st.mtime}\n'.encode())
  elif checkpoint is not None:
    ckpt = os.path.abspath(os.fspath(checkpoint))
    h.update(f'checkpoint={ckpt}\n'.encode())
    if os.path.isdir(ckpt):
      for root, _, files in sorted(os.walk(ckpt)):
        for f in sorted(files):
          p = os.path.join(root, f)
          st = os.stat(p)
          h.update(f'{os.path.relpath(p, ckpt)}:{st.st_size}:{st.st_mtime_ns}\n'.encode())
    elif os.path.isfile(ckpt):
      st = os.stat(ckpt)
      h.update(f'{st.st_size}:{st.st_mtime_ns}\n'.encode())
  cfg = {} if config is None else dict(config)
  h.update(json.dumps(cfg, sort_keys=True, default=repr).encode())
  return h.hexdigest()[:24]


def save_features(path: str | os.PathLike, features: Features) -> str:
  """Writes `features` (the dict of `extract_features`) to `path` (.npz), atomically."""
  path = os.fspath(path)
  if not path.endswith('.npz'):
    path += '.npz'
  target = epath.Path(path)
  target.parent.mkdir(parents=True, exist_ok=True)
  buffer = io.BytesIO()
  np.savez(
    buffer,
    features=features['features'],
    labels=features['labels'],
    video_ids=np.asarray(features['video_ids']).astype(str),
  )
  # Written whole under a temporary name, then renamed: a reader never sees half a file.
  tmp = epath.Path(path[:-4] + '.tmp.npz')
  tmp.write_bytes(buffer.getvalue())
  tmp.replace(target)
  return path


def load_features(path: str | os.PathLike) -> Features:
  """Reads a file written by `save_features`."""
  with epath.Path(path).open('rb') as f, np.load(io.BytesIO(f.read()), allow_pickle=False) as z:
    return {
      'features': z['features'].astype(np.float32),
      'labels': z['labels'].astype(np.int32),
      'video_ids': z['video_ids'].astype(object),
    }


def cached_features(
  cache_dir: str | os.PathLike,
  fingerprint: str,
  extract: Callable[[], Features],
  save: bool = True,
) -> Features:
  """Loads `<cache_dir>/features_<fingerprint>.npz` or calls `extract()` and saves it there.

  `save=False`: extract without writing (the processes of a pod other than process 0; they
  check for the file at the same point, so all of them extract or none does).
  """
  path = epath.Path(cache_dir) / f'features_{fingerprint}.npz'
  if path.exists():
    return load_features(path)
  feats = extract()
  if save:
    save_features(path, feats)
  return feats
