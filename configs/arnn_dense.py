"""Masked dense ARNNs on chains, and their fast twins.

Launch: `--config=configs/arnn_dense.py:fast=True,L=24`. Arguments: those of
`configs.base` (fast, hilbert, L, n_max, layers, features, dtype,
activation, machine_pow, tiny).
"""

from configs import base
from zoo import config_tools

ARGS = dict(base.ARGS)

# Registered names -> the arguments they change.
VARIANTS = {
    "arnn_dense": {},
    "fast_arnn_dense": dict(fast=True),
    "fast_arnn_dense_pyramid": dict(fast=True, layers=4,
                                    features=("pyramid", 64)),
    "fast_arnn_dense_explicit": dict(fast=True, layers=4,
                                     features=(32, 16, 8)),
}


def config_from_args(args):
  cfg = base.model_config("dense", args, shape=(args.L,))
  return base.finish(cfg, args)


def get_config(arg=None):
  return config_from_args(config_tools.parse_arg(arg, **ARGS))
