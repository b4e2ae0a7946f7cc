"""Config modules: `get_config(arg=None)` functions, plain data.

`base.py` holds the model config every family shares; `arnn_dense.py`,
`arnn_conv1d.py` and `arnn_conv2d.py` add their fields and a `VARIANTS`
table of named variants; `experiments.py` holds the VMC experiments (a
Hamiltonian, a model by name, an optimizer and a run). Load one by name
through `zoo.registry` (`get_config("fast_arnn_conv2d_dilated")`) or by
path, the absl way (`--config=configs/arnn_conv2d.py:fast=True,L=8`).

Importing a config module registers nothing; `zoo.registry` calls
`register_configs` on its first lookup, the same hook a plugin provides.
"""

import importlib

FAMILY_MODULES = ("arnn_dense", "arnn_conv1d", "arnn_conv2d")
# Modules with their own register_configs(registry).
EXPERIMENT_MODULES = ("experiments",)


def register_configs(registry) -> None:
  """Registers every family variant and every experiment with `registry`."""
  from configs import base  # pylint: disable=g-import-not-at-top

  for module_name in FAMILY_MODULES:
    module = importlib.import_module(f"configs.{module_name}")
    for name, get_config in base.variants(
        module.ARGS, module.VARIANTS, module.config_from_args).items():
      registry.register(name, get_config)
  for module_name in EXPERIMENT_MODULES:
    importlib.import_module(f"configs.{module_name}").register_configs(registry)
