"""Masked conv2d ARNNs on L x L lattices, and their fast twins.

Launch: `--config=configs/arnn_conv2d.py:fast=True,L=8`; a rectangle with
`--config.lattice.shape='(4, 6)'`. Arguments: those of `configs.base` and
  kernel: (kh, kw) with kw odd (kh rows up to the current one, kw columns
    centred on it), or one int for both.
  dilation: one value (an int or a (dh, dw) pair), one per layer, or
    `wavenet` ((1, 1), (2, 2), (4, 4), ... doubling per layer).
"""

from configs import base
from zoo import config_tools

ARGS = dict(base.ARGS, L=8, layers=4, kernel=(3, 3), dilation=(1,))

# Registered names -> the arguments they change.
VARIANTS = {
    "arnn_conv2d": {},
    "fast_arnn_conv2d": dict(fast=True),
    "fast_arnn_conv2d_dilated": dict(fast=True, kernel=(2, 3),
                                     dilation="wavenet"),
    "fast_arnn_conv2d_pyramid": dict(fast=True, features=("pyramid", 32)),
    # Bosons with up to 2 per site, e.g. for the Bose-Hubbard square lattice.
}


def config_from_args(args):
  cfg = base.model_config(
      "conv2d", args, shape=(args.L, args.L),
      kernel_size=base.one_or_tuple(args.kernel),  # (kh, kw) or k
      # One value, one per layer, or "wavenet".
      kernel_dilation=base.one_or_tuple(args.dilation))
  return base.finish(cfg, args)


def get_config(arg=None):
  return config_from_args(config_tools.parse_arg(arg, **ARGS))
