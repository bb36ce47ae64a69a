"""Weights in and out: backbone variable files with a JSON sidecar, and PyTorch conversion.

  files.py  save / read a backbone's variables ({'params', 'batch_stats'}) as `.npz` or flax
            msgpack, with `FILE.json` (backbone, width, input mode, crop, frames, normalisation,
            the run's config hash); `jaxvssl.hub` builds on it (export a run, load a file).
  torch.py  `to_torchvision` / `from_torchvision` for torchvision's r3d_18, r2plus1d_18 and
            mvit_v1_b; torch is
            imported only inside the functions that need it (optional extra `[torch]`).

This package sits above `jaxvssl.models` (it checks variable trees against the backbones' own
shapes) and below the methods, which read `config.init_from` through it.
"""
