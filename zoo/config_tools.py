"""Plain-data configs: `key=value` arguments, field types, JSON, tiny sizes.

The config modules (`configs/`) import this module and nothing else from the
zoo; it imports only `zoo.hilbert` (floor 1), so no import leads back to
the configs or the registry that loads them.

Configs are `ml_collections.ConfigDict`s holding tuples, never lists. The
fields of the sections in ANY_TYPE_SECTIONS take values of any type (a
width or a tuple of widths, a value or None), so that
`--config.model.features=32` and `--config.model.features='(32, 16)'` both
parse and the builders (`zoo.build`) check what they mean;
`config_from_json(cfg.to_json())` gives `cfg` back without loss.
"""

from __future__ import annotations

import ast
import copy
import difflib
import json
from typing import Any, Mapping

from ml_collections import config_dict

from zoo import checks
from zoo import hilbert as hilbert_lib

ConfigDict = config_dict.ConfigDict

# Sections whose every field takes any type (see the module docstring).
ANY_TYPE_SECTIONS = ("lattice", "hilbert", "model")


def any_type(value) -> config_dict.FieldReference:
  """A config field that accepts values of any type."""
  return config_dict.FieldReference(value, field_type=object)


def section(**fields) -> ConfigDict:
  """A ConfigDict whose fields take any type (for ANY_TYPE_SECTIONS)."""
  return ConfigDict({k: any_type(as_tuple(v)) for k, v in fields.items()})


def as_tuple(value):
  """Lists -> tuples, recursively (into dicts too)."""
  if isinstance(value, dict):
    return {k: as_tuple(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return tuple(as_tuple(v) for v in value)
  return value


def config_from_json(text: str) -> ConfigDict:
  """A config from `cfg.to_json()` text, unchanged: arrays become tuples
  again and the fields of ANY_TYPE_SECTIONS take any type again."""
  fields = as_tuple(json.loads(text))
  for name in ANY_TYPE_SECTIONS:
    if isinstance(fields.get(name), dict):
      fields[name] = section(**fields[name])
  return ConfigDict(fields)


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
      return as_tuple(value)
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
# Tiny sizes, for tests, smoke runs and `zoo validate`.

TINY_SITES_1D = 6
TINY_SIDE_2D = 3
TINY_LAYERS = 3
TINY_FEATURES = 4
TINY_N_MAX = 2


def shrink(cfg: ConfigDict) -> ConfigDict:
  """A copy of a config at a tiny size.

  The `lattice` gets at most TINY_SITES_1D sites on a chain or TINY_SIDE_2D
  x TINY_SIDE_2D; `hilbert.n_max` at most TINY_N_MAX and `hilbert.total`
  the nearest total the smaller lattice can reach; the `model` at most
  TINY_LAYERS layers and TINY_FEATURES features (twice that for the start
  of a schedule such as ("log", 64)), per-layer values cut to the new
  depth. Everything else (family, fast, dtype, kernel, other sections) is
  kept.
  """
  cfg = copy.deepcopy(cfg)
  lattice, hilbert, model = (cfg.get(k) for k in ANY_TYPE_SECTIONS)
  if isinstance(lattice, ConfigDict) and "shape" in lattice:
    shape = tuple(lattice.shape)
    cap = TINY_SITES_1D if len(shape) == 1 else TINY_SIDE_2D
    lattice.shape = tuple(min(n, cap) for n in shape)
  if isinstance(hilbert, ConfigDict):
    if checks.is_int(hilbert.get("n_max")):
      hilbert.n_max = min(hilbert.n_max, TINY_N_MAX)
    if hilbert.get("total") is not None and isinstance(lattice, ConfigDict):
      space = hilbert_lib.of_kind(
          hilbert.kind, lattice.shape, n_max=hilbert.get("n_max"),
          local_states=hilbert.get("local_states"))
      hilbert.total = space.nearest_total(hilbert.total)
  if isinstance(model, ConfigDict) and checks.is_int(model.get("layers")):
    two_d = isinstance(lattice, ConfigDict) and len(
        tuple(lattice.get("shape") or ())) == 2
    _shrink_model(model, two_d)
  return cfg


def _shrink_model(model: ConfigDict, two_d: bool) -> None:
  layers = model.layers
  new_layers = min(layers, TINY_LAYERS)
  model.layers = new_layers
  features = as_tuple(model.get("features"))
  if checks.is_int(features):
    model.features = min(features, TINY_FEATURES)
  elif (isinstance(features, tuple) and len(features) == 2
        and isinstance(features[0], str)):  # a schedule, ("log", 64)
    model.features = (features[0], min(features[1], 2 * TINY_FEATURES))
  elif isinstance(features, tuple) and all(map(checks.is_int, features)):
    hidden = features if len(features) == layers - 1 else features[:-1]
    model.features = tuple(min(f, TINY_FEATURES)
                           for f in hidden[:new_layers - 1])
  heads = model.get("heads")
  width = model.get("features")
  if checks.is_int(heads) and checks.is_int(width):  # heads divide the width
    model.heads = max(h for h in range(1, min(heads, width) + 1)
                      if width % h == 0)
  dilation = as_tuple(model.get("kernel_dilation"))
  # On a 2D lattice a pair of ints is one (dh, dw) for every layer.
  is_pair = (two_d and isinstance(dilation, tuple)
             and len(dilation) == 2 and all(map(checks.is_int, dilation)))
  if isinstance(dilation, tuple) and len(dilation) == layers and not is_pair:
    model.kernel_dilation = dilation[:new_layers]
