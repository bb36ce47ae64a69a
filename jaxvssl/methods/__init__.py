"""One module per method; each registers itself in `registry` (importing this package does it).

moco    the video MoCo baseline and the template for new methods (`moco.py`)
frames  image MoCo of a 2D frame encoder (CACL's first stage)
cacl    cross-architecture contrastive learning + shuffle-degree prediction
scvrl   shuffled contrastive (group-shuffled negatives) + visual contrastive learning
mlfo    multi-level feature optimization: instance + Sinkhorn prototypes, graph-guided lower
        levels, feature-level temporal modelling
rate_order      segment order + sampling-rate prediction + MoCo with shuffle similarity, keys
                from the view-synthesis generator
view_synthesis  rate_order's view-synthesis stage (VAE generator + flow network)
"""

# Each module registers itself.
from jaxvssl.methods import cacl, frames, mlfo, moco, rate_order, scvrl, view_synthesis  # noqa: F401
from jaxvssl.methods.base import Method, RestoredRun
from jaxvssl.methods.registry import available_methods, build, get_method_class, register

__all__ = [
  'Method',
  'RestoredRun',
  'available_methods',
  'build',
  'get_method_class',
  'register',
]
