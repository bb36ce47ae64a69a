"""Pure, jit-able objectives shared by the jaxvssl methods (float32 math, stable for large logits).

See /work/notes/readme_objectives.md for formulas and paper equations.
"""

from jaxvssl.objectives.classification import rate_classification_loss
from jaxvssl.objectives.classification import rate_regression_loss
from jaxvssl.objectives.classification import softmax_cross_entropy
from jaxvssl.objectives.contrastive import info_nce
from jaxvssl.objectives.contrastive import mlfo_instance_loss
from jaxvssl.objectives.contrastive import multi_positive_info_nce
from jaxvssl.objectives.contrastive import temporal_augmentation_loss
from jaxvssl.objectives.feature_augment import random_temporal_permutations
from jaxvssl.objectives.feature_augment import temporal_augmentations
from jaxvssl.objectives.feature_augment import temporal_reverse
from jaxvssl.objectives.feature_augment import temporal_shuffle
from jaxvssl.objectives.graph import graph_loss
from jaxvssl.objectives.graph import graph_targets
from jaxvssl.objectives.prototypes import sinkhorn_knopp
from jaxvssl.objectives.prototypes import sinkhorn_knopp_with_queue
from jaxvssl.objectives.prototypes import swapped_prediction_loss
from jaxvssl.objectives.synthesis import bilinear_sample
from jaxvssl.objectives.synthesis import charbonnier
from jaxvssl.objectives.synthesis import infomax_flow_loss
from jaxvssl.objectives.synthesis import infomin_loss
from jaxvssl.objectives.synthesis import photometric_loss
from jaxvssl.objectives.synthesis import vae_kl_loss
from jaxvssl.objectives.synthesis import warp_with_flow
from jaxvssl.objectives.temporal import pairwise_shuffle_distance
from jaxvssl.objectives.temporal import shuffle_distance
from jaxvssl.objectives.temporal import shuffle_similarity_logits
from jaxvssl.objectives.temporal import timestamp_retrieval_loss

__all__ = [
  'bilinear_sample',
  'charbonnier',
  'graph_loss',
  'graph_targets',
  'info_nce',
  'infomax_flow_loss',
  'infomin_loss',
  'mlfo_instance_loss',
  'multi_positive_info_nce',
  'pairwise_shuffle_distance',
  'photometric_loss',
  'random_temporal_permutations',
  'rate_classification_loss',
  'rate_regression_loss',
  'shuffle_distance',
  'shuffle_similarity_logits',
  'sinkhorn_knopp',
  'sinkhorn_knopp_with_queue',
  'softmax_cross_entropy',
  'swapped_prediction_loss',
  'temporal_augmentation_loss',
  'temporal_augmentations',
  'temporal_reverse',
  'temporal_shuffle',
  'timestamp_retrieval_loss',
  'vae_kl_loss',
  'warp_with_flow',
]
