"""The one method registry: `config.method` -> the `Method` class.

A method registers itself with the `@register` decorator in its own module; importing
`jaxvssl.methods` imports every built-in method. `jaxvssl.config` reads each method's defaults and
checks from here, so adding a method is one new file plus one import line in `methods/__init__.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ml_collections

from jaxvssl.errors import ConfigError

if TYPE_CHECKING:
  from jaxvssl.methods.base import Method

_METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
  """Class decorator: makes `cls` available as `config.method = cls.name`."""
  if cls.name in _METHODS and _METHODS[cls.name] is not cls:
    raise ValueError(f'method name {cls.name!r} is registered twice ({_METHODS[cls.name]}, {cls})')
  _METHODS[cls.name] = cls
  return cls


def available_methods() -> list[str]:
  return sorted(_METHODS)


def get_method_class(name: str) -> type[Method]:
  if name not in _METHODS:
    raise ConfigError(f'config.method={name!r} is unknown; known methods: {available_methods()}')
  return _METHODS[name]


def build(config: ml_collections.ConfigDict, num_devices: int = 1) -> Method:
  """The method object of a validated config."""
  return get_method_class(config.method)(config, num_devices)
