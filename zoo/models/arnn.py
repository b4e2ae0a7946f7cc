"""The autoregressive network: a family's body, normalized per site.

log psi(s) = sum_i log psi_i(s_i | s_<i), where the body gives K outputs
z_i per site and

  log psi_i = z_i - logsumexp(machine_pow * Re z_i) / machine_pow,

so that sum_k |psi_i(k)|^machine_pow = 1 for every site and every prefix.
With complex parameters Im z_i is the phase.

Generation order. Sites are generated in `spec.order` (raster by default):
s_<i means the sites generated before site i. The conditionals come back in
site order; the cached one-site pass and the sampler step through the order,
step t producing site order[t].

On a constrained space (`Hilbert.total`, e.g. the S^z = 0 sector) the
local states that would leave the total unreachable by the remaining sites
get z = -inf before the normalization, so the conditionals are normalized
over the allowed states and sum_s |psi(s)|^machine_pow = 1 over the sector.
The fast pass keeps the sum of the sites seen so far in its cache.

A body (one per family: `MaskedStack` here, the recurrent, attention and
gated bodies in their modules) is a `Body`, built inside the `ARNN`
module, so its Haiku modules are named `arnn_<family>/~/...`. Like Haiku's
`hk.RNNCore` (a full unroll, an initial state, one step) it has

  logits(x [B, N]) -> z [B, N, K]           the full pass, in site order
  init_cache(batch_size)                     the cache's initial state, as
                                             Haiku state (zeros)
  cached_step(x [B, N], step) -> z [K, B]    one cached step: site
                                             order[step] from the sites
                                             generated before it

(`cached_step` is every layer's and body's name for its one cached step;
the model's, normalized, is `conditional_log_psi`.)

and declares, as data, what the speed machinery of local energies
(zoo.vmc.local_energy, whose strategies hold their own speed constants)
may do with it: `restarts` (its full pass is a scan, which can restart
at any step from x's kept states: below), `suffixes` (what it
keeps of a full pass to compute the sites from a first change on) and
`reach` (below).

A body whose outputs see a bounded stretch
of earlier sites (the convolutions) is also a chain of stages over units
(a site in 1D, a row in 2D), so that a configuration that differs from
another in a few units can be evaluated only where it may differ
(zoo.vmc.local_energy):

  reach(spec) -> (unit, backs)              sites per unit, and per stage
                                            how many units back its
                                            furthest input lies (None: no
                                            bounded reach)
  units(x [B, N]) -> h [B, U, ..., 1]       the input of stage 0
  stage(i, h, valid) -> h'                  stage i; valid: h starts with
                                            backs[i] units of context that
                                            the output leaves out
  head(h) -> z [B, n, K]                    the logits of h's sites

so that logits(x) = head(stage(S - 1, ... stage(0, units(x)))).

A body whose later sites can be computed from what a configuration x
keeps of its full pass declares what it keeps, `suffixes = "linear"` (the
dense stack: its stage inputs and outputs, each layer linear in the
change) or "attention" (every block's keys and values), and has

  keep(x [B, N]) -> (kept, z)               a pytree, batch first, and
                                            x's logits [B, N, K] from the
                                            same pass
  logits_from(x' [B, m, N], kept, start)    z [B, m, N - start, K] of
                                            configurations equal to the
                                            kept ones before site `start`

A body whose full pass is a scan over the steps (the recurrent one) has
`restarts = True`: a configuration that first differs from x at step j has
x's states up to j, so its scan can start there from what x keeps of its
full pass (zoo.vmc.local_energy):

  keep(x [B, N]) -> (kept, z)               every step's states, batch
                                            last, and x's logits
  logits_restarted(x' [b, N], kept, start)  z [b, N, K] of configurations
                                            equal to the kept ones (their
                                            leaves gathered to b) before
                                            step `start`, a traced scalar

Glossary of shapes:
  B: batch, N: sites, K: local states, F: features, H x W: 2D lattice,
  T: generation steps (= N).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from zoo import nn
from zoo.hilbert import Hilbert
from zoo.models.record import CONV, MASKED, Family


@dataclasses.dataclass(frozen=True)
class ARNNSpec:
  """A fully resolved, validated architecture (see `zoo.models.families`).

  Attributes:
    family: a key of `zoo.models.families.FAMILIES`.
    hilbert: the Hilbert space; conv2d needs a 2D lattice shape.
    features: the width of each layer (block); for the masked families the
      last is `hilbert.local_size`, the others add an output layer.
    kernel_size: per layer; () where there is no kernel, (k,) for 1D
      convolutions, (kh, kw) for 2D.
    kernel_dilation: per layer, same shapes as kernel_size.
    activation: applied between layers (masked families).
    use_bias, param_dtype, precision, kernel_init, bias_init: layer fields.
    machine_pow: the p in sum |psi|^p = 1; 2 for a wavefunction.
    fast: whether `conditional` uses the cached one-site pass.
    body: the family's body class (see the module docstring).
    order: the generation order, a permutation of the sites; None is
      raster order.
    pbc: recurrent families: read the wrap-around neighbours of a periodic
      lattice.
    heads: attention heads (the transformer), else 0.
    first_taps: conv1d: "shifted" (the first layer's k taps start one site
      back) or "netket" (k - 1 taps at multiples of the dilation, NetKet's).
    takes: the names of the fields its family takes (its record's).
  """

  family: str
  hilbert: Hilbert
  features: tuple[int, ...]
  kernel_size: tuple[tuple[int, ...], ...]
  kernel_dilation: tuple[tuple[int, ...], ...]
  activation: Callable[[jax.Array], jax.Array]
  use_bias: bool
  param_dtype: Any
  precision: Any
  machine_pow: int
  kernel_init: Any
  bias_init: Any
  fast: bool
  body: Any = None
  order: tuple[int, ...] | None = None
  pbc: bool = False
  heads: int = 0
  first_taps: str = "shifted"
  takes: tuple[str, ...] = ()

  @property
  def layers(self) -> int:
    return len(self.features)

  @property
  def real_dtype(self) -> Any:
    """The real dtype of samples, probabilities and the cached sums."""
    return jnp.finfo(self.param_dtype).dtype

  @property
  def sites_in_order(self) -> np.ndarray:  # [T]
    """The site generated at each step."""
    return np.arange(self.hilbert.size) if self.order is None else np.asarray(
        self.order)


def normalize_log_psi(z: jax.Array, machine_pow: int) -> jax.Array:
  """Per-site normalization over the last axis [..., K]."""
  log_norm = jax.nn.logsumexp(machine_pow * z.real, axis=-1, keepdims=True)
  return z - log_norm / machine_pow


def allowed_states(hilbert: Hilbert, sum_before: jax.Array,
                   index: jax.Array, axis: int = -1) -> jax.Array:
  """Which local states the site of step `index` may take on a constrained
  space.

  Args:
    hilbert: a space with a `total`.
    sum_before: the sum of the values of the sites generated before step
      `index`, [...].
    index: the generation step, broadcastable against `sum_before`.
    axis: where the local states go in the result.

  Returns:
    bool, [..., K] (axis -1): state k is allowed when the sites generated
    after it can still make up the rest of the total, N_after * min <= rest
    <= N_after * max (every sum in that range is reachable: the states are
    equally spaced). After a prefix that already left the sector's reach,
    the states of the nearest prefix sum in reach are allowed (at least
    one), so that log psi outside the sector is -inf from the first
    forbidden site on, not NaN.
  """
  low, high = hilbert.local_states[0], hilbert.local_states[-1]
  # The sites from `index` on can add between N_from * low and N_from * high.
  sites_from = hilbert.size - index
  rest = hilbert.total - jnp.clip(sum_before,
                                  hilbert.total - sites_from * high,
                                  hilbert.total - sites_from * low)
  rest = jnp.expand_dims(rest, axis)  # what site `index` and those after add
  after = jnp.expand_dims(sites_from - 1, axis)
  shape = [1] * rest.ndim
  shape[axis] = hilbert.local_size
  rest = rest - hilbert.local_states_array(rest.dtype).reshape(shape)
  margin = hilbert.step / 2  # the sums lie on a grid of this step
  return (rest >= after * low - margin) & (rest <= after * high + margin)


def _restrict(z: jax.Array, allowed: jax.Array) -> jax.Array:
  """z with the states that are not allowed set to -inf (zero weight)."""
  return jnp.where(allowed, z, jnp.asarray(-jnp.inf, z.dtype))


def _make_layer(spec: ARNNSpec, i: int) -> hk.Module:
  """Masked layer i of the stack; the first is exclusive so site i never
  sees itself.

  A free function, so that Haiku names the layers arnn_<family>/~/layer_i.
  """
  common = dict(exclusive=(i == 0), use_bias=spec.use_bias,
                param_dtype=spec.param_dtype, precision=spec.precision,
                kernel_init=spec.kernel_init, bias_init=spec.bias_init,
                name=f"layer_{i}")
  features = spec.features[i]
  rank = len(spec.kernel_size[i])  # no kernel: dense; (k,); (kh, kw)
  if rank == 0:
    return nn.MaskedDense1D(spec.hilbert.size, features, **common)
  if rank == 1:
    return nn.MaskedConv1D(features, spec.kernel_size[i][0],
                           kernel_dilation=spec.kernel_dilation[i][0],
                           netket_taps=spec.first_taps == "netket", **common)
  return nn.MaskedConv2D(spec.hilbert.shape, features, spec.kernel_size[i],
                         kernel_dilation=spec.kernel_dilation[i], **common)


class Body(abc.ABC):
  """The protocol of a family's body (module docstring): the full pass, the
  cache's initial state and one cached step, with its capabilities as
  class attributes. Built from the resolved spec inside the `ARNN` module.
  """

  # Whether its full pass is a scan over the steps, so that local energies
  # may restart connected configurations at any step from what x keeps
  # (`keep`, `logits_restarted`; module doc); not for a full pass that is
  # one parallel computation.
  restarts: bool = False
  # What it keeps of a full pass to compute the sites from a first change
  # on (`keep`, `logits_from`): "linear" or "attention"; None: nothing.
  suffixes: str | None = None

  def __init__(self, spec: ARNNSpec):
    self.spec = spec

  @staticmethod
  def reach(spec: ARNNSpec) -> tuple[int, tuple[int, ...]] | None:
    """(unit, units back per stage) of a body of stages with a bounded
    reach (module doc); None: none."""
    del spec
    return None

  @abc.abstractmethod
  def logits(self, x: jax.Array) -> jax.Array:
    """The full pass: x [B, N] -> z [B, N, K], site order."""

  @abc.abstractmethod
  def init_cache(self, batch_size: int) -> None:
    """The cache's initial state, as Haiku state."""

  @abc.abstractmethod
  def cached_step(self, x: jax.Array, index: jax.Array) -> jax.Array:
    """One cached step: z [K, B] of site order[index] (module doc)."""


class MaskedStack(Body):
  """The body of the masked families (dense, conv1d, conv2d): masked layers
  with the activation between them; the input is each site's local-state
  value, one feature; raster order."""

  def __init__(self, spec: ARNNSpec):
    self.spec = spec
    self.layers = [_make_layer(spec, i) for i in range(spec.layers)]

  def _in_features(self, i: int) -> int:
    return 1 if i == 0 else self.spec.features[i - 1]

  @staticmethod
  def reach(spec: ARNNSpec) -> tuple[int, tuple[int, ...]] | None:
    """(unit, units back per stage) of the convolutions (module doc)."""
    layers = list(zip(spec.kernel_size, spec.kernel_dilation))
    if len(spec.kernel_size[0]) == 1:
      return 1, tuple(nn.MaskedConv1D.sites_back(
          k[0], d[0], exclusive=i == 0, netket_taps=spec.first_taps == "netket")
                      for i, (k, d) in enumerate(layers))
    return spec.hilbert.shape[1], tuple(nn.MaskedConv2D.rows_back(k, d)
                                        for k, d in layers)

  def units(self, x: jax.Array) -> jax.Array:
    """x [B, N] -> [B, N, 1] (dense, conv1d) or [B, H', W, 1] (conv2d)."""
    h = x.astype(self.spec.param_dtype)[..., None]
    if len(self.spec.kernel_size[0]) == 2:
      h = h.reshape(x.shape[0], -1, self.spec.hilbert.shape[1], 1)
    return h

  def stage(self, i: int, h: jax.Array, valid: bool = False) -> jax.Array:
    if i > 0:
      h = self.spec.activation(h)
    return self.layers[i](h, valid=valid)

  def head(self, h: jax.Array) -> jax.Array:
    return h.reshape(h.shape[0], -1, h.shape[-1])

  def logits(self, x: jax.Array) -> jax.Array:
    h = self.units(x)
    for i in range(len(self.layers)):
      h = self.stage(i, h)
    return self.head(h)

  def init_cache(self, batch_size: int) -> None:
    for i, layer in enumerate(self.layers):
      layer.init_cache(batch_size, self._in_features(i))

  def cached_step(self, x: jax.Array, index: jax.Array) -> jax.Array:
    # Each layer's cache takes site index - 1, the newest one generated.
    previous = jax.lax.dynamic_index_in_dim(
        x, jnp.maximum(index - 1, 0), axis=1, keepdims=False)  # [B]
    # The cached pass is feature-major (see zoo.nn.masked): [F, B].
    h = previous.astype(self.spec.param_dtype)[None, :]  # [1, B]
    for i, layer in enumerate(self.layers):
      if i > 0:
        h = self.spec.activation(h)
      h = layer.cached_step(h, index)
    return h


class DenseStack(MaskedStack):
  """The dense family's body: masked dense layers. Every output sees every
  earlier site, so there is no reach; but each layer is linear in its
  input with element-wise activations between, so for x' equal to x
  before site s, stage i's output changes only from s on, by the layer's
  kernel from s on applied to the change of its input there
  (`MaskedDense1D.linear_from`). `keep(x)` holds x's stage inputs and
  outputs (module doc)."""

  suffixes = "linear"

  @staticmethod
  def reach(spec: ARNNSpec) -> None:
    del spec

  def stage(self, i: int, h: jax.Array, valid: bool = False) -> jax.Array:
    if valid:
      raise ValueError("the dense body has no valid pass (no reach)")
    if i > 0:
      h = self.spec.activation(h)
    return self.layers[i](h)

  def keep(self, x: jax.Array) -> tuple[list[jax.Array], jax.Array]:
    h = [self.units(x)]  # [B, N, 1], then each stage's output [B, N, F]
    for i in range(len(self.layers)):
      h.append(self.stage(i, h[-1]))
    return h, self.head(h[-1])

  def logits_from(self, x: jax.Array, kept: list[jax.Array],
                  start: int) -> jax.Array:
    h = self.units(x)[..., start:, :]  # [B, m, L, 1]
    for i, layer in enumerate(self.layers):
      h_x = kept[i][:, None, start:]
      if i > 0:
        h, h_x = self.spec.activation(h), self.spec.activation(h_x)
      h = kept[i + 1][:, None, start:] + layer.linear_from(h - h_x, start)
    return h


# The masked families' records (zoo.models.record): one body, three layers.
RECORDS = (
    Family(
        name="dense", title="Dense", body=DenseStack,
        fields=MASKED, masked_widths=True, size_dependent=True, netket=True,
        summary="masked dense layers: every site sees every earlier one",
        example=dict(layers=3, features=4)),
    Family(
        name="conv1d", title="Conv1D",
        body=MaskedStack, fields=CONV + ("first_taps",),
        defaults=dict(first_taps="shifted"), masked_widths=True, netket=True,
        summary="masked causal convolutions on a chain",
        example=dict(layers=3, features=4, kernel_size=3,
                     kernel_dilation=(1, 2, 1))),
    Family(
        name="conv2d", title="Conv2D",
        body=MaskedStack, fields=CONV, two_d=True, masked_widths=True,
        netket=True, summary="masked causal convolutions on a 2D lattice",
        example=dict(layers=3, features=4, kernel_size=(2, 3),
                     kernel_dilation=((1, 1), (1, 2), (2, 1))),
        example_lattice="square"),
)


class ARNN(hk.Module):
  """Autoregressive network with a full pass and a cached one-site pass."""

  def __init__(self, spec: ARNNSpec, name: str | None = None):
    super().__init__(name=name or f"arnn_{spec.family}")
    self.spec = spec
    self.body = (spec.body or MaskedStack)(spec)

  def conditionals_log_psi(self, x: jax.Array) -> jax.Array:
    """Full pass: x [B, N] -> log psi_i(k | x_<i) [B, N, K], site order."""
    return self._conditionals(self.body.logits(x), x)

  def _conditionals(self, z: jax.Array, x: jax.Array) -> jax.Array:
    """The logits z [B, N, K] of x [B, N] -> its conditionals: restricted
    to the sector, normalized."""
    hilbert = self.spec.hilbert
    if hilbert.total is not None:
      sites = self.spec.sites_in_order
      values = x.astype(self.spec.real_dtype)[:, sites]  # [B, T], in order
      sum_before = jnp.cumsum(values, axis=1) - values
      allowed = allowed_states(hilbert, sum_before, jnp.arange(len(sites)))
      z = _restrict(z, allowed[:, np.argsort(sites)])  # back to site order
    return normalize_log_psi(z, self.spec.machine_pow)

  def units(self, x: jax.Array) -> jax.Array:
    return self.body.units(x)

  def stage(self, i: int, h: jax.Array, valid: bool) -> jax.Array:
    return self.body.stage(i, h, valid)

  def keep(self, x: jax.Array):
    """(what x keeps for `conditionals_from`, x's conditionals [B, N, K])
    from one full pass."""
    kept, z = self.body.keep(x)
    return kept, self._conditionals(z, x)

  def conditionals_from(self, x: jax.Array, kept, start: int,
                        sum_before: jax.Array) -> jax.Array:
    """log psi_i [B, m, N - start, K] of configurations x [B, m, N] equal
    to the kept ones (`keep`, [B, ...]) before site `start`, from there
    on; sum_before [B] the total of the sites before `start` (used on a
    constrained space). Raster order."""
    batch, m, n = x.shape
    z = self.body.logits_from(x, kept, start)
    z = z.reshape(batch * m, n - start, z.shape[-1])
    return self._finish(z, x[..., start:].reshape(batch * m, n - start),
                        jnp.full(batch * m, start),
                        jnp.repeat(sum_before, m)).reshape(
                            batch, m, n - start, -1)

  def conditionals_restarted(self, x: jax.Array, kept,
                             start: jax.Array) -> jax.Array:
    """log psi_i [b, N, K] of x [b, N], equal before generation step
    `start` (traced) to the configurations of `kept` (`keep`, gathered to
    the b configurations, batch last): a restartable body's scan from
    `start` on. Site order."""
    return self._conditionals(self.body.logits_restarted(x, kept, start), x)

  def head_log_psi(self, h: jax.Array, x: jax.Array, start: jax.Array,
                   sum_before: jax.Array) -> jax.Array:
    """The conditionals of a run of consecutive sites from the last stage's
    output h over them: x [B, L] their values, `start` [B] the first one,
    sum_before [B] the total of the sites before it (used on a constrained
    space). log psi_i [B, L, K]; raster order."""
    return self._finish(self.body.head(h), x, start, sum_before)

  def _finish(self, z: jax.Array, x: jax.Array, start: jax.Array,
              sum_before: jax.Array) -> jax.Array:
    """The logits z [B, L, K] of a run of consecutive sites (as
    `head_log_psi`) -> their conditionals: restricted, normalized."""
    hilbert = self.spec.hilbert
    if hilbert.total is not None:
      values = x.astype(self.spec.real_dtype)
      before = sum_before[:, None] + jnp.cumsum(values, axis=1) - values
      steps = start[:, None] + jnp.arange(x.shape[1])
      z = _restrict(z, allowed_states(hilbert, before, steps))
    return normalize_log_psi(z, self.spec.machine_pow)

  def init_cache(self, batch_size: int) -> None:
    if self.spec.fast:
      self.body.init_cache(batch_size)
      if self.spec.hilbert.total is not None:
        hk.set_state("sum_before", jnp.zeros(
            (batch_size,), self.spec.real_dtype))

  def conditional_log_psi(self, x: jax.Array, index: jax.Array) -> jax.Array:
    """log psi of the site of step `index` [B, K] for x [B, N] whose sites
    generated before that step are set.

    The fast pass feeds the newest site through the body's caches, so calls
    must come in order index = 0, 1, ... after `init_cache`; the slow pass
    does a full pass and ignores the cache.
    """
    sites = jnp.asarray(self.spec.sites_in_order)
    site = sites[index] if self.spec.order is not None else index
    if not self.spec.fast:
      return jax.lax.dynamic_index_in_dim(
          self.conditionals_log_psi(x), site, axis=1, keepdims=False)
    h = self.body.cached_step(x, index)  # [K, B]
    hilbert = self.spec.hilbert
    if hilbert.total is not None:
      # The sum of the sites before `index`: the cached sum and the newest.
      newest = jnp.maximum(index - 1, 0)
      newest = sites[newest] if self.spec.order is not None else newest
      previous = jax.lax.dynamic_index_in_dim(x, newest, axis=1,
                                              keepdims=False)  # [B]
      sum_before = hk.get_state("sum_before") + jnp.where(
          index > 0, previous, 0).astype(self.spec.real_dtype)
      hk.set_state("sum_before", sum_before)
      # Feature-major like the layers: states on axis 0, h is [K, B].
      h = _restrict(h, allowed_states(hilbert, sum_before, index, axis=0))
    return normalize_log_psi(h.T, self.spec.machine_pow)
