"""Configs by name: the registry, with built-ins and plugins.

Names map to functions `get_config(arg=None) -> ConfigDict`. `get_config`
takes a spec: a registered `name`, `name:arg`, or a config file `path.py` or
`path.py:arg`, where `arg` is a `key=value,key=value` string that the config
function parses (`zoo.config_tools.parse_arg`). Any kind of config may be
registered: models (sections `lattice`, `hilbert`, `model`) and experiments
(those and `hamiltonian`, `optimizer`, `vmc`, `log`); `zoo.build` turns
either into running objects.

The built-in configs live in the `configs` package and are registered on the
first lookup; third-party packages add their own through the entry-point
group `arnn_zoo.configs` (see `Registry`), loaded when a name is not found
among those already registered, or by `names()`. The config modules never
import this module, so loading them leads nowhere back here.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import re
import warnings
from typing import Any, Callable

from ml_collections import config_dict

ConfigDict = config_dict.ConfigDict
GetConfig = Callable[..., ConfigDict]

ENTRY_POINT_GROUP = "arnn_zoo.configs"
BUILTINS = "configs:register_configs"

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_SHOWN_NAMES = 12  # of an unknown name's error, when none is close


class PluginWarning(UserWarning):
  """A plugin of the `arnn_zoo.configs` group failed and was skipped."""


def _load_file(path: str, arg: str | None, spec: str) -> ConfigDict:
  if os.path.isdir(path):
    raise ValueError(
        f"config file {path!r} (from spec {spec!r}) is a folder; give a "
        "file path.py[:arg] or a registered name")
  if not os.path.isfile(path):
    raise ValueError(
        f"config file {path!r} (from spec {spec!r}) does not exist")
  module_name = "_zoo_config_" + re.sub(r"\W", "_", os.path.abspath(path))
  loader_spec = importlib.util.spec_from_file_location(module_name, path)
  module = importlib.util.module_from_spec(loader_spec)
  loader_spec.loader.exec_module(module)
  if not callable(getattr(module, "get_config", None)):
    raise ValueError(
        f"config file {path!r} has no get_config(arg=None) function")
  return module.get_config() if arg is None else module.get_config(arg)


def _resolve_object(reference: str):
  """"module:attribute" -> the object."""
  module, _, attribute = reference.partition(":")
  return getattr(importlib.import_module(module), attribute)


class Registry:
  """Names -> config functions, with built-ins and plugins loaded lazily.

  A plugin is an entry point of the group `group` (for the default registry
  `arnn_zoo.configs`) that loads a callable `register_configs(registry)`; it
  is called once with this registry and registers its configs with
  `registry.register(name, get_config)`. A plugin that fails to import or
  to register is skipped with a `PluginWarning` naming it, and the names it
  registered before failing are removed; the rest keep working.

  Attributes:
    group: the entry-point group searched for plugins, or None for none.
    builtins: "module:callable" of the built-in `register_configs`, or None.
  """

  def __init__(self, group: str | None = ENTRY_POINT_GROUP,
               builtins: str | None = BUILTINS):
    self.group = group
    self.builtins = builtins
    self._configs: dict[str, GetConfig] = {}
    self._builtins_loaded = builtins is None
    self._plugins_loaded: set[str] = set()

  def register(self, name: str, get_config: GetConfig | Any = None):
    """Registers `get_config(arg=None) -> ConfigDict` under `name`.

    Use as `register(name, get_config)`, or as a decorator `@register(name)`.
    `get_config` may also be a module with a `get_config` function. Any kind
    of config may be registered (models, experiments).

    Raises:
      ValueError: if `name` is taken or is not a name (letters, digits, `_`
        and `-`, starting with a letter).
    """
    if get_config is None:

      def decorator(fn):
        self.register(name, fn)
        return fn

      return decorator
    if not isinstance(name, str) or not _NAME.match(name):
      raise ValueError(
          f"config name {name!r} must start with a letter and hold only "
          "letters, digits, '_' and '-'")
    function = getattr(get_config, "get_config", get_config)
    if not callable(function):
      raise ValueError(
          f"config {name!r} must be registered with a get_config(arg=None) "
          f"function or a module that has one, got {get_config!r}")
    self._load_builtins()
    if name in self._configs:
      raise ValueError(
          f"config name {name!r} is already registered (by "
          f"{_describe(self._configs[name])}); pick another name")
    self._configs[name] = function
    return function

  def names(self) -> list[str]:
    """Every registered name, sorted; loads built-ins and plugins."""
    self._load_builtins()
    self.load_plugins()
    return sorted(self._configs)

  def __contains__(self, name: str) -> bool:
    return self._lookup(name) is not None

  def get_config(self, spec: str) -> ConfigDict:
    """The config of `name`, `name:arg`, `path.py` or `path.py:arg`."""
    if not isinstance(spec, str) or not spec:
      raise ValueError(
          f"spec must be a registered name, name:arg or path.py[:arg], got "
          f"{spec!r}")
    head, colon, arg = spec.partition(":")
    arg = arg if colon else None
    if head.endswith(".py"):
      cfg = _load_file(head, arg, spec)
    else:
      function = self._lookup(head)
      if function is None:
        raise ValueError(self._unknown(head))
      cfg = function() if arg is None else function(arg)
    if not isinstance(cfg, ConfigDict):
      raise ValueError(
          f"get_config of {spec!r} must return an ml_collections ConfigDict, "
          f"got {type(cfg).__name__}")
    return cfg

  def load_plugins(self) -> list[str]:
    """Loads plugins not loaded yet; returns the entry points loaded now."""
    if self.group is None:
      return []
    from importlib import metadata  # Only when a lookup needs plugins.

    loaded = []
    for entry_point in metadata.entry_points(group=self.group):
      key = f"{entry_point.name} = {entry_point.value}"
      if key in self._plugins_loaded:
        continue
      self._plugins_loaded.add(key)
      before = set(self._configs)
      try:
        register_configs = entry_point.load()
        if not callable(register_configs):
          raise TypeError(
              "the entry point must load a callable "
              f"register_configs(registry), got "
              f"{type(register_configs).__name__}")
        register_configs(self)
      except Exception as e:  # pylint: disable=broad-except
        for name in set(self._configs) - before:
          del self._configs[name]
        dist = getattr(entry_point, "dist", None)
        where = f" from distribution {dist.name!r}" if dist is not None else ""
        warnings.warn(
            f"arnn-zoo config plugin {entry_point.name!r} ({entry_point.value})"
            f"{where} failed and is skipped: {type(e).__name__}: {e}",
            PluginWarning, stacklevel=3)
        continue
      loaded.append(entry_point.name)
    return loaded

  def _load_builtins(self):
    if not self._builtins_loaded:
      self._builtins_loaded = True
      _resolve_object(self.builtins)(self)

  def _lookup(self, name: str) -> GetConfig | None:
    self._load_builtins()
    if name not in self._configs:
      self.load_plugins()
    return self._configs.get(name)

  def _unknown(self, name: str) -> str:
    if os.path.isdir(name):
      return (f"config {name!r} is a folder; give a config file "
              "path.py[:arg] or a registered name")
    if not _NAME.match(name):
      return (f"config {name!r} is neither a registered name (letters, "
              "digits, '_' and '-') nor a config file (path.py[:arg])")
    names = sorted(self._configs)
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    if close:
      return (f"unknown config name {name!r}; closest registered names: "
              f"{', '.join(close)}")
    shown = ", ".join(names[:_SHOWN_NAMES]) or "(none)"
    if len(names) > _SHOWN_NAMES:
      shown += (f", ... ({len(names)} in all: zoo.registry.names(), or "
                "python -m experiments.catalog list)")
    return f"unknown config name {name!r}; registered names: {shown}"


def _describe(function) -> str:
  module = getattr(function, "__module__", "?")
  return f"{module}.{getattr(function, '__qualname__', function)}"


_REGISTRY = Registry()
register = _REGISTRY.register
names = _REGISTRY.names
get_config = _REGISTRY.get_config
load_plugins = _REGISTRY.load_plugins
