"""The transformer family's body: a decoder over the sites, KV-cached.

The input at step t is the one-hot local state of site t - 1 (a learned
start vector at t = 0), embedded to F features, plus the position of site
t: fixed Fourier features of its row and column on the lattice (periods
L / k, k = 1 .. POSITION_FREQUENCIES, so a 1D or 2D lattice of any size
has the same parameter shapes), mapped to F by a learned layer. Then
`layers` pre-norm blocks (self-attention where site t attends to sites
<= t, an MLP of 4 F hidden features with GELU, residual connections), a
final layer norm and an output layer to the K logits (Vaswani et al. 2017,
arXiv:1706.03762; as wavefunctions: Zhang & Di Ventra 2023,
arXiv:2208.01758; Sprague & Czischek 2024, arXiv:2306.03921). The blocks
are real; with complex parameters the output layer is complex, its
imaginary part the phase.

The fast pass keeps every block's keys and values (`zoo.nn.attention`).
Raster order.

Glossary of shapes:
  B: batch, N: sites, T: steps (= N), F: features, K: local states,
  P: position features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from zoo import nn
from zoo.models.arnn import Body
from zoo.models.record import COMMON, Family

# Frequencies per lattice axis of the position features.
POSITION_FREQUENCIES = 4
MLP_RATIO = 4  # hidden features of a block's MLP, per feature


def position_features(shape: tuple[int, ...]) -> np.ndarray:  # [N, P]
  """cos and sin of 2 pi k r / H and 2 pi k c / W, k = 1 .. frequencies, for
  each site (r, c) in raster order; a chain has only its column."""
  shape = tuple(shape)
  grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
  k = np.arange(1, POSITION_FREQUENCIES + 1)
  parts = []
  for coordinate, length in zip(grids, shape):
    angle = 2 * np.pi * coordinate.reshape(-1, 1) * k / length
    parts += [np.cos(angle), np.sin(angle)]
  return np.concatenate(parts, axis=1)


class TransformerBody(Body):
  """A decoder-only transformer over the sites (see the module docstring)."""

  restarts = False  # its full pass attends in parallel (zoo.vmc.local_energy)
  # Keeps every block's keys and values (zoo.models.arnn).
  suffixes = "attention"

  @staticmethod
  def reach(spec) -> None:
    """None: attention sees every earlier site (zoo.models.arnn)."""
    del spec

  def __init__(self, spec):
    self.spec = spec
    features, heads = spec.features[0], spec.heads
    real = spec.real_dtype
    dense = dict(param_dtype=real, precision=spec.precision,
                 kernel_init=spec.kernel_init)
    self.embed = nn.Dense(features, use_bias=False, name="embed", **dense)
    self.start = nn.Dense(features, use_bias=False, name="start",
                          kernel_init=nn.zeros,
                          param_dtype=real, precision=spec.precision)
    self.position = nn.Dense(features, use_bias=False, name="position",
                             **dense)
    self.blocks = []
    for i in range(spec.layers):
      self.blocks.append(dict(
          norm_attention=_norm(f"norm_attention_{i}"),
          attention=nn.CausalSelfAttention(features, heads,
                                           name=f"attention_{i}", **dense),
          norm_mlp=_norm(f"norm_mlp_{i}"),
          mlp_in=nn.Dense(MLP_RATIO * features, name=f"mlp_in_{i}", **dense),
          mlp_out=nn.Dense(features, name=f"mlp_out_{i}", **dense)))
    self.norm_out = _norm("norm_out")
    self.readout = nn.Dense(spec.hilbert.local_size, name="readout",
                            param_dtype=spec.param_dtype,
                            precision=spec.precision,
                            kernel_init=spec.kernel_init)
    self.positions = position_features(spec.hilbert.shape)

  def _start(self) -> jax.Array:  # [F, 1]
    """The input of step 0: a learned vector (the `start` layer's weights,
    applied to a one so that SR's probe reaches it as a linear map)."""
    return self.start.feature_major(jnp.ones((1, 1), self.spec.real_dtype))

  def _onehot(self, values: jax.Array) -> jax.Array:  # [...] -> [..., K]
    hilbert = self.spec.hilbert
    return jax.nn.one_hot(hilbert.states_to_indices(values),
                          hilbert.local_size, dtype=self.spec.real_dtype)

  def _inputs(self, x: jax.Array, start: int) -> jax.Array:
    """The inputs of steps start .. T - 1 of x [..., N]: [..., T - start, F]
    (step t reads site t - 1, step 0 the start vector)."""
    h = self.embed(self._onehot(x[..., max(start, 1) - 1:-1]))
    if start == 0:
      first = self.start(jnp.ones((*h.shape[:-2], 1, 1), h.dtype))
      h = jnp.concatenate([first, h], axis=-2)
    # Broadcast to every configuration before the layer, so that each
    # one's cotangent reaches its weights (SR's probe).
    positions = jnp.asarray(self.positions[start:], h.dtype)
    return h + self.position(jnp.broadcast_to(
        positions, h.shape[:-1] + positions.shape[-1:]))

  def _run(self, h: jax.Array, before=None, keep: bool = False):
    """The blocks over h's steps, after those whose keys and values
    `before` holds per block (or none): the logits, and with `keep` first
    every block's keys and values of h's steps."""
    kept = []
    for i, block in enumerate(self.blocks):
      normed = block["norm_attention"](h)
      if keep:
        kept.append(block["attention"].keys_values(normed))
      h = h + block["attention"](normed, None if before is None else before[i])
      mlp = jax.nn.gelu(block["mlp_in"](block["norm_mlp"](h)))
      h = h + block["mlp_out"](mlp)
    z = self.readout(self.norm_out(h).astype(self.spec.param_dtype))
    return (kept, z) if keep else z

  def logits(self, x: jax.Array) -> jax.Array:
    return self._run(self._inputs(x, 0))

  def keep(self, x: jax.Array):
    """(every block's keys and values of x's steps [B, T, H, D], x's
    logits)."""
    return self._run(self._inputs(x, 0), keep=True)

  def logits_from(self, x: jax.Array, kept, start: int) -> jax.Array:
    before = [(k[:, None, :start], v[:, None, :start]) for k, v in kept]
    return self._run(self._inputs(x, start), before)

  def init_cache(self, batch_size: int) -> None:
    for block in self.blocks:
      block["attention"].init_cache(batch_size, self.spec.hilbert.size)

  def cached_step(self, x: jax.Array, index: jax.Array) -> jax.Array:
    previous = jax.lax.dynamic_index_in_dim(
        x, jnp.maximum(index - 1, 0), axis=1, keepdims=False)  # [B]
    token = self.embed.feature_major(self._onehot(previous).T)  # [F, B]
    h = jnp.where(index > 0, token, self._start())
    position = jnp.asarray(self.positions, h.dtype)[index][:, None]  # [P, 1]
    h = h + self.position.feature_major(position)
    norm = lambda module, h: module(h.T).T  # layer norm over features
    for block in self.blocks:
      h = h + block["attention"].cached_step(
          norm(block["norm_attention"], h), index)
      mlp = jax.nn.gelu(block["mlp_in"].feature_major(
          norm(block["norm_mlp"], h)))
      h = h + block["mlp_out"].feature_major(mlp)
    h = norm(self.norm_out, h).astype(self.spec.param_dtype)
    return self.readout.feature_major(h)


def _norm(name: str) -> nn.LayerNorm:
  return nn.LayerNorm(name=name)


# The transformer's record (zoo.models.record).
RECORDS = (
    Family(
        name="transformer", title="Transformer",
        aliases=("ARTransformer", "FastARTransformer"),
        body=TransformerBody, fields=COMMON + ("heads",),
        defaults=dict(heads=1), residual=True,
        summary="a causal decoder over the sites, KV-cached",
        example=dict(layers=2, features=4, heads=2)),
)
