"""Autoregressive transformers on chains and square lattices, and their
fast (KV-cached) twins.

Launch: `--config=configs/transformer.py:fast=True,L=32,heads=4`. Arguments:
those of `configs.base` (but activation: the blocks use GELU) and
  lattice: chain (L sites) | square (L x L, raster order).
  heads: attention heads; they divide the width.
"""

from configs import base
from zoo import config_tools

ARGS = dict({k: v for k, v in base.ARGS.items() if k != "activation"},
            lattice="chain", L=16, layers=2, features=(16,), heads=2)

# Registered names -> the arguments they change.
VARIANTS = {
    "transformer": {},
    "fast_transformer": dict(fast=True),
    "fast_transformer_square": dict(fast=True, lattice="square", L=6),
    "fast_transformer_medium": dict(fast=True, features=32, heads=4),
}


def config_from_args(args):
  cfg = base.space_config(args, base.lattice_shape(args.lattice, args.L))
  cfg.model = base.model_section(
      "transformer", args,
      layers=args.layers,  # attention + MLP blocks; an output layer follows
      features=base.one_or_tuple(args.features),  # the residual stream width
      heads=args.heads,  # attention heads, dividing the width
  )
  return base.finish(cfg, args)


def get_config(arg=None):
  return config_from_args(config_tools.parse_arg(arg, **ARGS))
