"""The recurrent family's body: stacked lattice GRUs and an output layer.

Layer 0 reads the one-hot local states of the generated neighbours, layer
l > 0 the state of layer l - 1 at the same site; every layer reads its own
states at the neighbours (`zoo.nn.recurrent`). The output layer maps the
top state to K logits. The GRUs are real; with complex parameters only the
output layer is complex, its imaginary part the phase, as in Hibat-Allah
et al. 2020, arXiv:2002.02973.

Sites are generated in snake order (`zoo.nn.recurrent.snake_order`). The
full pass runs each layer's scan over the steps in turn; the cached pass
is one step of every layer.

Glossary of shapes:
  B: batch, N: sites, T: steps, F: hidden features, D: directions, K: local
  states.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from zoo import nn
from zoo.nn import recurrent
from zoo.models.arnn import Body
from zoo.models.record import COMMON, Family


class RecurrentBody(Body):
  """Stacked `LatticeGRU`s in snake order (see the module docstring)."""

  # The full pass is a scan: local energies restart connected
  # configurations from x's states (`keep`, `logits_restarted`;
  # zoo.vmc.local_energy).
  restarts = True
  suffixes = None  # a scan, restarted instead (zoo.models.arnn)

  @staticmethod
  def reach(spec) -> None:
    """None: the hidden state carries every earlier site (zoo.models.arnn)."""
    del spec

  def __init__(self, spec):
    self.spec = spec
    self.neighbours = recurrent.neighbourhood(spec.hilbert.shape, spec.pbc)
    self.layers = [
        nn.LatticeGRU(self.neighbours, f, use_bias=spec.use_bias,
                      param_dtype=spec.real_dtype, precision=spec.precision,
                      kernel_init=spec.kernel_init, name=f"gru_{i}")
        for i, f in enumerate(spec.features)]
    self.readout = nn.Linear(spec.hilbert.local_size, name="readout")

  def _in_features(self, i: int) -> int:
    if i == 0:
      return len(self.neighbours.directions) * self.spec.hilbert.local_size
    return self.spec.features[i - 1]

  def _neighbour_inputs(self, x: jax.Array, steps) -> jax.Array:
    """One-hot local states of the neighbours of `steps`: [..., D K, B]."""
    nb = self.neighbours
    hilbert = self.spec.hilbert
    sites = jnp.asarray(nb.sites)[steps]  # [..., D]
    present = jnp.asarray(nb.present)[steps]  # [..., D]
    idx = hilbert.states_to_indices(jnp.take(x, sites, axis=1))  # [B, ..., D]
    onehot = jax.nn.one_hot(idx, hilbert.local_size,
                            dtype=self.spec.real_dtype)  # [B, ..., D, K]
    onehot = onehot * present[..., None]
    onehot = onehot.reshape(onehot.shape[:-2] + (-1,))  # [B, ..., D K]
    return jnp.moveaxis(onehot, 0, -1)  # [..., D K, B]

  def _readout(self, h: jax.Array) -> jax.Array:
    """[..., F] -> [..., K] in the parameter dtype."""
    return self.readout(h.astype(self.spec.param_dtype))

  def logits(self, x: jax.Array) -> jax.Array:
    return self.keep(x)[1]

  def keep(self, x: jax.Array) -> tuple[list[jax.Array], jax.Array]:
    """(every layer's states [T, F, B], the logits [B, N, K]) of x."""
    # Layer by layer: each scans its steps (zoo.nn.recurrent).
    h = self._neighbour_inputs(x, np.arange(x.shape[1]))  # [T, D K, B]
    states = []
    for layer in self.layers:
      h = layer(h)  # [T, F, B]
      states.append(h)
    return states, self._site_logits(h)

  def logits_restarted(self, x: jax.Array, kept: list[jax.Array],
                       start: jax.Array) -> jax.Array:
    """The logits [b, N, K] of x [b, N], equal before step `start` (traced)
    to the configurations whose states `kept` holds (`keep`, gathered to
    [T, F, b]): every layer's steps from `start` on, the layers in turn
    within each step as in the cached pass, each reading its neighbours
    from its history (`LatticeGRU.restart_step`)."""
    steps = x.shape[1]
    own = self._neighbour_inputs(x, np.arange(steps))  # [T, D K, b]
    fused = [layer.fused(layer.weights(self._in_features(i)),
                         self._in_features(i))
             for i, layer in enumerate(self.layers)]
    histories = [layer.history(states)
                 for layer, states in zip(self.layers, kept)]

    def step(t, histories):
      h = jax.lax.dynamic_index_in_dim(own, t, 0, keepdims=False)
      out = []
      for layer, weights, history in zip(self.layers, fused, histories):
        h, history = layer.restart_step(weights, h, history, t)
        out.append(history)
      return out

    histories = jax.lax.fori_loop(start, steps, step, histories)
    # Feature-major, as the states are: a batch-major readout would first
    # transpose every state.
    z = self.readout.feature_major(
        histories[-1][:steps].astype(self.spec.param_dtype))  # [T, K, b]
    return self._in_site_order(jnp.transpose(z, (2, 0, 1)))

  def _site_logits(self, h: jax.Array) -> jax.Array:
    """The top states [T, F, B] -> logits [B, N, K] in site order."""
    return self._in_site_order(self._readout(jnp.transpose(h, (2, 0, 1))))

  def _in_site_order(self, z: jax.Array) -> jax.Array:
    """Logits [B, T, K] in step order -> [B, N, K] in site order."""
    return z[:, np.argsort(self.neighbours.order)]

  def init_cache(self, batch_size: int) -> None:
    for layer in self.layers:
      layer.init_cache(batch_size)

  def cached_step(self, x: jax.Array, index: jax.Array) -> jax.Array:
    h = self._neighbour_inputs(x, index)  # [D K, B]
    for i, layer in enumerate(self.layers):
      h = layer.cached_step(h, index, self._in_features(i))
    return self.readout.feature_major(
        h.astype(self.spec.param_dtype))  # [K, B]



def _snake(hilbert) -> tuple[int, ...] | None:
  """Snake order on a 2D lattice, raster on a chain."""
  if len(hilbert.shape) != 2:
    return None
  return tuple(int(s) for s in recurrent.snake_order(hilbert.shape))


# The recurrent family's record (zoo.models.record).
RECORDS = (
    Family(
        name="gru", title="GRU", aliases=("ARGRU", "FastARGRU"),
        body=RecurrentBody,
        fields=COMMON + ("use_bias", "pbc"), defaults=dict(pbc=True),
        order=_snake,
        summary="stacked lattice GRUs in snake order",
        # Periodic: the wrap-around neighbours are read (snake order in 2D).
        example=dict(layers=2, features=4, pbc=True),
        example_lattice="square"),
)
