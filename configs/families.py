"""The built-in model variants: every family module's table, by name.

`VARIANTS` maps each registered model name to its `get_config(arg=None)`;
`configs.register_configs` registers them and the experiments take their
models from it.
"""

from configs import (arnn_conv1d, arnn_conv2d, arnn_dense, base, gated_conv,
                     gru, transformer)

# The config modules of the model families.
MODULES = (arnn_dense, arnn_conv1d, arnn_conv2d, gru, transformer, gated_conv)

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
