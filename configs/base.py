"""The model config every family module starts from.

A family module (`arnn_dense.py`, `arnn_conv1d.py`, `arnn_conv2d.py`) holds
its argument defaults `ARGS` (the base `ARGS` plus its own), a function
`config_from_args(args)` and a table `VARIANTS` of named variants, each a
small diff of `ARGS`. `get_config("name:arg")` parses `arg` against the
variant's defaults, so every argument of the family works for every variant.

A model config has three sections, read by `zoo.build.model`: `lattice`
and `hilbert` (`space_config`) and `model` (every field commented where it
is set: `model_config` for the masked families, the family modules for the
others).

Arguments (`key=value,...`; see `zoo.config_tools.parse_arg` for the syntax):
  fast: build the fast twin (cached one-site conditionals).
  hilbert: spin_half | spin_one | fock.
  L: a chain of L sites or an L x L lattice.
  pbc: periodic (True) or open boundaries (read by the recurrent family).
  n_max: fock only, the highest occupation per site.
  total: the sector, the sum of the local-state values of every
    configuration (spin_half: 2 S^z); empty for the whole space.
  layers: number of masked layers.
  features: hidden width F (`16`), hidden widths (`32:16:8`, `layers - 1`
    of them), or a schedule down to the local size (`pyramid:32`, `log:64`).
  dtype: parameter dtype, float32 | float64 | complex64 | complex128.
  activation: selu | relu | tanh (on real and imaginary parts).
  machine_pow: p in sum_s |psi(s)|^p = 1; 2 for a wavefunction.
  symmetries: "" or names of zoo.models.symmetric (`translations:spin_flip`
    for several): the model symmetrized over their group.
  tiny: shrink to a few sites and features (`zoo.config_tools.shrink`).
"""

from __future__ import annotations

from typing import Callable

from ml_collections import config_dict

from zoo import config_tools

ARGS = dict(
    fast=False,
    hilbert="spin_half",
    L=16,
    pbc=True,
    n_max=3,
    total="",
    layers=3,
    features=(16,),
    dtype="float64",
    activation="selu",
    machine_pow=2,
    symmetries="",
    tiny=False,
)


def one_or_tuple(value: tuple):
  """A tuple argument as a field value; `(16,)` becomes 16."""
  return value[0] if len(value) == 1 else value


def space_config(args, shape: tuple[int, ...]) -> config_dict.ConfigDict:
  """The lattice and hilbert sections every family shares."""
  cfg = config_dict.ConfigDict()
  cfg.lattice = config_tools.section(
      shape=shape,  # (N,) chain or (Lx, Ly) lattice, raster order
      pbc=args.pbc,  # periodic (True) or open boundaries
  )
  cfg.hilbert = config_tools.section(
      kind=args.hilbert,  # spin_half | spin_one | fock | custom
      # Highest occupation, fock only (None otherwise).
      n_max=args.n_max if args.hilbert == "fock" else None,
      local_states=None,  # custom only: the local-state values
      # None, or the sum of the local-state values of every configuration:
      # spin_half 2 S^z (0: the S^z = 0 sector), spin_one S^z, fock particles.
      total=float(args.total) if args.total else None,
  )
  return cfg


def model_section(family: str, args, **family_fields) -> config_dict.ConfigDict:
  """A model section: the fields every family has, then `family_fields`
  (commented where the family module sets them)."""
  return config_tools.section(
      family=family,  # a key of zoo.models.FAMILIES
      fast=args.fast,  # the cached one-site pass (the Fast* twin)
      **family_fields,
      # float32 | float64 | complex64 | complex128 (gru, transformer, gated:
      # real blocks and a complex output layer, the phase)
      param_dtype=args.dtype,
      precision=None,  # a jax.lax.Precision name, or None
      machine_pow=args.machine_pow,  # p in sum |psi|^p = 1
      # "" or a comma-separated list of zoo.models.symmetric.NAMES: the
      # model is symmetrized over the group they generate.
      symmetries=args.symmetries,
  )


def model_config(family: str, args, shape: tuple[int, ...],
                 **family_fields) -> config_dict.ConfigDict:
  """The lattice, hilbert and model sections of a masked family (dense,
  conv1d, conv2d); `family_fields` join the fields every masked family
  has."""
  cfg = space_config(args, shape)
  cfg.model = model_section(
      family, args,
      layers=args.layers,  # masked layers; the last outputs local_size
      # Hidden width F, hidden widths (F1, ..., F_{layers-1}), all widths
      # ending in local_size, or ("pyramid" | "log", F) down to local_size.
      features=one_or_tuple(args.features),
      activation=args.activation,  # selu | relu | tanh, by name
      use_bias=True,  # a bias in every layer
      **family_fields)
  return cfg


def lattice_shape(lattice: str, size: int) -> tuple[int, ...]:
  """(L,) for lattice="chain", (L, L) for "square"."""
  if lattice not in ("chain", "square"):
    raise ValueError(f"argument lattice={lattice!r} is not one of chain, "
                     "square")
  return (size,) if lattice == "chain" else (size, size)


def finish(cfg: config_dict.ConfigDict, args) -> config_dict.ConfigDict:
  """Applies the arguments every family shares after the family fields."""
  return config_tools.shrink(cfg) if args.tiny else cfg


def variants(args: dict, table: dict[str, dict],
             config_from_args: Callable) -> dict[str, Callable]:
  """One `get_config(arg=None)` per row of a variant table.

  Args:
    args: the family's argument defaults.
    table: variant name -> the arguments it changes.
    config_from_args: the family's builder from parsed arguments.
  """
  functions = {}
  for name, diff in table.items():
    unknown = sorted(set(diff) - set(args))
    if unknown:
      raise ValueError(
          f"variant {name!r} sets unknown argument {unknown[0]!r}; known: "
          f"{', '.join(sorted(args))}")
    # Tuple arguments may be written as one value in a table.
    diff = {k: (v,) if isinstance(args[k], tuple) and not isinstance(v, tuple)
            else v for k, v in diff.items()}
    get_config = _get_config_with_defaults({**args, **diff}, config_from_args)
    get_config.__qualname__ = get_config.__name__ = f"get_config[{name}]"
    get_config.__module__ = config_from_args.__module__
    get_config.__doc__ = (
        f"{name}: {config_tools.format_arg(diff) or 'the defaults'}.")
    functions[name] = get_config
  return functions


def _get_config_with_defaults(defaults: dict,
                              config_from_args: Callable) -> Callable:

  def get_config(arg=None):
    return config_from_args(config_tools.parse_arg(arg, **defaults))

  return get_config
