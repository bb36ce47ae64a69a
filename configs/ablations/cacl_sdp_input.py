"""Why "+SDP" hurts V-MoCo at the tiny scale, seeds 0, 1, 2.

  jaxvssl ablate configs/ablations/cacl_sdp_input.py [--jobs N]

The Table 1 "+SDP" rows change two things at once: the SDP loss, and the contrast input
(`contrast_input='concat'`: the head sees [G(x), G(x~)], where query and key share the
permutation of x~, a shortcut under residual input). One change per row:
  vmoco              V-MoCo ('clip', no SDP)
  vmoco_concat       V-MoCo with the 'concat' input, no SDP loss
  sdp_vmoco          SDP + V-MoCo as in Table 1 ('concat')
  sdp_vmoco_clip     SDP + V-MoCo with the 'clip' input
  sdp_vmoco_indep    SDP + V-MoCo, the key's x~ with its own permutation (`cacl.key_shuffle`)
  sdp_vmoco_bn       SDP + V-MoCo, BatchNorm statistics re-estimated on natural clips before
                     evaluation (`evaluation.recompute_bn_batches=20`)
No row uses T, so there is no frames stage.
"""

from configs.ablations.cacl_table1 import DATA
from jaxvssl.ablate import Ablation, Row


def get_ablation() -> Ablation:
  vmoco, sdp_vmoco = 'configs/cacl.py:vmoco.tiny', 'configs/cacl.py:sdp_vmoco.tiny'
  return Ablation(
    name='cacl_sdp_input',
    description=(
      'SDP + V-MoCo against V-MoCo (`configs/cacl.py`, tiny), one change per row: the SDP loss, '
      'the concatenated contrast input, the shared permutation, BatchNorm statistics.'
    ),
    rows=(
      Row('vmoco', vmoco, (), 'V-MoCo'),
      Row('vmoco_concat', vmoco, ('cacl.contrast_input=concat',), "V-MoCo, 'concat'"),
      Row('sdp_vmoco', sdp_vmoco, (), 'SDP+V-MoCo'),
      Row('sdp_vmoco_clip', sdp_vmoco, ('cacl.contrast_input=clip',), "SDP+V-MoCo, 'clip'"),
      Row('sdp_vmoco_indep', sdp_vmoco, ('cacl.key_shuffle=independent',), 'SDP+V-MoCo, own x~_k'),
      Row(
        'sdp_vmoco_bn', sdp_vmoco, ('evaluation.recompute_bn_batches=20',), 'SDP+V-MoCo, BN re-est.'
      ),
    ),
    overrides=DATA,
    random_init=True,
    seeds=(0, 1, 2),
  )
