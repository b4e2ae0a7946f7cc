"""The gated convolution families' body: residual gated masked convolutions.

  h_0 = exclusive masked convolution of the local-state values (1 -> F)
  u_l = masked convolution of h_l (F -> 2 F), dilation d_l
  h_{l+1} = h_l + W_l (tanh(u_l[:F]) * sigmoid(u_l[F:]))      l < layers
  z = W_out act(h_layers)                                       K logits

Gated activations (van den Oord et al. 2016, WaveNet arXiv:1609.03499 and
conditional PixelCNN arXiv:1606.05328) and residual connections (He et al.
2016) keep deep stacks trainable: every block adds to one stream of F
features, so 10-20 layers pass gradients as well as 2. In 1D the
convolutions are `zoo.nn.MaskedConv1D` (with "wavenet" dilations the
receptive field doubles per layer); in 2D `zoo.nn.MaskedConv2D`, whose
kernel covers the rows above in full width and the current row to the
left: a site sees the row above only within kw // 2 columns to its right,
however deep the stack (rows further up widen with depth). The stream is
real; with complex parameters the output layer is complex, its imaginary
part the phase. The cached pass pushes through each convolution's cache
(`zoo.nn.masked`); the 1 x 1 layers need none. Raster order.

Glossary of shapes:
  B: batch, N: sites, F: features, K: local states, H x W: 2D lattice.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zoo import nn
from zoo.models.arnn import Body
from zoo.models.record import CONV, Family


class GatedConvBody(Body):
  """Residual gated masked convolutions (see the module docstring)."""

  restarts = False  # one parallel full pass (zoo.vmc.local_energy)
  suffixes = None  # cones instead (it has a reach)

  def __init__(self, spec):
    self.spec = spec
    self.two_d = len(spec.kernel_size[0]) == 2
    features = spec.features[0]
    real = spec.real_dtype
    common = dict(use_bias=spec.use_bias, param_dtype=real,
                  precision=spec.precision, kernel_init=spec.kernel_init,
                  bias_init=spec.bias_init)
    self.input = self._conv(features, 0, exclusive=True, dilation=None,
                            name="input", **common)
    self.gates = [self._conv(2 * features, i, exclusive=False,
                             dilation=spec.kernel_dilation[i],
                             name=f"gate_{i}", **common)
                  for i in range(spec.layers)]
    dense = dict(precision=spec.precision, kernel_init=spec.kernel_init)
    self.residuals = [nn.Dense(features, use_bias=spec.use_bias,
                               param_dtype=real, name=f"residual_{i}", **dense)
                      for i in range(spec.layers)]
    self.readout = nn.Dense(spec.hilbert.local_size, name="readout",
                            param_dtype=spec.param_dtype, **dense)

  def _conv(self, features, i, *, exclusive, dilation, name, **common):
    kernel = self.spec.kernel_size[i]
    if self.two_d:
      return nn.MaskedConv2D(self.spec.hilbert.shape, features, kernel,
                             exclusive=exclusive,
                             kernel_dilation=dilation or (1, 1), name=name,
                             **common)
    return nn.MaskedConv1D(features, kernel[0], exclusive=exclusive,
                           kernel_dilation=(dilation or (1,))[0], name=name,
                           **common)

  @staticmethod
  def _gate(u: jax.Array, axis: int) -> jax.Array:
    a, b = jnp.split(u, 2, axis=axis)
    return jnp.tanh(a) * jax.nn.sigmoid(b)

  @staticmethod
  def reach(spec) -> tuple[int, tuple[int, ...]]:
    """(unit, units back per stage), as zoo.models.arnn.MaskedStack.reach:
    the input convolution, then a block per gate (the 1 x 1 layers see
    their own site only)."""
    dilations = [None] + list(spec.kernel_dilation)
    kernels = [spec.kernel_size[0]] + list(spec.kernel_size)
    if len(spec.kernel_size[0]) == 2:
      return spec.hilbert.shape[1], tuple(
          nn.MaskedConv2D.rows_back(k, d or (1, 1))
          for k, d in zip(kernels, dilations))
    return 1, tuple(nn.MaskedConv1D.sites_back(k[0], (d or (1,))[0],
                                               exclusive=i == 0)
                    for i, (k, d) in enumerate(zip(kernels, dilations)))

  def units(self, x: jax.Array) -> jax.Array:
    """x [B, N] -> [B, N, 1] (1D) or [B, H', W, 1] (2D)."""
    h = x.astype(self.spec.real_dtype)[..., None]
    if self.two_d:
      h = h.reshape(x.shape[0], -1, self.spec.hilbert.shape[1], 1)
    return h

  def stage(self, i: int, h: jax.Array, valid: bool = False) -> jax.Array:
    """The input convolution (i = 0), else residual block i - 1."""
    if i == 0:
      return self.input(h, valid=valid)
    gate = self.gates[i - 1]
    u = gate(h, valid=valid)
    if valid:
      h = h[:, gate.back:]
    return h + self.residuals[i - 1](self._gate(u, axis=-1))

  def head(self, h: jax.Array) -> jax.Array:
    z = self.readout(self.spec.activation(h).astype(self.spec.param_dtype))
    return z.reshape(h.shape[0], -1, z.shape[-1])

  def logits(self, x: jax.Array) -> jax.Array:
    h = self.units(x)
    for i in range(1 + len(self.gates)):
      h = self.stage(i, h)
    return self.head(h)

  def init_cache(self, batch_size: int) -> None:
    features = self.spec.features[0]
    self.input.init_cache(batch_size, 1)
    for gate in self.gates:
      gate.init_cache(batch_size, features)

  def cached_step(self, x: jax.Array, index: jax.Array) -> jax.Array:
    previous = jax.lax.dynamic_index_in_dim(
        x, jnp.maximum(index - 1, 0), axis=1, keepdims=False)  # [B]
    h = self.input.cached_step(
        previous.astype(self.spec.real_dtype)[None, :], index)  # [F, B]
    for gate, residual in zip(self.gates, self.residuals):
      h = h + residual.feature_major(
          self._gate(gate.cached_step(h, index), axis=0))
    h = self.spec.activation(h).astype(self.spec.param_dtype)
    return self.readout.feature_major(h)


# The gated families' records (zoo.models.record): one body, 1D and 2D.
RECORDS = (
    Family(
        name="gated_conv1d", title="GatedConv1D",
        body=GatedConvBody, fields=CONV,
        residual=True,
        summary="gated residual masked convolutions on a chain",
        example=dict(layers=3, features=4, kernel_size=2,
                     kernel_dilation="wavenet")),
    Family(
        name="gated_conv2d", title="GatedConv2D",
        body=GatedConvBody, fields=CONV,
        two_d=True, residual=True,
        summary="gated residual masked convolutions on a 2D lattice",
        example=dict(layers=2, features=4, kernel_size=(2, 3)),
        example_lattice="square"),
)
