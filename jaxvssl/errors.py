"""The errors a user can cause, each printed by the command line as one line with an exit code.

Every module raises these (never a bare ValueError for a user mistake), so `jaxvssl.cli` can map
them to the documented exit codes (docs/cli.md) without importing the layers that raise them.
"""

from __future__ import annotations


class ConfigError(ValueError):
  """A config key is unknown, missing, of the wrong type or has an impossible value (exit 2)."""


class PretrainedWeightsError(ValueError):
  """Pretrained weights (e.g. CACL's frame encoder) are missing or do not fit the network (exit 2)."""


class ResumeMismatchError(ValueError):
  """The workdir's checkpoint was written by a config whose train state has another shape (exit 2)."""


class NonFiniteLossError(RuntimeError):
  """The training loss became NaN or Inf (exit 3)."""
