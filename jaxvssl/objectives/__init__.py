"""Pure, jit-able objectives of the jaxvssl methods (float32 math, stable for large logits).

The re-exports below are grouped by the method that uses them. Four papers are reimplemented:
  * CACL: "Cross-Architecture Self-supervised Video Representation Learning" (Guo et al.,
    CVPR 2022), method `cacl`;
  * rate_order: segment sampling-rate and order prediction with shuffle-distance contrastive
    learning and view synthesis, IEEE TCSVT 2021 (DOI 10.1109/TCSVT.2021.3114209);
  * SCVRL: "SCVRL: Shuffled Contrastive Video Representation Learning" (Dorkenwald et al.,
    CVPRW 2022);
  * MLFO: "Enhancing Self-supervised Video Representation Learning via Multi-level Feature
    Optimization" (Qian et al., ICCV 2021);
plus the MoCo baseline (`moco`, `frames`). Every one is a method: `moco`, `frames`, `cacl`,
`rate_order` (with its `view_synthesis` stage), `scvrl` and `mlfo`.
Formulas and paper equations: docs/objectives.md.
"""

# Shared: `l2_normalize` (every method: embeddings and queues), `info_nce` (MoCo, SCVRL, MLFO),
# `softmax_cross_entropy` (CACL's shuffle degree, rate_order's segment order).
from jaxvssl.objectives._utils import l2_normalize
from jaxvssl.objectives.classification import softmax_cross_entropy
from jaxvssl.objectives.contrastive import info_nce

# Diagnostics (not losses): similarity to same-class vs other-class samples.
from jaxvssl.objectives.contrastive import class_similarity

# CACL: multi-positive InfoNCE over the 3D CNN / transformer pairs (plus shuffle-degree prediction
# with `softmax_cross_entropy`).
from jaxvssl.objectives.contrastive import multi_positive_info_nce

# rate_order: sampling-rate prediction (order prediction uses `softmax_cross_entropy`), shuffle
# distance for the contrastive similarity, view synthesis.
from jaxvssl.objectives.classification import rate_classification_loss
from jaxvssl.objectives.classification import rate_regression_loss
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

# SCVRL: `info_nce` with per-query negatives [B, N, D] (the shuffled copies of the positive,
# drawn on device by `group_shuffle_permutations` and applied by `permute_frames`).
from jaxvssl.objectives.feature_augment import group_shuffle_permutations
from jaxvssl.objectives.feature_augment import permute_frames

# MLFO: instance discrimination, prototype (Sinkhorn) semantic loss, graph constraint of the
# lower levels, temporal feature augmentations and timestamp retrieval.
from jaxvssl.objectives.contrastive import mlfo_instance_loss
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
from jaxvssl.objectives.temporal import timestamp_retrieval_loss

__all__ = [
  # Shared.
  'class_similarity',
  'info_nce',
  'l2_normalize',
  'softmax_cross_entropy',
  # CACL.
  'multi_positive_info_nce',
  # rate_order.
  'bilinear_sample',
  'charbonnier',
  'infomax_flow_loss',
  'infomin_loss',
  'pairwise_shuffle_distance',
  'photometric_loss',
  'rate_classification_loss',
  'rate_regression_loss',
  'shuffle_distance',
  'shuffle_similarity_logits',
  'vae_kl_loss',
  'warp_with_flow',
  # SCVRL.
  'group_shuffle_permutations',
  'permute_frames',
  # MLFO.
  'graph_loss',
  'graph_targets',
  'mlfo_instance_loss',
  'random_temporal_permutations',
  'sinkhorn_knopp',
  'sinkhorn_knopp_with_queue',
  'swapped_prediction_loss',
  'temporal_augmentation_loss',
  'temporal_augmentations',
  'temporal_reverse',
  'temporal_shuffle',
  'timestamp_retrieval_loss',
]
