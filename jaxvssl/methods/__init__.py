"""Method registry: `config.method` -> the Method class; importing registers config defaults."""

from __future__ import annotations

import ml_collections

from jaxvssl import config as config_lib
from jaxvssl.methods.base import Method
from jaxvssl.methods.cacl import CACL
from jaxvssl.methods.frames import Frames
from jaxvssl.methods.moco import MoCo

_METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (MoCo, CACL, Frames)}

for _name, _cls in _METHODS.items():
  config_lib.register_method_defaults(_name, _cls.defaults)


def register(cls: type[Method]) -> type[Method]:
  """Adds a method class (usable as a decorator by methods defined outside this package)."""
  _METHODS[cls.name] = cls
  config_lib.register_method_defaults(cls.name, cls.defaults)
  return cls


def available_methods() -> list[str]:
  return sorted(_METHODS)


def get_method_class(name: str) -> type[Method]:
  if name not in _METHODS:
    raise config_lib.ConfigError(f'config.method={name!r} is unknown; known: {available_methods()}')
  return _METHODS[name]


def build(config: ml_collections.ConfigDict, num_devices: int = 1) -> Method:
  return get_method_class(config.method)(config, num_devices)
