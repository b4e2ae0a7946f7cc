"""Masked autoregressive layers: a full pass and a cached one-site pass.

Each layer maps features at every site to features at every site such that
the output at site i sees inputs only at sites < i (`exclusive=True`, for the
first layer of a network) or <= i (every later layer). Sites are in raster
order for 2D lattices.

Every layer has two faces sharing one set of parameters:
  * `__call__(x)`: the full pass over all sites, used to evaluate log psi.
  * `update_site(x_site, index)`: the cached pass used for sampling (fast
    generation, Ramachandran et al. 2017, arXiv:1704.06001). It stores the
    newest input the output at `index` may see -- the input at site
    `index - 1` for an exclusive layer (ignored at index 0), at `index`
    otherwise -- in the Haiku state cache and returns the output at `index`.
    `init_cache(batch_size, in_features)` creates that cache as zeros. Sites
    must be visited in order 0, 1, ..., N - 1 after `init_cache`.

Kernels keep their full shape with masked entries at zero, so a params tree
from one face runs in the other.

Glossary of shapes:
  B: batch, N: sites, H x W: 2D lattice (N = H * W, raster order),
  Fin / Fout: input / output features, k: 1D kernel size,
  kh x kw: 2D kernel rows x columns.
"""

from __future__ import annotations

from typing import Any, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from zoo.nn import initializers


def _positive_int(name: str, value: Any) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}")
  return int(value)


def _positive_pair(name: str, value: Any) -> tuple[int, int]:
  if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
    value = (value, value)
  if not isinstance(value, Sequence) or len(value) != 2:
    raise ValueError(f"{name} must be a positive integer or a pair of them, "
                     f"got {value!r}")
  return (_positive_int(f"{name}[0]", value[0]),
          _positive_int(f"{name}[1]", value[1]))


class _MaskedLayer(hk.Module):
  """Fields shared by the masked layers."""

  default_name = "masked_layer"

  def __init__(
      self,
      features: int,
      *,
      exclusive: bool,
      use_bias: bool = True,
      param_dtype: Any = jnp.float64,
      precision: jax.lax.Precision | None = None,
      kernel_init: initializers.Initializer | None = None,
      bias_init: initializers.Initializer = initializers.zeros,
      name: str | None = None,
  ):
    super().__init__(name=name or self.default_name)
    self.features = _positive_int("features", features)
    self.exclusive = bool(exclusive)
    self.use_bias = use_bias
    self.param_dtype = param_dtype
    self.precision = precision
    self.kernel_init = kernel_init
    self.bias_init = bias_init

  def _bias(self, shape) -> jax.Array | None:
    if not self.use_bias:
      return None
    return hk.get_parameter("bias", shape, self.param_dtype,
                            init=initializers.unmasked(self.bias_init))


class MaskedDense1D(_MaskedLayer):
  """Dense layer over all sites with a lower-triangular block mask.

  kernel [N, Fin, N, Fout] (input site, input feature, output site, output
  feature), bias [N, Fout].
  """

  default_name = "masked_dense1d"

  def __init__(self, n_sites: int, features: int, *, exclusive: bool, **kwargs):
    super().__init__(features, exclusive=exclusive, **kwargs)
    self.n_sites = _positive_int("n_sites", n_sites)
    j, i = np.meshgrid(np.arange(n_sites), np.arange(n_sites), indexing="ij")
    # mask[j, i] = 1 where input site j may feed output site i.
    self.site_mask = (j < i) if self.exclusive else (j <= i)

  def _kernel(self, in_features: int) -> jax.Array:  # [N, Fin, N, Fout]
    n = self.n_sites
    mask = self.site_mask[:, None, :, None]
    init = self.kernel_init or initializers.lecun_normal(
        in_axis=(0, 1), out_axis=(2, 3))
    kernel = hk.get_parameter(
        "kernel", (n, in_features, n, self.features), self.param_dtype,
        init=initializers.masked(init, mask))
    return kernel * jnp.asarray(mask, kernel.dtype)

  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, N, Fin] -> [B, N, Fout]."""
    kernel = self._kernel(x.shape[-1])
    y = jnp.einsum("bjf,jfig->big", x, kernel, precision=self.precision)
    bias = self._bias((self.n_sites, self.features))
    return y if bias is None else y + bias

  def init_cache(self, batch_size: int, in_features: int) -> None:
    hk.set_state("inputs", jnp.zeros(
        (batch_size, self.n_sites, in_features), self.param_dtype))

  def update_site(self, x_site: jax.Array, index: jax.Array) -> jax.Array:
    """x_site [B, Fin], index scalar -> output at site `index` [B, Fout]."""
    inputs = hk.get_state("inputs")  # [B, N, Fin]
    if self.exclusive:
      x_site = jnp.where(index > 0, x_site, 0)
      position = jnp.maximum(index - 1, 0)
    else:
      position = index
    inputs = jax.lax.dynamic_update_index_in_dim(
        inputs, x_site.astype(inputs.dtype), position, axis=1)
    hk.set_state("inputs", inputs)
    # Only the kernel column of output site `index` is needed.
    kernel = self._kernel(x_site.shape[-1])
    column = jax.lax.dynamic_index_in_dim(kernel, index, axis=2,
                                          keepdims=False)  # [N, Fin, Fout]
    y = jnp.einsum("bjf,jfg->bg", inputs, column, precision=self.precision)
    bias = self._bias((self.n_sites, self.features))
    if bias is None:
      return y
    return y + jax.lax.dynamic_index_in_dim(bias, index, axis=0, keepdims=False)


class MaskedConv1D(_MaskedLayer):
  """Causal 1D convolution: output i sees inputs i - t * dilation, t >= 0.

  An exclusive layer shifts its input one site to the right first, so output
  i sees only sites < i. kernel [k, Fin, Fout]: tap t multiplies the input at
  offset -(k - 1 - t) * dilation (minus one more if exclusive); bias [Fout].
  """

  default_name = "masked_conv1d"

  def __init__(self, features: int, kernel_size: int, *, exclusive: bool,
               kernel_dilation: int = 1, **kwargs):
    super().__init__(features, exclusive=exclusive, **kwargs)
    self.kernel_size = _positive_int("kernel_size", kernel_size)
    self.kernel_dilation = _positive_int("kernel_dilation", kernel_dilation)
    # Receptive span of one output, in sites, and left zero padding.
    self.span = (self.kernel_size - 1) * self.kernel_dilation + 1
    self.pad = self.span - 1 + int(self.exclusive)

  def _kernel(self, in_features: int) -> jax.Array:  # [k, Fin, Fout]
    init = self.kernel_init or initializers.lecun_normal()
    return hk.get_parameter(
        "kernel", (self.kernel_size, in_features, self.features),
        self.param_dtype, init=initializers.unmasked(init))

  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, N, Fin] -> [B, N, Fout]."""
    kernel = self._kernel(x.shape[-1])
    if self.exclusive:
      x = x[:, :-1]
    y = jax.lax.conv_general_dilated(
        x, kernel, window_strides=(1,), padding=[(self.pad, 0)],
        rhs_dilation=(self.kernel_dilation,),
        dimension_numbers=("NWC", "WIO", "NWC"), precision=self.precision)
    bias = self._bias((self.features,))
    return y if bias is None else y + bias

  def init_cache(self, batch_size: int, in_features: int) -> None:
    # A doubled ring of the last `span` inputs: site j lives in slots
    # j % span and j % span + span, so the window of the newest `span` inputs
    # is always one contiguous slice (a gather is several times slower on
    # CPU). Slots of sites < 0 are never written and read as zero padding.
    hk.set_state("inputs", jnp.zeros(
        (batch_size, 2 * self.span, in_features), self.param_dtype))

  def update_site(self, x_site: jax.Array, index: jax.Array) -> jax.Array:
    """x_site [B, Fin], index scalar -> output at site `index` [B, Fout]."""
    inputs = hk.get_state("inputs")  # [B, 2 span, Fin]
    newest = index - int(self.exclusive)
    if self.exclusive:
      x_site = jnp.where(index > 0, x_site, 0)
    slot = newest % self.span
    x_site = x_site.astype(inputs.dtype)[:, None]
    inputs = jax.lax.dynamic_update_slice_in_dim(inputs, x_site, slot, axis=1)
    inputs = jax.lax.dynamic_update_slice_in_dim(
        inputs, x_site, slot + self.span, axis=1)
    hk.set_state("inputs", inputs)
    # Slots slot + 1 .. slot + span hold sites newest - span + 1 .. newest.
    window = jax.lax.dynamic_slice_in_dim(inputs, slot + 1, self.span, axis=1)
    window = window[:, ::self.kernel_dilation]  # [B, k, Fin]
    kernel = self._kernel(x_site.shape[-1])
    y = jnp.einsum("btf,tfg->bg", window, kernel, precision=self.precision)
    bias = self._bias((self.features,))
    return y if bias is None else y + bias


class MaskedConv2D(_MaskedLayer):
  """PixelCNN-style masked 2D convolution in raster order.

  A (kh, kw) kernel covers the current row and the kh - 1 rows above it
  (spaced by the row dilation), centred on the current column (kw odd). In
  the current row only columns left of the centre (exclusive) or up to it
  are kept. Zero padding: (kh - 1) * dh rows on top, (kw // 2) * dw columns
  on each side. kernel [kh, kw, Fin, Fout], bias [Fout].
  """

  default_name = "masked_conv2d"

  def __init__(self, lattice_shape: Sequence[int], features: int,
               kernel_size: int | Sequence[int], *, exclusive: bool,
               kernel_dilation: int | Sequence[int] = 1, **kwargs):
    super().__init__(features, exclusive=exclusive, **kwargs)
    self.height, self.width = _positive_pair("lattice_shape", lattice_shape)
    self.kernel_size = _positive_pair("kernel_size", kernel_size)
    self.kernel_dilation = _positive_pair("kernel_dilation", kernel_dilation)
    kh, kw = self.kernel_size
    if kw % 2 == 0:
      raise ValueError(f"kernel_size must have an odd width, got {self.kernel_size}")
    dh, dw = self.kernel_dilation
    mask = np.ones((kh, kw), dtype=bool)
    mask[-1, kw // 2 + (0 if self.exclusive else 1):] = False
    self.mask = mask  # [kh, kw]
    # Ring of input rows kept by the cache, and side padding in columns.
    self.ring_rows = (kh - 1) * dh + 1
    self.pad_cols = (kw // 2) * dw

  def _kernel(self, in_features: int) -> jax.Array:  # [kh, kw, Fin, Fout]
    kh, kw = self.kernel_size
    mask = self.mask[:, :, None, None]
    init = self.kernel_init or initializers.lecun_normal()
    kernel = hk.get_parameter(
        "kernel", (kh, kw, in_features, self.features), self.param_dtype,
        init=initializers.masked(init, mask))
    return kernel * jnp.asarray(mask, kernel.dtype)

  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, H, W, Fin] -> [B, H, W, Fout]."""
    kernel = self._kernel(x.shape[-1])
    y = jax.lax.conv_general_dilated(
        x, kernel, window_strides=(1, 1),
        padding=[(self.ring_rows - 1, 0), (self.pad_cols, self.pad_cols)],
        rhs_dilation=self.kernel_dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=self.precision)
    bias = self._bias((self.features,))
    return y if bias is None else y + bias

  def init_cache(self, batch_size: int, in_features: int) -> None:
    # A doubled ring of the last `ring_rows` input rows, zero-padded left and
    # right: row r lives in slots r % ring_rows and r % ring_rows + ring_rows,
    # so the rows above the current one are one contiguous slice. Stale
    # entries of the current row's slot (left by row r - ring_rows) sit right
    # of the current column, where the mask ignores them; slots of rows < 0
    # are never written and read as zero padding.
    hk.set_state("rows", jnp.zeros(
        (batch_size, 2 * self.ring_rows, self.width + 2 * self.pad_cols,
         in_features), self.param_dtype))
    # What the rows above contribute to every column of the current row.
    hk.set_state("above", jnp.zeros(
        (batch_size, self.width, self.features), self.param_dtype))

  def _above(self, rows: jax.Array, kernel: jax.Array, row: jax.Array) -> jax.Array:
    """Contribution of kernel rows 0..kh-2 to every column of `row` [B, W, Fout].

    Everything above the current row is known when the row starts, so it is
    computed once per row as one large matmul: the "vertical stack" of
    Ramachandran et al. 2017 (arXiv:1704.06001).
    """
    kh = self.kernel_size[0]
    dh = self.kernel_dilation[0]
    batch, _, width, fin = rows.shape
    # Slots row % R + 1 .. row % R + R - 1 hold rows row - R + 1 .. row - 1;
    # kernel row j reads row - (kh - 1 - j) * dh. A VALID dilated convolution
    # over them gives exactly one output row (XLA's convolution runs this
    # several times faster on CPU than an im2col matmul).
    block = jax.lax.dynamic_slice(
        rows, (0, row % self.ring_rows + 1, 0, 0),
        (batch, (kh - 2) * dh + 1, width, fin))
    above = jax.lax.conv_general_dilated(
        block, kernel[:kh - 1], window_strides=(1, 1), padding="VALID",
        rhs_dilation=self.kernel_dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=self.precision)
    return above[:, 0]  # [B, W, Fout]

  def update_site(self, x_site: jax.Array, index: jax.Array) -> jax.Array:
    """x_site [B, Fin], index scalar (raster) -> output at `index` [B, Fout]."""
    kh, kw = self.kernel_size
    dw = self.kernel_dilation[1]
    ring = self.ring_rows
    rows = hk.get_state("rows")  # [B, 2 R, W + 2 pad, Fin]
    newest = index - int(self.exclusive)
    if self.exclusive:
      x_site = jnp.where(index > 0, x_site, 0)
      newest = jnp.maximum(newest, 0)
    r_new, c_new = newest // self.width, newest % self.width
    x_site = x_site.astype(rows.dtype)[:, None, None, :]
    for copy in (0, ring):
      rows = jax.lax.dynamic_update_slice(
          rows, x_site, (0, r_new % ring + copy, c_new + self.pad_cols, 0))
    hk.set_state("rows", rows)
    kernel = self._kernel(x_site.shape[-1])
    r, c = index // self.width, index % self.width
    above = hk.get_state("above")  # [B, W, Fout]
    if kh > 1:
      above = jax.lax.cond(c == 0, lambda: self._above(rows, kernel, r),
                           lambda: above)
      hk.set_state("above", above)
    # Current row: columns c - pad .. c (padded c .. c + pad), left of centre
    # only for an exclusive layer.
    taps = kw // 2 + (0 if self.exclusive else 1)
    current = jax.lax.dynamic_slice(
        rows, (0, r % ring, c, 0), (rows.shape[0], 1, self.pad_cols + 1, rows.shape[-1]))
    current = current[:, 0, ::dw][:, :taps]  # [B, taps, Fin]
    y = jnp.einsum("btf,tfg->bg", current, kernel[kh - 1, :taps],
                   precision=self.precision)
    y = y + jax.lax.dynamic_index_in_dim(above, c, axis=1, keepdims=False)
    bias = self._bias((self.features,))
    return y if bias is None else y + bias
