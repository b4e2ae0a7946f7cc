"""The family record: everything the zoo knows about one model family.

Each body module declares the records of the families it holds
(`RECORDS`, a tuple of `Family`); `zoo.models.families` gathers them into
`FAMILIES`, the one table, and builds the constructors. Configs, `shrink`,
`describe`, the NetKet plugin, transfer and the tests read the table, so
nothing else names a family. Adding a family takes its body module (with
its record) and its config module.

The fields a family may take are shared by name (`COMMON`, `MASKED`,
`CONV`): their validation and defaults live in `zoo.models.families`,
which resolves them into an `ARNNSpec` the way the record says (widths,
kernels, the generation order).

Glossary of shapes:
  N: sites; (Lx, Ly): a 2D lattice's shape.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

# The fields every family takes besides `hilbert` (and `fast`); the masked
# layers' (activation between layers, bias); the convolutions' kernels.
COMMON = ("layers", "features", "param_dtype", "precision", "machine_pow",
          "kernel_init")
MASKED = COMMON + ("activation", "use_bias", "bias_init")
CONV = MASKED + ("kernel_size", "kernel_dilation")


@dataclasses.dataclass(frozen=True, eq=False)
class Family:
  """One model family (compared by identity).

  Attributes:
    name: the key configs use (`model.family`) and the Haiku module's name
      (`arnn_<name>/~/...`, so parameter paths follow it).
    title: the family in its constructors' names, one scheme for all:
      `ARNN<title>` (full passes) and `FastARNN<title>` (the cached one-site
      pass), e.g. "GRU": ARNNGRU, FastARNNGRU (`slow`, `fast`).
    body: the body class (the protocol in `zoo.models.arnn`).
    fields: the fields it takes besides `hilbert` and `fast`.
    defaults: defaults of its own fields (the shared ones' are in
      `zoo.models.families.DEFAULTS`).
    two_d: whether it needs a 2D lattice shape (Lx, Ly) (its kernels are
      (kh, kw)); else its kernels, if any, are 1D.
    masked_widths: whether `features` gives every layer's width down to
      `hilbert.local_size` (schedules allowed: the masked stack); else the
      width of each block before an output layer.
    residual: whether its blocks add to one stream (one width for all).
    size_dependent: whether its parameter shapes depend on the number of
      sites (else weights made on N sites run on N'; `zoo.transfer`).
    netket: whether NetKet's ARNN weights convert to it (`zoo.netket`).
    order: hilbert -> the generation order (a tuple of sites), or None for
      raster order; None: raster on every lattice.
    summary: one line for the docs and `describe`.
    example: small fields the contract tests build it with.
    example_lattice: "chain" or "square": where the contract tests run it.
    aliases: older names of its (slow, fast) constructors, still exported
      and the same functions; they go in a later release.
  """

  name: str
  title: str
  body: type
  fields: tuple[str, ...]
  defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  two_d: bool = False
  masked_widths: bool = False
  residual: bool = False
  size_dependent: bool = False
  netket: bool = False
  order: Callable[[Any], tuple[int, ...] | None] | None = None
  summary: str = ""
  example: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  example_lattice: str = "chain"
  aliases: tuple[str, str] | None = None

  @property
  def slow(self) -> str:
    """The name of its constructor of full passes."""
    return "ARNN" + self.title

  @property
  def fast(self) -> str:
    """The name of its cached twin's constructor."""
    return "FastARNN" + self.title

  def __post_init__(self):
    unknown = set(self.defaults) - set(self.fields)
    if unknown:
      raise ValueError(f"family {self.name!r}: defaults of fields it does not "
                       f"take: {sorted(unknown)}")
    if self.example_lattice not in ("chain", "square"):
      raise ValueError(f"family {self.name!r}: example_lattice must be "
                       f"'chain' or 'square', not {self.example_lattice!r}")

  @property
  def kernel_rank(self) -> int:
    """0 without kernels, else 1 (k,) or 2 (kh, kw)."""
    if "kernel_size" not in self.fields:
      return 0
    return 2 if self.two_d else 1

  def generation_order(self, hilbert) -> tuple[int, ...] | None:
    """The order its sites are generated in on `hilbert` (None: raster)."""
    return None if self.order is None else self.order(hilbert)
