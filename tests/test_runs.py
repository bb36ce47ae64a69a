"""jaxvssl.runs: BatchNorm statistics re-estimated on natural clips before evaluation
(`evaluation.recompute_bn_batches`)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvssl import runs
from jaxvssl.evaluation import features
from jaxvssl.models.norm import BatchNorm
from jaxvssl.tf_setup import import_tensorflow
from tests import helpers


class _Net(nn.Module):
  """Dense -> grouped BatchNorm -> BatchNorm: the second layer's input depends on the first's."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = BatchNorm(num_groups=2, momentum=0.8, name='bn0')(x, use_running_average=not train)
    x = nn.Dense(3, name='dense')(x)
    return BatchNorm(momentum=0.9, name='bn1')(x, use_running_average=not train)


def test_recompute_batch_stats_is_the_mean_of_the_batch_statistics():
  module = _Net()
  rng = np.random.default_rng(0)
  batches = [rng.normal(2.0, 3.0, size=(8, 5)).astype(np.float32) for _ in range(3)]
  variables = module.init(jax.random.PRNGKey(0), jnp.zeros((8, 5)), train=False)
  new = runs.recompute_batch_stats(module, variables, iter(batches))
  # Reference, by hand: group statistics of bn0's input, then bn1's input from the same batch.
  stats = {'bn0': ([], []), 'bn1': ([], [])}
  for x in batches:
    groups = x.reshape(2, 4, 5)
    stats['bn0'][0].append(groups.mean(1).mean(0))
    stats['bn0'][1].append(groups.var(1).mean(0))
    normed = (groups - groups.mean(1, keepdims=True)) / np.sqrt(groups.var(1, keepdims=True) + 1e-5)
    h = normed.reshape(8, 5) * np.asarray(variables['params']['bn0']['scale']) + np.asarray(
      variables['params']['bn0']['bias']
    )
    h = h @ np.asarray(variables['params']['dense']['kernel']) + np.asarray(
      variables['params']['dense']['bias']
    )
    stats['bn1'][0].append(h.mean(0))
    stats['bn1'][1].append(h.var(0))
  for layer, (means, variances) in stats.items():
    got = new['batch_stats'][layer]
    np.testing.assert_allclose(got['mean'], np.mean(means, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got['var'], np.mean(variances, 0), rtol=1e-4, atol=1e-5)
  # The parameters are untouched and the input variables are not modified.
  assert new['params'] is variables['params']
  np.testing.assert_array_equal(variables['batch_stats']['bn1']['var'], np.ones(3))
  # No batch: the variables as they are.
  assert runs.recompute_batch_stats(module, variables, iter(())) is variables


def _video_source(num_videos=6, length=12, size=20):
  """Skip-decoded TFDS-format videos with random frames."""
  tf = import_tensorflow()
  rng = np.random.default_rng(0)
  frames = tf.stack(
    [tf.io.encode_jpeg(rng.integers(0, 255, (size, size, 3), np.uint8)) for _ in range(length)]
  )
  return tf.data.Dataset.from_tensor_slices(
    {
      'video': tf.stack([frames] * num_videos),
      'label': tf.range(num_videos, dtype=tf.int64) % 2,
      'video_id': tf.constant([f'v{i}' for i in range(num_videos)]),
      'num_frames': tf.fill([num_videos], length),
      'fps': tf.fill([num_videos], 8.0),
      'motion_scores': tf.zeros([num_videos, 2]),
    }
  )


def test_embedding_with_recomputed_statistics_and_zero_is_a_no_op():
  config = helpers.tiny_config(
    'moco', **{'evaluation.recompute_bn_batches': 2, 'batch_size': 4, 'data.num_parallel_calls': 1}
  )
  method, params, state = runs.random_init(config)
  batches = list(runs.natural_clip_batches(config, source=_video_source()))
  assert len(batches) == 2 and batches[0].shape == (4, 4, 16, 16, 3)
  assert not list(runs.natural_clip_batches(config, num_batches=0, source=_video_source()))
  variables = method.backbone_variables(params, state)
  new = runs.recompute_batch_stats(method.backbone(), variables, batches)
  changed = jax.tree_util.tree_map(
    lambda a, b: not np.allclose(a, b), new['batch_stats'], variables['batch_stats']
  )
  assert all(jax.tree_util.tree_leaves(changed))  # every running statistic re-estimated
  clips = np.random.default_rng(1).normal(size=(3, 4, 16, 16, 3)).astype(np.float32)
  plain = runs.embed_fn_from_state(config, method, params, state)(clips)
  recomputed = runs.embed_fn_from_state(config, method, params, state, bn_batches=batches)(clips)
  assert not np.allclose(plain, recomputed)
  # bn_batches=None (what evaluate passes when recompute_bn_batches=0) is the old embedding.
  old = features.make_backbone_embed_fn(
    method.backbone(), variables, batch_size=config.evaluation.batch_size * 10, feature='pooled'
  )
  np.testing.assert_array_equal(plain, old(clips))
