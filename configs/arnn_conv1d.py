"""Masked conv1d ARNNs on chains, and their fast twins.

Launch: `--config=configs/arnn_conv1d.py:fast=True,L=64,dilation=wavenet`.
Arguments: those of `configs.base` and
  kernel: kernel size k (sites i - k + 1 .. i of the layer below).
  dilation: one value, one per layer (`1:2:1`), or `wavenet` (1, 2, 4, ...
    doubling per layer).
"""

from configs import base
from zoo import config_tools

ARGS = dict(base.ARGS, L=32, layers=4, kernel=(3,), dilation=(1,))

# Registered names -> the arguments they change.
VARIANTS = {
    "arnn_conv1d": {},
    "fast_arnn_conv1d": dict(fast=True),
    # Receptive field 2**layers = 32 sites: the whole default chain.
    "fast_arnn_conv1d_dilated": dict(fast=True, layers=5, kernel=2,
                                     dilation="wavenet"),
    "fast_arnn_conv1d_pyramid": dict(fast=True, features=("pyramid", 32)),
    "fast_arnn_conv1d_log": dict(fast=True, layers=5, features=("log", 64)),
    # Bosons with up to 3 per site, e.g. for the Bose-Hubbard chain.
}


def config_from_args(args):
  cfg = base.model_config(
      "conv1d", args, shape=(args.L,),
      kernel_size=base.one_or_tuple(args.kernel),  # k
      # One value, one per layer, or "wavenet".
      kernel_dilation=base.one_or_tuple(args.dilation))
  return base.finish(cfg, args)


def get_config(arg=None):
  return config_from_args(config_tools.parse_arg(arg, **ARGS))
