"""Recurrent ARNNs (lattice GRUs) on chains and square lattices, and their
fast twins.

Launch: `--config=configs/gru.py:fast=True,L=6,features=32`. Arguments:
those of `configs.base` (but activation: the GRU has its own) and
  lattice: chain (L sites) | square (L x L, generated in snake order).
The wrap-around neighbours are read on periodic lattices (`pbc`, the
lattice's boundary).
"""

from configs import base
from zoo import config_tools

ARGS = dict({k: v for k, v in base.ARGS.items() if k != "activation"},
            lattice="square", L=6, layers=2, features=(16,))

# Registered names -> the arguments they change.
VARIANTS = {
    "gru": {},
    "fast_gru": dict(fast=True),
    "fast_gru_medium": dict(fast=True, features=32),
    "fast_gru_chain": dict(fast=True, lattice="chain", L=32),
    "fast_gru_open": dict(fast=True, pbc=False),
}


def config_from_args(args):
  cfg = base.space_config(args, base.lattice_shape(args.lattice, args.L))
  cfg.model = base.model_section(
      "gru", args,
      layers=args.layers,  # stacked GRU layers; an output layer follows
      features=base.one_or_tuple(args.features),  # hidden width, or per layer
      use_bias=True,  # biases of the gates
  )
  return base.finish(cfg, args)


def get_config(arg=None):
  return config_from_args(config_tools.parse_arg(arg, **ARGS))
