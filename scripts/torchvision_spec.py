"""Writes jaxvssl/interop/torchvision_spec.json: torchvision's key names and shapes per backbone.

  .venv/bin/python scripts/torchvision_spec.py    # needs torch and torchvision

The spec lets CI check `jaxvssl.interop.torch` without torch (torch's wheel pulls GBs of CUDA
libraries). The classifiers (`fc.*`, MViT `head.*`) are left out: a jaxvssl backbone ends at the pooled feature.
"""

from __future__ import annotations

import json
import os

from jaxvssl.interop import torch as interop_torch


def main() -> None:
  from torchvision.models import video  # pylint: disable=g-import-not-at-top

  spec = {}
  for backbone, name in sorted(interop_torch.TORCHVISION_NAMES.items()):
    model = getattr(video, name)()  # random init: only names and shapes are read
    spec[backbone] = {
      key: list(value.shape)
      for key, value in model.state_dict().items()
      if not key.startswith(interop_torch.CLASSIFIER_PREFIXES)
    }
  with open(interop_torch.SPEC_PATH, 'w') as f:
    json.dump(spec, f, indent=1)
    f.write('\n')
  print(f'wrote {os.path.relpath(interop_torch.SPEC_PATH)}: {sorted(spec)}')


if __name__ == '__main__':
  main()
