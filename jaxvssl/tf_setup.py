"""The one way jaxvssl imports TensorFlow: with every GPU hidden from it.

TensorFlow is only the input pipeline here. Left alone it grabs all GPU memory
at import time and competes with JAX for the accelerator, so GPUs must be
hidden from TF before any TF op runs. Use::

    from jaxvssl.tf_setup import import_tensorflow
    tf = import_tensorflow()

instead of ``import tensorflow as tf`` in every module that needs TF (TFDS
builders included: import this before ``tensorflow_datasets`` touches TF).
"""

from __future__ import annotations

import threading
from types import ModuleType

_lock = threading.Lock()
_configured = False


def import_tensorflow() -> ModuleType:
  """Imports TensorFlow, hides its GPUs (once per process) and returns it."""
  global _configured
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  with _lock:
    if not _configured:
      try:
        tf.config.set_visible_devices([], 'GPU')
      except RuntimeError as e:
        # Raised when TF already initialised its devices (someone imported and
        # used TF before us). Hiding is then impossible; say so loudly only if
        # TF actually holds a GPU.
        if tf.config.get_visible_devices('GPU'):
          raise RuntimeError(
            'jaxvssl.tf_setup: TensorFlow was initialised with a visible '
            'GPU before import_tensorflow() could hide it; call '
            'import_tensorflow() before any other TensorFlow use.'
          ) from e
      _configured = True
  return tf
