"""Config modules: `get_config(arg=None)` functions, plain data.

`base.py` holds the model config every family shares; `arnn_dense.py`,
`arnn_conv1d.py` and `arnn_conv2d.py` add their fields and a `VARIANTS`
table of named variants, gathered by name in `families.py`; `experiments.py`
holds the VMC experiments (a lattice, a model, a Hamiltonian, an optimizer
and a run). Load one by name through `zoo.registry`
(`get_config("fast_arnn_conv2d_dilated")`) or by path, the absl way
(`--config=configs/arnn_conv2d.py:fast=True,L=8`); `zoo.build` turns it into
running objects.

The config modules import `zoo.config_tools` and each other, never the
registry; importing one registers nothing. `zoo.registry` calls
`register_configs` on its first lookup, the same hook a plugin provides.
"""


def register_configs(registry) -> None:
  """Registers every family variant and every experiment with `registry`."""
  from configs import experiments, families  # pylint: disable=g-import-not-at-top

  for name, get_config in families.VARIANTS.items():
    registry.register(name, get_config)
  for name, get_config in experiments.EXPERIMENT_CONFIGS.items():
    registry.register(name, get_config)
