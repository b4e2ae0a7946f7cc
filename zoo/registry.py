"""Configs by name: the registry, `key=value` arguments and the model builder.

A config is an `ml_collections.ConfigDict`. A model config has two sections:

  hilbert:
    kind: "spin_half" | "spin_one" | "fock" | "custom".
    shape: (N,) for a chain or (Lx, Ly) for a rectangular lattice.
    n_max: fock only, the highest occupation; None otherwise.
    local_states: custom only, the local-state values; None otherwise.
    total: None, or the sum of the local-state values of every
      configuration (`zoo.Hilbert.total`): spin_half 2 S^z (0: the S^z = 0
      sector), spin_one S^z, fock the number of particles.
  model:
    family: "dense" | "conv1d" | "conv2d".
    fast: whether to build the fast (cached) twin.
    layers, features, kernel_size, kernel_dilation, activation, use_bias,
    param_dtype, precision, machine_pow: the fields of `zoo.models.families`,
    as plain data (dtype and activation by name), with two schedules resolved
    at build time so that a changed Hilbert space or depth keeps working:
      features: an int F (F for every hidden layer), the hidden widths as a
        tuple (`layers - 1` entries; the output width `local_size` is
        appended), all `layers` widths ending in `local_size`, or a schedule
        ("pyramid", F) (linear from F down to local_size) or ("log", F)
        (geometric from F down to local_size).
      kernel_dilation: one value, one per layer, or "wavenet" (1, 2, 4, ...
        doubling per layer, in both directions for conv2d).

An experiment config may hold `model` as a spec string (a
registered name or `name:arg`) instead of a section; `build` resolves it.

Names map to functions `get_config(arg=None) -> ConfigDict`. `get_config`
takes a spec: a registered `name`, `name:arg`, or a config file `path.py` or
`path.py:arg`, where `arg` is a `key=value,key=value` string that the config
function parses with `parse_arg`. The built-in configs live in the `configs`
package and are imported on the first lookup; third-party packages add their
own through the entry-point group `arnn_zoo.configs` (see `Registry`), loaded
when a name is not found among those already registered, or by `names()`.

Configs hold tuples, never lists; `config_from_json(cfg.to_json())` gives
`cfg` back without loss.
"""

from __future__ import annotations

import ast
import copy
import difflib
import importlib
import importlib.util
import json
import math
import os
import re
import warnings
from typing import Any, Callable, Mapping

import jax
from ml_collections import config_dict
import numpy as np

from zoo import hilbert as hilbert_lib
from zoo.models import MODELS, Wavefunction

ConfigDict = config_dict.ConfigDict
GetConfig = Callable[..., ConfigDict]

ENTRY_POINT_GROUP = "arnn_zoo.configs"
BUILTINS = "configs:register_configs"

HILBERT_KINDS = ("spin_half", "spin_one", "fock", "custom")
FAMILIES = {"dense": "ARNNDense", "conv1d": "ARNNConv1D",
            "conv2d": "ARNNConv2D"}
FEATURE_SCHEDULES = ("pyramid", "log")
HILBERT_FIELDS = ("kind", "shape", "n_max", "local_states", "total")
MODEL_FIELDS = ("family", "fast", "layers", "features", "kernel_size",
                "kernel_dilation", "activation", "use_bias", "param_dtype",
                "precision", "machine_pow")
# Fields that take values of several types (an int or a tuple, a value or
# None): held as FieldReferences of type object, so that
# `--config.model.features=32` and `--config.model.features='(32, 16)'` both
# parse, and Python code may assign either.
ANY_TYPE_FIELDS = {
    "hilbert": ("n_max", "local_states", "total"),
    "model": ("features", "kernel_size", "kernel_dilation", "precision"),
    "vmc": ("total_sz",),  # experiment configs (configs/experiments.py)
}

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


def any_type(value) -> config_dict.FieldReference:
  """A config field that accepts values of any type (see ANY_TYPE_FIELDS)."""
  return config_dict.FieldReference(value, field_type=object)


# ---------------------------------------------------------------------------
# key=value arguments.


def _split_top_level(text: str, sep: str) -> list[str]:
  """Splits on `sep` outside brackets and quotes."""
  parts, depth, quote, start = [], 0, None, 0
  for i, c in enumerate(text):
    if quote:
      quote = None if c == quote else quote
    elif c in "'\"":
      quote = c
    elif c in "([{":
      depth += 1
    elif c in ")]}":
      depth -= 1
    elif c == sep and depth == 0:
      parts.append(text[start:i])
      start = i + 1
  parts.append(text[start:])
  return parts


def _literal(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _as_tuple(value):
  """Lists -> tuples, recursively (into dicts too)."""
  if isinstance(value, dict):
    return {k: _as_tuple(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return tuple(_as_tuple(v) for v in value)
  return value


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _parse_value(key: str, text: str, default):
  """Parses `text` as the type of `default`."""
  text = text.strip()

  def bad(expected):
    return ValueError(
        f"argument {key}={text!r} is not {expected} (the type of its default "
        f"{default!r})")

  if isinstance(default, bool):
    if text.lower() in _TRUE:
      return True
    if text.lower() in _FALSE:
      return False
    raise bad("a bool (True/False, true/false, 1/0)")
  if isinstance(default, int):
    try:
      return int(text)
    except ValueError:
      raise bad("an int") from None
  if isinstance(default, float):
    try:
      return float(text)
    except ValueError:
      raise bad("a float") from None
  if isinstance(default, str):
    return text
  if isinstance(default, tuple):
    if not text:
      return ()
    if text[0] in "([":
      value = _literal(text)
      if not isinstance(value, (tuple, list)):
        raise bad("a tuple such as (16, 8, 2) or 16:8:2")
      return _as_tuple(value)
    return tuple(_literal(part) for part in text.split(":"))
  raise TypeError(
      f"argument {key} has a default {default!r} of type "
      f"{type(default).__name__}; defaults must be bool, int, float, str or "
      "tuple")


def parse_arg(arg: str | None, **defaults) -> ConfigDict:
  """Parses a `key=value,key=value` string, typed by the defaults.

  The type of each default decides how its value parses: bool (True/False,
  true/false, 1/0, yes/no), int, float, str, or tuple, written `(16, 8, 2)`
  or `16:8:2` (one element: `16` is `(16,)`; elements are Python literals,
  else strings, so `pyramid:32` is `("pyramid", 32)`).

  Args:
    arg: the string, or None (or empty) for the defaults.
    **defaults: every known key and its default value.

  Returns:
    A ConfigDict with every key of `defaults`.

  Raises:
    ValueError: on an unknown key (the message lists the known ones), a
      repeated key, an item without `=`, or a value that does not parse as
      the type of its default.
  """
  values = dict(defaults)
  seen = set()
  for item in _split_top_level(arg or "", ","):
    if not item.strip():
      continue
    key, eq, text = item.partition("=")
    key = key.strip()
    if not eq:
      raise ValueError(
          f"argument {item!r} in {arg!r} is not of the form key=value; known "
          f"keys: {', '.join(sorted(defaults))}")
    if key not in defaults:
      close = difflib.get_close_matches(key, defaults, n=1)
      hint = f" (did you mean {close[0]!r}?)" if close else ""
      raise ValueError(
          f"unknown argument {key!r} in {arg!r}{hint}; known keys: "
          f"{', '.join(sorted(defaults))}")
    if key in seen:
      raise ValueError(f"argument {key!r} is given twice in {arg!r}")
    seen.add(key)
    values[key] = _parse_value(key, text, defaults[key])
  return ConfigDict(values)


def _format_value(value) -> str:
  if isinstance(value, tuple):
    # a:b:c where every element reads back as itself, else Python syntax.
    simple = value and all(
        isinstance(v, (int, float, str)) and not isinstance(v, bool)
        and str(v) and not set(str(v)) & set(":,=()[]'\" ")
        and _literal(str(v)) == v for v in value)
    return ":".join(map(str, value)) if simple else repr(value)
  return str(value)


def format_arg(values: Mapping[str, Any]) -> str:
  """The `key=value,...` string that `parse_arg` reads back as `values`."""
  return ",".join(f"{k}={_format_value(v)}" for k, v in values.items())


# ---------------------------------------------------------------------------
# JSON.


def config_from_json(text: str) -> ConfigDict:
  """A config from `cfg.to_json()` text, unchanged: arrays become tuples
  again and the fields of ANY_TYPE_FIELDS take any type again."""
  cfg = ConfigDict(_as_tuple(json.loads(text)))
  for section, fields in ANY_TYPE_FIELDS.items():
    sub = cfg.get(section)
    if isinstance(sub, ConfigDict):
      for field in fields:
        if field in sub:
          sub[field] = any_type(sub[field])
  return cfg


# ---------------------------------------------------------------------------
# The registry.


class PluginWarning(UserWarning):
  """A plugin of the `arnn_zoo.configs` group failed and was skipped."""


def _load_file(path: str, arg: str | None, spec: str) -> ConfigDict:
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
    names = sorted(self._configs)
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    if close:
      return (f"unknown config name {name!r}; closest registered names: "
              f"{', '.join(close)}")
    return (f"unknown config name {name!r}; registered names: "
            f"{', '.join(names) or '(none)'}")


def _describe(function) -> str:
  module = getattr(function, "__module__", "?")
  return f"{module}.{getattr(function, '__qualname__', function)}"


_REGISTRY = Registry()
register = _REGISTRY.register
names = _REGISTRY.names
get_config = _REGISTRY.get_config
load_plugins = _REGISTRY.load_plugins


# ---------------------------------------------------------------------------
# Building models from configs.


def _is_int(value) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_fields(section: str, cfg: ConfigDict, known) -> None:
  unknown = sorted(set(cfg) - set(known))
  if unknown:
    raise ValueError(
        f"{section}.{unknown[0]} is not a {section} field; known fields: "
        f"{', '.join(known)}")


def model_config(cfg: ConfigDict) -> ConfigDict:
  """The `hilbert` and `model` sections of a config, with a `model` spec
  string resolved through the registry (a `hilbert` section of `cfg`, if
  any, replaces the one of the named config)."""
  if not isinstance(cfg, ConfigDict) or "model" not in cfg:
    fields = sorted(cfg) if isinstance(cfg, ConfigDict) else "-"
    raise ValueError(
        f"expected a config with a `model` section (and `hilbert`), got "
        f"{type(cfg).__name__} with fields {fields}")
  if isinstance(cfg.model, str):
    named = model_config(get_config(cfg.model))
    hilbert = cfg.get("hilbert") or named.hilbert
    return ConfigDict(dict(hilbert=copy.deepcopy(hilbert), model=named.model))
  if "hilbert" not in cfg:
    raise ValueError(
        "a config with a model section needs a hilbert section too; got "
        f"fields {sorted(cfg)}")
  return ConfigDict(dict(hilbert=cfg.hilbert, model=cfg.model))


def build_hilbert(cfg: ConfigDict) -> hilbert_lib.Hilbert:
  """The Hilbert space of a `hilbert` section."""
  _check_fields("hilbert", cfg, HILBERT_FIELDS)
  kind = cfg.get("kind")
  if kind not in HILBERT_KINDS:
    raise ValueError(f"hilbert.kind={kind!r} is not one of {HILBERT_KINDS}")
  shape = cfg.get("shape")
  n_max, local_states = cfg.get("n_max"), cfg.get("local_states")
  if kind != "fock" and n_max is not None:
    raise ValueError(
        f"hilbert.n_max={n_max!r} applies only to kind='fock' (kind={kind!r})")
  if kind != "custom" and local_states is not None:
    raise ValueError(
        f"hilbert.local_states={local_states!r} applies only to kind='custom' "
        f"(kind={kind!r})")
  if kind == "spin_half":
    space = hilbert_lib.spin_half(shape)
  elif kind == "spin_one":
    space = hilbert_lib.spin_one(shape)
  elif kind == "fock":
    if not _is_int(n_max):
      raise ValueError(
          f"hilbert.n_max must be a positive integer for kind='fock', got "
          f"{n_max!r}")
    space = hilbert_lib.fock(n_max, shape)
  elif local_states is None:
    raise ValueError("hilbert.local_states is required for kind='custom'")
  else:
    space = hilbert_lib.Hilbert(local_states, shape)
  total = cfg.get("total")
  if total is None:
    return space
  try:
    return hilbert_lib.Hilbert(space.local_states, space.shape, total=total)
  except ValueError as e:
    raise ValueError(f"hilbert.total: {e}") from None


def resolve_features(features, layers: int, local_size: int) -> tuple[int, ...]:
  """The width of every layer from a features field (see the module doc).

  >>> resolve_features(("pyramid", 32), 4, 2)
  (32, 22, 12, 2)
  """
  if _is_int(features):
    return (int(features),) * (layers - 1) + (local_size,)
  features = _as_tuple(features)
  if (isinstance(features, tuple) and len(features) == 2
      and features[0] in FEATURE_SCHEDULES and _is_int(features[1])
      and features[1] >= 1):
    start = int(features[1])
    if layers == 1:
      return (local_size,)
    t = np.arange(layers) / (layers - 1)
    if features[0] == "pyramid":
      widths = start + (local_size - start) * t
    else:
      widths = start * (local_size / start)**t
    return tuple(max(1, int(round(w))) for w in widths[:-1]) + (local_size,)
  if isinstance(features, tuple) and features and all(map(_is_int, features)):
    if len(features) == layers - 1:
      return tuple(int(f) for f in features) + (local_size,)
    if len(features) == layers:
      return tuple(int(f) for f in features)
    raise ValueError(
        f"model.features={features} has {len(features)} entries; expected "
        f"layers - 1 = {layers - 1} hidden widths, or layers = {layers} "
        f"widths ending in local_size = {local_size}")
  raise ValueError(
      f"model.features={features!r} must be an int, a tuple of ints, or a "
      f"schedule ('pyramid', F) or ('log', F) with F a positive integer")


def resolve_dilation(dilation, layers: int, family: str):
  """Per-layer dilations for "wavenet"; any other value is left to the model."""
  if isinstance(dilation, str):
    if dilation != "wavenet":
      raise ValueError(
          f"model.kernel_dilation={dilation!r} must be 'wavenet', an int, or a "
          "tuple (one value or one per layer)")
    if family == "conv2d":
      return tuple((2**i, 2**i) for i in range(layers))
    return tuple(2**i for i in range(layers))
  return _as_tuple(dilation)


def build(cfg: ConfigDict) -> Wavefunction:
  """The model of a config: `cfg.model` on the Hilbert space of `cfg.hilbert`.

  Returns the `Wavefunction` bundle (`zoo.models.MODELS[...]`), ready to
  `init`, evaluate and sample. `cfg.model` may also be a spec string (see
  `model_config`).

  Raises:
    ValueError: naming the field, the value and what was expected.
  """
  cfg = model_config(cfg)
  hilbert = build_hilbert(cfg.hilbert)
  model = cfg.model
  _check_fields("model", model, MODEL_FIELDS)
  family = model.get("family")
  if family not in FAMILIES:
    raise ValueError(f"model.family={family!r} is not one of {tuple(FAMILIES)}")
  fast = model.get("fast", False)
  if not isinstance(fast, bool):
    raise ValueError(f"model.fast must be a bool, got {fast!r}")
  layers = model.get("layers")
  if not _is_int(layers) or layers < 1:
    raise ValueError(f"model.layers must be a positive integer, got {layers!r}")
  fields = {k: _as_tuple(v) for k, v in model.items()
            if k not in ("family", "fast")}
  fields["features"] = resolve_features(model.get("features"), layers,
                                        hilbert.local_size)
  if "kernel_dilation" in fields:
    fields["kernel_dilation"] = resolve_dilation(fields["kernel_dilation"],
                                                 layers, family)
  constructor = MODELS[("Fast" if fast else "") + FAMILIES[family]]
  return constructor(hilbert, **fields)


def with_fast(cfg: ConfigDict, fast: bool) -> ConfigDict:
  """A copy of a model config that builds the slow or the fast twin."""
  cfg = copy.deepcopy(model_config(cfg))
  cfg.model.fast = fast
  return cfg


# ---------------------------------------------------------------------------
# Tiny configs for tests and `zoo validate`.

TINY_SITES_1D = 6
TINY_SIDE_2D = 3
TINY_LAYERS = 3
TINY_FEATURES = 4


def shrink(cfg: ConfigDict) -> ConfigDict:
  """A copy of a model config at a tiny size, for tests and `zoo validate`.

  At most TINY_SITES_1D sites on a chain or TINY_SIDE_2D x TINY_SIDE_2D on a
  lattice, n_max <= 2, at most TINY_LAYERS layers and TINY_FEATURES features
  (8 for the start of a schedule); per-layer values are cut to the new
  depth. Everything else (family, fast, dtype, kernel, ...) is kept.
  """
  cfg = copy.deepcopy(model_config(cfg))
  h, m = cfg.hilbert, cfg.model
  shape = tuple(h.shape)
  cap = TINY_SITES_1D if len(shape) == 1 else TINY_SIDE_2D
  h.shape = tuple(min(n, cap) for n in shape)
  if _is_int(h.get("n_max")):
    h.n_max = min(h.n_max, 2)
  if h.get("total") is not None:
    h.total = _nearest_total(build_hilbert(
        ConfigDict(dict(h.items(), total=None))), h.total)
  layers = m.layers
  new_layers = min(layers, TINY_LAYERS)
  m.layers = new_layers
  features = _as_tuple(m.get("features"))
  if _is_int(features):
    m.features = min(features, TINY_FEATURES)
  elif (isinstance(features, tuple) and features
        and features[0] in FEATURE_SCHEDULES):
    m.features = (features[0], min(features[1], 2 * TINY_FEATURES))
  elif isinstance(features, tuple) and all(map(_is_int, features)):
    hidden = features if len(features) == layers - 1 else features[:-1]
    m.features = tuple(min(f, TINY_FEATURES) for f in hidden[:new_layers - 1])
  dilation = _as_tuple(m.get("kernel_dilation"))
  is_pair = (m.family == "conv2d" and isinstance(dilation, tuple)
             and len(dilation) == 2 and all(map(_is_int, dilation)))
  if isinstance(dilation, tuple) and len(dilation) == layers and not is_pair:
    m.kernel_dilation = dilation[:new_layers]
  return cfg


def _nearest_total(space: hilbert_lib.Hilbert, total: float) -> float:
  """The total that `space` can reach nearest to `total` (the lower on a tie)."""
  low, high = (space.size * v for v in (space.local_states[0],
                                          space.local_states[-1]))
  steps = math.floor((min(max(total, low), high) - low) / space.step + 0.5 - 1e-9)
  return low + steps * space.step


def parameter_shapes(model: Wavefunction):
  """The params tree of `model` as jax.ShapeDtypeStructs, without running
  the initializers."""
  return jax.eval_shape(model.init, jax.random.key(0))[0]


def parameter_count(model: Wavefunction) -> int:
  """Number of stored parameters (masked kernel entries included)."""
  return sum(math.prod(p.shape)
             for p in jax.tree.leaves(parameter_shapes(model)))
