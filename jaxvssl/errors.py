"""The errors a user can cause, each printed by the command line as one line with an exit code.

Every module raises these (never a bare ValueError for a user mistake), so `jaxvssl.cli` can map
them to the documented exit codes (docs/cli.md) without importing the layers that raise them.
"""

from __future__ import annotations


def summary(e: BaseException, limit: int = 300) -> str:
  """`Type: first line of the message`, short enough for a one-line report."""
  lines = str(e).strip().splitlines()
  return f'{type(e).__name__}: {lines[0] if lines else ""}'[:limit]


class ConfigError(ValueError):
  """A config key is unknown, missing, of the wrong type or has an impossible value (exit 2)."""


class PretrainedWeightsError(ValueError):
  """Pretrained weights (e.g. CACL's frame encoder) are missing or do not fit the network (exit 2)."""


class ResumeMismatchError(ValueError):
  """The workdir's checkpoint was written by a config whose train state has another shape (exit 2)."""


class NonFiniteLossError(RuntimeError):
  """The training loss became NaN or Inf (exit 3)."""


class WorkdirError(OSError):
  """The workdir is not writable, or another training holds it (exit 2)."""


class CorruptCheckpointError(ValueError):
  """No checkpoint of the workdir can be restored, and the config is the run's own (exit 2)."""


class CheckpointWriteError(OSError):
  """Saving a checkpoint failed during training; earlier checkpoints are intact (exit 4)."""


class TrainingInterrupted(Exception):
  """SIGTERM or SIGINT stopped training after a checkpoint was saved (exit 128 + signal)."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum


class DataNotFoundError(FileNotFoundError):
  """The configured data set, or a run directory or checkpoint step, does not exist (exit 2)."""
