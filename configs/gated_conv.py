"""Deep gated residual convolutions on chains (gated_conv1d) and square
lattices (gated_conv2d), and their fast twins.

Launch: `--config=configs/gated_conv.py:fast=True,lattice=square,L=8`.
Arguments: those of `configs.base` (activation: before the output layer)
and
  lattice: chain (gated_conv1d, L sites) | square (gated_conv2d, L x L).
  kernel: 1D: k; 2D: (kh, kw) with kw odd, or one int for both.
  dilation: one value, one per layer, or `wavenet` (doubling per layer).
"""

from configs import base
from zoo import config_tools

# A chain: dilations 1, 2, 4, 8 twice (receptive field 31 sites).
ARGS = dict(base.ARGS, lattice="chain", L=32, layers=8, features=(16,),
            kernel=(2,), dilation=(1, 2, 4, 8, 1, 2, 4, 8))
# A square lattice: 2 x 3 kernels (the row above and the current row).
SQUARE = dict(lattice="square", L=8, layers=6, kernel=(2, 3), dilation=(1,))

# Registered names -> the arguments they change.
VARIANTS = {
    "gated_conv1d": {},
    "fast_gated_conv1d": dict(fast=True),
    "fast_gated_conv1d_deep": dict(
        fast=True, L=64, layers=16,
        dilation=(1, 2, 4, 8, 16, 32) * 2 + (1, 2, 4, 8)),
    "gated_conv2d": SQUARE,
    "fast_gated_conv2d": dict(SQUARE, fast=True),
    "fast_gated_conv2d_deep": dict(SQUARE, fast=True, layers=12),
    "fast_gated_conv2d_medium": dict(SQUARE, fast=True, features=32),
}


def config_from_args(args):
  shape = base.lattice_shape(args.lattice, args.L)
  cfg = base.space_config(args, shape)
  cfg.model = base.model_section(
      "gated_conv1d" if len(shape) == 1 else "gated_conv2d", args,
      layers=args.layers,  # gated residual blocks after the input layer
      features=base.one_or_tuple(args.features),  # the residual stream width
      kernel_size=base.one_or_tuple(args.kernel),  # k, or (kh, kw)
      # One value, one per layer, or "wavenet".
      kernel_dilation=base.one_or_tuple(args.dilation),
      activation=args.activation,  # before the output layer, by name
      use_bias=True,  # a bias in every layer
  )
  return base.finish(cfg, args)


def get_config(arg=None):
  return config_from_args(config_tools.parse_arg(arg, **ARGS))
