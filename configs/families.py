"""The built-in model variants: every family module's table, by name.

A family module is any module of `configs` with a `VARIANTS` table (and its
`ARGS` and `config_from_args`); `MODULES` gathers them, so a new family's
config module is registered by being there. `VARIANTS` maps each
registered model name to its `get_config(arg=None)`;
`configs.register_configs` registers them and the experiments take their
models from it.
"""

import importlib
import pkgutil
import sys

from configs import base

# The modules of `configs` that hold no family: the shared parts, this
# table and the experiments (which read it).
_NOT_FAMILIES = ("base", "families", "experiments")


def _family_modules() -> tuple:
  found = []
  package = sys.modules[__package__]  # configs
  for info in pkgutil.iter_modules(package.__path__):
    if info.name in _NOT_FAMILIES:
      continue
    module = importlib.import_module(f"{__package__}.{info.name}")
    if hasattr(module, "VARIANTS"):
      found.append(module)
  return tuple(found)


# The config modules of the model families.
MODULES = _family_modules()

VARIANTS = {name: get_config
            for module in MODULES
            for name, get_config in base.variants(
                module.ARGS, module.VARIANTS, module.config_from_args).items()}


def get_config(spec: str):
  """The config of a built-in variant spec, `name` or `name:arg`."""
  name, colon, arg = spec.partition(":")
  if name not in VARIANTS:
    raise ValueError(f"model {name!r} is not a built-in variant; known: "
                     f"{', '.join(sorted(VARIANTS))}")
  return VARIANTS[name](arg if colon else None)
