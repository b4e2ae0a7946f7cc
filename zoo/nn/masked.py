"""Masked autoregressive layers: a full pass and a cached one-site pass.

Each layer maps features at every site to features at every site such that
the output at site i sees inputs only at sites < i (`exclusive=True`, for the
first layer of a network) or <= i (every later layer). Sites are in raster
order for 2D lattices.

Every layer has two faces sharing one set of parameters:
  * `__call__(x)`: the full pass over all sites, used to evaluate log psi.
  * `cached_step(x_site, index)`: the cached pass used for sampling (fast
    generation, Ramachandran et al. 2017, arXiv:1704.06001). It takes the
    newest input the output at `index` may see -- the input at site
    `index - 1` for an exclusive layer (ignored at index 0), at `index`
    otherwise -- updates the Haiku state cache and returns the output at
    `index`. `init_cache(batch_size, in_features)` creates that cache as
    zeros. Sites must be visited in order 0, 1, ..., N - 1 after
    `init_cache`.

The cached pass is feature-major: a site's features are [F, B], batch last,
and so is every cache. With the batch as the long, contiguous axis, XLA on
CPU runs the small per-site element-wise ops several times faster than on
[B, F], the matmuls [F', F] x [F, B] are faster, and a cache slice is one
contiguous block (the measurements: docs/benchmarks.md, "Tuned
constants", the feature-major item).

The convolutions' cached passes push rather than pull: the newest input
multiplies every unmasked tap at once, [T Fout, Fin] x [Fin, B], and adds
its share to the partial sums of all outputs it feeds; the output at
`index` is then complete. Nothing is recomputed, no input rows are kept, and
every site does the same work.

Kernels keep their full shape with masked entries at zero, so a params tree
from one face runs in the other.

Glossary of shapes:
  B: batch, N: sites, H x W: 2D lattice (N = H * W, raster order),
  Fin / Fout: input / output features, k: 1D kernel size,
  kh x kw: 2D kernel rows x columns, T: unmasked taps.
"""

from __future__ import annotations

from typing import Any, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from zoo import checks
from zoo.nn import initializers
from zoo.nn.gradient_rules import GradientRule


def _positive_pair(name: str, value: Any) -> tuple[int, int]:
  if checks.is_int(value):
    value = (value, value)
  if not isinstance(value, Sequence) or len(value) != 2:
    raise checks.FieldError(name, value,
                            "must be a positive integer or a pair of them")
  return (checks.positive_int(f"{name}[0]", value[0]),
          checks.positive_int(f"{name}[1]", value[1]))


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
    self.features = checks.positive_int("features", features)
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

  def gradient_rule(self) -> GradientRule:
    """How this layer's parameter gradients follow from its input and the
    cotangent at its output (`zoo.nn.gradient_rules`)."""
    raise NotImplementedError


class MaskedDense1D(_MaskedLayer):
  """Dense layer over all sites with a lower-triangular block mask.

  kernel [N, Fin, N, Fout] (input site, input feature, output site, output
  feature), bias [N, Fout].
  """

  default_name = "masked_dense1d"

  def __init__(self, n_sites: int, features: int, *, exclusive: bool, **kwargs):
    super().__init__(features, exclusive=exclusive, **kwargs)
    self.n_sites = checks.positive_int("n_sites", n_sites)
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

  def gradient_rule(self) -> GradientRule:
    site_mask, use_bias = self.site_mask, self.use_bias

    def sample_gradients(x, c, shapes):
      del shapes
      mask = jnp.asarray(site_mask[:, None, :, None], c.real.dtype)
      kernel = jnp.einsum("bjf,big->bjfig", jnp.conj(x), c) * mask
      return {"kernel": kernel, **({"bias": c} if use_bias else {})}

    return GradientRule(sample_gradients, dense=(self.exclusive, use_bias))

  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, N, Fin] -> [B, N, Fout]."""
    kernel = self._kernel(x.shape[-1])
    y = jnp.einsum("bjf,jfig->big", x, kernel, precision=self.precision)
    bias = self._bias((self.n_sites, self.features))
    return y if bias is None else y + bias

  @staticmethod
  def gradient_gram(exclusive: bool, has_bias: bool,
                    x_rows: jax.Array,  # [R, N, Fin]
                    c_rows: jax.Array,  # [K, R, N, Fout]
                    x_cols: jax.Array,  # [S, N, Fin]
                    c_cols: jax.Array,  # [K, S, N, Fout]
                    precision=None) -> jax.Array:  # [K, R, K, S]
    """Re <g_(k, r), g_(k', s)>: inner products of the layer's parameter
    gradients (kernel and bias, real coordinates) of scalar functions: K
    of each configuration r (Re and Im log psi: K = 2, or 1), which share
    the configuration's inputs x and have cotangents c of their own.

    A scalar's gradient through this layer is the outer product of the
    layer's input x and the scalar's cotangent c at the output, masked:
    dL / dW[j, f, i, g] = mask[j, i] conj(x[j, f]) c[i, g], dL / db = c,
    with c = dL/dRe(y) + i dL/dIm(y) (the conjugate of JAX's vjp for
    complex y). So the inner products factor into per-site Gram matrices
    of inputs and of cotangents, and the [N Fin N Fout] gradients are never
    formed: sum_i Re[(sum_{j: mask[j, i]} x_r[j] . conj x_s[j] + [bias])
    (conj c_r[i] . c_s[i])]; the inner sum runs up the sites. The inputs'
    Gram is taken once per pair of configurations, not per pair of parts,
    and only the real part of the sum is carried: Re(a b) = Re a Re b -
    Im a Im b, the cotangents' two parts each one real product.
    """
    parts = c_rows.shape[0]
    rows, cols = x_rows.shape[0], x_cols.shape[0]
    # Re(conj c_r . c_s) = [Re c_r, Im c_r] . [Re c_s, Im c_s] and
    # Im(conj c_r . c_s) = [Re c_r, Im c_r] . [Im c_s, -Re c_s]: real
    # products of the parts, split once before the sites' scan.
    complex_c = jnp.iscomplexobj(c_rows) or jnp.iscomplexobj(c_cols)
    flat = lambda c: c.reshape(-1, *c.shape[2:])  # [K R, N, F]
    c_rows, c_cols = flat(c_rows), flat(c_cols)
    if complex_c:
      c_rows, c_re, c_im = (
          jnp.concatenate([c_rows.real, c_rows.imag], axis=-1),
          jnp.concatenate([c_cols.real, c_cols.imag], axis=-1),
          jnp.concatenate([c_cols.imag, -c_cols.real], axis=-1))
    else:
      c_re, c_im = c_cols, jnp.zeros(c_cols.shape[:-1] + (0,), c_cols.dtype)

    def site(carry, inputs):
      total, reach = carry  # [K R, K S]; [R, S] the inputs' Gram so far
      # [R, Fin], [S, Fin], then the cotangents' parts [K R | K S, (2) Fout]
      xr, xs, cr, cs_re, cs_im = inputs
      inputs_gram = jnp.matmul(xr, jnp.conj(xs).T, precision=precision)
      if not exclusive:
        reach = reach + inputs_gram
      weight = reach + 1 if has_bias else reach
      tile = lambda a: jnp.tile(a, (parts, parts))  # the same for every part
      total = total + tile(weight.real) * jnp.matmul(cr, cs_re.T,
                                                     precision=precision)
      if complex_c and jnp.iscomplexobj(weight):
        total = total - tile(weight.imag) * jnp.matmul(cr, cs_im.T,
                                                       precision=precision)
      if exclusive:
        reach = reach + inputs_gram
      return (total, reach), None

    sites_first = [jnp.swapaxes(a, 0, 1) for a in
                   (x_rows, x_cols, c_rows, c_re, c_im)]
    real = jnp.finfo(jnp.result_type(*sites_first)).dtype
    reach = jnp.zeros((rows, cols), jnp.result_type(x_rows, x_cols))
    total = jnp.zeros((parts * rows, parts * cols), real)
    (total, _), _ = jax.lax.scan(site, (total, reach), sites_first)
    return total.reshape(parts, rows, parts, cols)

  def linear_from(self, x: jax.Array, start: int) -> jax.Array:
    """The kernel's part from site `start` on, without the bias:
    [..., N - start, Fin] (inputs at sites start..) -> [..., N - start,
    Fout] (outputs there). With x the change of the input, which is zero
    before `start`, it is the change of the output there."""
    kernel = self._kernel(x.shape[-1])[start:, :, start:]
    return jnp.einsum("...jf,jfig->...ig", x, kernel,
                      precision=self.precision)

  def init_cache(self, batch_size: int, in_features: int) -> None:
    hk.set_state("inputs", jnp.zeros(
        (self.n_sites, in_features, batch_size), self.param_dtype))

  def cached_step(self, x_site: jax.Array, index: jax.Array) -> jax.Array:
    """x_site [Fin, B], index scalar -> output at site `index` [Fout, B]."""
    inputs = hk.get_state("inputs")  # [N, Fin, B]
    if self.exclusive:
      x_site = jnp.where(index > 0, x_site, 0)
      position = jnp.maximum(index - 1, 0)
    else:
      position = index
    inputs = jax.lax.dynamic_update_index_in_dim(
        inputs, x_site.astype(inputs.dtype), position, axis=0)
    hk.set_state("inputs", inputs)
    # Only the kernel column of output site `index` is needed.
    kernel = self._kernel(x_site.shape[0])
    column = jax.lax.dynamic_index_in_dim(kernel, index, axis=2,
                                          keepdims=False)  # [N, Fin, Fout]
    y = jnp.einsum("jfg,jfb->gb", column, inputs, precision=self.precision)
    bias = self._bias((self.n_sites, self.features))
    if bias is None:
      return y
    return y + jax.lax.dynamic_index_in_dim(bias, index, axis=0, keepdims=False)[:, None]


class MaskedConv1D(_MaskedLayer):
  """Causal 1D convolution: output i sees inputs i - t * dilation, t >= 0.

  An exclusive layer shifts its input right first, so output i sees only
  sites < i: by one site (k taps at offsets -1, -1 - d, ..., -1 - (k - 1) d),
  or with `netket_taps` by the dilation d, dropping the tap at offset 0
  (k - 1 taps at offsets -d, ..., -(k - 1) d, as NetKet's exclusive layer).
  kernel [T, Fin, Fout], T taps: tap t multiplies the input at offset
  -(T - 1 - t) * d, minus the shift; bias [Fout].
  """

  default_name = "masked_conv1d"

  def __init__(self, features: int, kernel_size: int, *, exclusive: bool,
               kernel_dilation: int = 1, netket_taps: bool = False, **kwargs):
    super().__init__(features, exclusive=exclusive, **kwargs)
    self.kernel_size = checks.positive_int("kernel_size", kernel_size)
    self.kernel_dilation = checks.positive_int("kernel_dilation", kernel_dilation)
    netket = bool(netket_taps) and self.exclusive
    if netket and self.kernel_size < 2:
      raise checks.FieldError(
          "kernel_size", kernel_size,
          "must be >= 2 with NetKet's taps (the exclusive layer keeps "
          "kernel_size - 1 of them)")
    self.taps, self.shift, self.span = self.geometry(
        self.kernel_size, self.kernel_dilation, exclusive=self.exclusive,
        netket_taps=netket_taps)
    self.pad = self.span - 1 + self.shift  # the left zero padding
    self.back = self.pad  # sites of context a valid pass needs

  @staticmethod
  def geometry(kernel_size: int, kernel_dilation: int, *, exclusive: bool,
               netket_taps: bool = False) -> tuple[int, int, int]:
    """(taps, shift, span): the taps kept, how far an exclusive layer moves
    its input right, and the receptive span of one output in sites. An
    output sees inputs from span - 1 + shift sites back to shift back."""
    netket = bool(netket_taps) and exclusive
    taps = kernel_size - int(netket)
    shift = (kernel_dilation if netket else 1) if exclusive else 0
    return taps, shift, (taps - 1) * kernel_dilation + 1

  @classmethod
  def sites_back(cls, kernel_size: int, kernel_dilation: int, *,
                 exclusive: bool, netket_taps: bool = False) -> int:
    """How many sites back the furthest input an output sees is."""
    _, shift, span = cls.geometry(kernel_size, kernel_dilation,
                                  exclusive=exclusive, netket_taps=netket_taps)
    return span - 1 + shift

  def _kernel(self, in_features: int) -> jax.Array:  # [T, Fin, Fout]
    init = self.kernel_init or initializers.lecun_normal()
    return hk.get_parameter(
        "kernel", (self.taps, in_features, self.features),
        self.param_dtype, init=initializers.unmasked(init))

  def __call__(self, x: jax.Array, valid: bool = False) -> jax.Array:
    """[B, N, Fin] -> [B, N, Fout]: zeros stand for the sites before x.

    valid=True: x holds `pad` sites of context first, and the output
    starts after them: [B, N, Fin] -> [B, N - pad, Fout].
    """
    kernel = self._kernel(x.shape[-1])

    def conv(x, kernel):
      if self.shift:
        x = x[:, :-self.shift]
      return jax.lax.conv_general_dilated(
          x, kernel, window_strides=(1,),
          padding=[(0 if valid else self.pad, 0)],
          rhs_dilation=(self.kernel_dilation,),
          dimension_numbers=("NWC", "WIO", "NWC"), precision=self.precision)

    y = _full_pass(x, kernel, conv, lambda kernel: kernel, self._offsets(),
                   self.precision, crop=self.pad if valid else 0)
    bias = self._bias((self.features,))
    return y if bias is None else y + bias

  def _offsets(self) -> list[tuple[int]]:
    """Tap t reads the input (T - 1 - t) * dilation + shift sites back."""
    return [((self.taps - 1 - t) * self.kernel_dilation + self.shift,)
            for t in range(self.taps)]

  def gradient_rule(self) -> GradientRule:
    offsets, use_bias = self._offsets(), self.use_bias

    def sample_gradients(x, c, shapes):
      del shapes
      kernel = _tap_gradients(x, c, offsets)
      return {"kernel": kernel,
              **({"bias": jnp.sum(c, axis=1)} if use_bias else {})}

    return GradientRule(sample_gradients)

  @property
  def _first_offset(self) -> int:
    """Where the newest input's first push lands, from the current site."""
    return max(self.shift - 1, 0)

  def init_cache(self, batch_size: int, in_features: int) -> None:
    # Partial sums of the outputs at offsets 0 .. Q - 1 from the current
    # site, offset-major [Q * Fout, B] (see `_push_line`); no inputs kept.
    del in_features
    length = self.span + self._first_offset
    hk.set_state("line", jnp.zeros(
        (length * self.features, batch_size), self.param_dtype))

  def cached_step(self, x_site: jax.Array, index: jax.Array) -> jax.Array:
    """x_site [Fin, B], index scalar -> output at site `index` [Fout, B].

    The newest input (site index - 1 if exclusive, else index) feeds the
    outputs at index + s - 1 + m * dilation (s the shift; index + m *
    dilation when not exclusive), m = 0 .. T - 1, through tap T - 1 - m.
    """
    if self.exclusive:
      x_site = jnp.where(index > 0, x_site, 0)
    kernel = self._kernel(x_site.shape[0])[::-1]  # [T, Fin, Fout], m-th at m
    pushed = _push(kernel, x_site, self.precision)  # [T * Fout, B]
    line = _push_line(hk.get_state("line"), pushed, self.features,
                      self.kernel_dilation, self._first_offset)
    hk.set_state("line", line)
    y = line[:self.features]
    bias = self._bias((self.features,))
    return y if bias is None else y + bias[:, None]


# A convolution's full pass with at most this many input features
# "spreads", with at most this many output features "pushes"; otherwise it
# is XLA's convolution (see `_full_pass`; BENCHMARKS.md, "Tuned constants").
SPREAD_MAX_IN_FEATURES = 1
PUSH_MAX_OUT_FEATURES = 4


def _shifted(a: jax.Array, offsets: Sequence[int]) -> jax.Array:
  """a [B, *S, F] moved by `offsets` along S, zeros shifted in:
  out[p] = a[p - offsets] where that is inside, else 0."""
  zero = jnp.zeros((), a.dtype)
  return jax.lax.pad(a, zero, [(0, 0, 0)] + [(o, -o, 0) for o in offsets]
                     + [(0, 0, 0)])


def _tap_gradients(x: jax.Array, c: jax.Array,
                   offsets: Sequence[Sequence[int]]) -> jax.Array:
  """[B, T, Fin, Fout]: each configuration's gradient with respect to the
  taps of a full pass out[p] = sum_t x[p - offsets[t]] taps[t], from its
  input x [B, *S, Fin] and the cotangent c [B, *S, Fout] at its output."""
  spatial = "".join("pqrs"[:x.ndim - 2])
  contract = f"b{spatial}f,b{spatial}g->bfg"
  return jnp.stack([jnp.einsum(contract, jnp.conj(_shifted(x, o)), c)
                    for o in offsets], axis=1)


def _full_pass(x: jax.Array, kernel: jax.Array, conv, taps_of,
               offsets: Sequence[Sequence[int]], precision,
               crop: int = 0) -> jax.Array:
  """A masked convolution's full pass: conv(x, kernel), XLA's, or the same
  sum over the unmasked taps (`taps_of(kernel)` [T, Fin, Fout], tap t
  reading the input `offsets[t]` back) where that is faster; without the
  first `crop` outputs along axis 1 (conv leaves them out itself).

  With few input features each tap's shifted input times its kernel slice
  is added ("spread"); with few output features one matmul gives every
  tap's share and the shifted shares are added ("push"). Reverse passes
  through the shifted shares are slow, so "push" takes its derivatives
  from XLA's convolution (both are linear in x and in the kernel).
  """
  count, fin, fout = taps_of(kernel).shape
  x = x.astype(jnp.result_type(x.dtype, kernel.dtype))
  if fin <= SPREAD_MAX_IN_FEATURES:
    taps = taps_of(kernel)
    return sum(jnp.matmul(_shifted(x, o), taps[t], precision=precision)
               for t, o in enumerate(offsets))[:, crop:]
  if fout > PUSH_MAX_OUT_FEATURES:
    return conv(x, kernel)

  @jax.custom_jvp
  def pushed(x, kernel):
    taps = jnp.transpose(taps_of(kernel), (1, 0, 2)).reshape(fin, count * fout)
    shares = jnp.matmul(x, taps, precision=precision).reshape(
        *x.shape[:-1], count, fout)
    return sum(_shifted(shares[..., t, :], o)
               for t, o in enumerate(offsets))[:, crop:]

  @pushed.defjvp
  def _(primals, tangents):
    (x, kernel), (dx, dkernel) = primals, tangents
    return pushed(x, kernel), conv(dx, kernel) + conv(x, dkernel)

  return pushed(x, kernel)


def _push(taps: jax.Array, x_site: jax.Array, precision) -> jax.Array:
  """What one input adds through each tap: [T, Fin, Fout] x [Fin, B] ->
  [T * Fout, B], tap-major, as one matmul."""
  kernel = jnp.transpose(taps, (0, 2, 1)).reshape(-1, taps.shape[1])
  return jnp.dot(kernel, x_site.astype(kernel.dtype), precision=precision)


def _push_line(line: jax.Array, pushed: jax.Array, features: int,
               spacing: int, start: int = 0) -> jax.Array:
  """Moves the partial sums of the coming outputs one site on, adds new ones.

  line [Q * G, B]: partial sums of the outputs at offsets 0 .. Q - 1 from
  the previous site, offset-major (G features each; offset 0 was that
  site's output, already read). Returns the sums at offsets 0 .. Q - 1 from
  the current site, with pushed [k * G, B] added at offsets start, start +
  spacing, .., start + (k - 1) * spacing.
  """
  g = features
  shifted = jnp.pad(line[g:], ((0, g), (0, 0)))
  if spacing > 1:  # spread the k blocks to every spacing-th offset
    k, batch = pushed.shape[0] // g, pushed.shape[1]
    pushed = jnp.pad(pushed.reshape(k, 1, g, batch),
                     ((0, 0), (0, spacing - 1), (0, 0), (0, 0)))
    pushed = pushed.reshape(-1, pushed.shape[-1])
  if start:
    pushed = jnp.pad(pushed, ((start * g, 0), (0, 0)))
  return shifted + pushed[:line.shape[0]].astype(line.dtype)


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
    # Rows of partial sums the cache keeps, and side padding in columns.
    self.ring_rows = self.rows_back(self.kernel_size, self.kernel_dilation) + 1
    self.back = self.ring_rows - 1  # rows of context a valid pass needs
    self.pad_cols = (kw // 2) * dw

  @staticmethod
  def rows_back(kernel_size: Sequence[int], kernel_dilation: Sequence[int]
                ) -> int:
    """How many rows above its own an output sees."""
    return (kernel_size[0] - 1) * kernel_dilation[0]

  def _kernel(self, in_features: int) -> jax.Array:  # [kh, kw, Fin, Fout]
    kh, kw = self.kernel_size
    mask = self.mask[:, :, None, None]
    init = self.kernel_init or initializers.lecun_normal()
    kernel = hk.get_parameter(
        "kernel", (kh, kw, in_features, self.features), self.param_dtype,
        init=initializers.masked(init, mask))
    return kernel * jnp.asarray(mask, kernel.dtype)

  def __call__(self, x: jax.Array, valid: bool = False) -> jax.Array:
    """[B, H', W, Fin] -> [B, H', W, Fout]; any number of rows H', zeros
    above them (the lattice's rows, or a window of them).

    valid=True: x holds `rows_back` rows of context first, and the output
    starts after them: [B, H', W, Fin] -> [B, H' - rows_back, W, Fout].
    """
    kernel = self._kernel(x.shape[-1])
    back = self.back

    def conv(x, kernel):
      return jax.lax.conv_general_dilated(
          x, kernel, window_strides=(1, 1),
          padding=[(0 if valid else back, 0), (self.pad_cols, self.pad_cols)],
          rhs_dilation=self.kernel_dilation,
          dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=self.precision)

    rows, cols, offsets = self._taps()
    y = _full_pass(x, kernel, conv, lambda kernel: kernel[rows, cols],
                   offsets, self.precision, crop=back if valid else 0)
    bias = self._bias((self.features,))
    return y if bias is None else y + bias

  def _taps(self) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """The unmasked taps' kernel rows and columns, and their offsets: tap
    (j, t) reads the input (kh - 1 - j) dh rows up and (kw // 2 - t) dw
    columns left."""
    kh, kw = self.kernel_size
    dh, dw = self.kernel_dilation
    rows, cols = np.nonzero(self.mask)
    return rows, cols, [((kh - 1 - j) * dh, (kw // 2 - t) * dw)
                        for j, t in zip(rows, cols)]

  def gradient_rule(self) -> GradientRule:
    (rows, cols, offsets), use_bias = self._taps(), self.use_bias

    def sample_gradients(x, c, shapes):
      taps = _tap_gradients(x, c, offsets)  # [B, T, Fin, Fout]
      kernel = jnp.zeros((x.shape[0], *shapes["kernel"]), taps.dtype)
      kernel = kernel.at[:, rows, cols].set(taps)
      return {"kernel": kernel,
              **({"bias": jnp.sum(c, axis=(1, 2))} if use_bias else {})}

    return GradientRule(sample_gradients)

  def _push_taps(self) -> list[tuple[int, int, int]]:
    """Unmasked taps as (kernel row j, first flipped column, count) per row.

    Tap (j, t) carries the input at (r, c) to the output at
    (r + (kh - 1 - j) dh, c + (kw // 2 - t) dw), i.e. to the padded column
    c + t' dw with the flipped column t' = kw - 1 - t. Rows above the
    current one use every t'; the current row only t' >= kw - taps, the
    unmasked columns, which reach the input's own column (inclusive) or the
    ones right of it.
    """
    kh, kw = self.kernel_size
    taps = kw // 2 + (0 if self.exclusive else 1)
    return [(j, 0, kw) for j in range(kh - 1)] + [(kh - 1, kw - taps, taps)]

  def init_cache(self, batch_size: int, in_features: int) -> None:
    # Partial sums of the outputs not read yet: a ring of `ring_rows` output
    # rows (row r in slot r % ring_rows), each of padded columns p stored at
    # (p % dw, p // dw) so that the columns one input feeds, c + t' dw, are
    # one contiguous block; [R, dw, cols, Fout, B].
    del in_features
    dw = self.kernel_dilation[1]
    cols = (self.width - 1) // dw + self.kernel_size[1]
    hk.set_state("acc", jnp.zeros(
        (self.ring_rows, dw, cols, self.features, batch_size),
        self.param_dtype))

  def _here(self, index: jax.Array) -> tuple[jax.Array, ...]:
    """Where the partial sum of the output at `index` lives in the cache."""
    dw = self.kernel_dilation[1]
    r, c = index // self.width, index % self.width
    return (r % self.ring_rows, c % dw, c // dw + self.kernel_size[1] // 2, 0, 0)

  def cached_step(self, x_site: jax.Array, index: jax.Array) -> jax.Array:
    """x_site [Fin, B], index scalar (raster) -> output at `index` [Fout, B].

    The newest input adds its share to every output it feeds (one matmul
    over all unmasked taps), then the output at `index`, now complete, is
    read. Padding columns collect stray sums nobody reads.
    """
    kh = self.kernel_size[0]
    dh, dw = self.kernel_dilation
    ring = self.ring_rows
    acc = hk.get_state("acc")  # [R, dw, cols, Fout, B]
    features, batch = acc.shape[-2:]
    newest = index - int(self.exclusive)
    if self.exclusive:
      x_site = jnp.where(index > 0, x_site, 0)
      newest = jnp.maximum(newest, 0)
    r_in, c_in = newest // self.width, newest % self.width
    # The output read last step is done: zero its slot for the row that
    # reuses it. (Zeroing it right after reading it would make XLA copy the
    # whole cache to keep the read intact.)
    acc = jax.lax.dynamic_update_slice(
        acc, jnp.zeros((1, 1, 1, features, batch), acc.dtype),
        self._here(jnp.maximum(index - 1, 0)))
    kernel = self._kernel(x_site.shape[0])  # [kh, kw, Fin, Fout]
    taps = self._push_taps()
    kernel = jnp.concatenate(
        [kernel[j, ::-1][first:first + count] for j, first, count in taps])
    pushed = _push(kernel, x_site, self.precision)  # [T * Fout, B]
    offset = 0
    for j, first, count in taps:
      block = pushed[offset * features:(offset + count) * features]
      block = block.reshape(1, 1, count, features, batch).astype(acc.dtype)
      offset += count
      start = ((r_in + (kh - 1 - j) * dh) % ring, c_in % dw,
               c_in // dw + first, 0, 0)
      acc = jax.lax.dynamic_update_slice(
          acc, jax.lax.dynamic_slice(acc, start, block.shape) + block, start)
    y = jax.lax.dynamic_slice(acc, self._here(index), (1, 1, 1, features, batch))
    hk.set_state("acc", acc)
    y = y.reshape(features, batch)
    bias = self._bias((self.features,))
    return y if bias is None else y + bias[:, None]
