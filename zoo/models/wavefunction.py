"""The transform bundle: one params tree, several pure functions.

Built with `hk.multi_transform_with_state`: the full pass (log psi and the
conditionals), the cache initializer, and the one-site conditional whose
cache travels as Haiku state.

Glossary of shapes:
  B: batch, N: sites, K: local states.
"""

from __future__ import annotations

import functools
import math
import typing
from typing import Any, Callable, Mapping, NamedTuple, Protocol

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from zoo import checks
from zoo import nn
from zoo.hilbert import Hilbert
from zoo.models.arnn import ARNN, ARNNSpec, MaskedStack

Params = Mapping[str, Mapping[str, jax.Array]]
State = Mapping[str, Mapping[str, jax.Array]]


@typing.runtime_checkable
class Model(Protocol):
  """What the sampler, the VMC and the NetKet plugin ask of a model: a
  `Wavefunction`, or a wrapper of one (`zoo.models.symmetric.Symmetrized`)
  that keeps the same contract.

  Sampling asks `sampling_base`: the autoregressive model whose
  conditionals draw (the model itself for a `Wavefunction`), and
  `from_base_samples(x, keys)`, which turns its samples into the model's
  (the identity for a `Wavefunction`). Local energies ask `restarts`,
  `suffixes`, `reach` and `images` (`zoo.vmc.local_energy`), SR
  `layer_probe` and `live_parameters` (`zoo.vmc.sr`).
  """
  name: str
  spec: ARNNSpec

  @property
  def hilbert(self) -> Hilbert: ...

  @property
  def machine_pow(self) -> int: ...

  @property
  def dtype(self) -> Any: ...

  @property
  def real_dtype(self) -> Any: ...

  @property
  def sampling_base(self) -> "Wavefunction": ...

  def from_base_samples(self, x: jax.Array, keys: jax.Array) -> jax.Array: ...

  @property
  def restarts(self) -> bool: ...

  @property
  def suffixes(self) -> str | None: ...

  @property
  def reach(self) -> tuple[int, tuple[int, ...]] | None: ...

  @property
  def images(self) -> "Images | None": ...

  def init(self, key: jax.Array) -> tuple[Params, State]: ...

  def log_psi(self, params: Params, x) -> jax.Array: ...

  def parameter_shapes(self) -> Params: ...

  def live_parameters(self) -> Params: ...

  def layer_probe(self) -> "LayerProbe | None": ...


class Images(NamedTuple):
  """`Model.images` of a model whose log psi combines an autoregressive
  base's over images g x of the configuration (a symmetrized state):
  local energies restart the base on each image (`zoo.vmc.local_energy`).

  Attributes:
    base: the `Wavefunction` evaluated on the images.
    permutations: [G, N] int, site i of image g holds site
      permutations[g, i] of x (up to a sign, `apply`).
    apply: x [B, N] -> its images [G, B, N].
    combine: the base's log psi of the images [G, ...] -> the model's [...].
  """
  base: "Wavefunction"
  permutations: np.ndarray
  apply: Callable[[jax.Array], jax.Array]
  combine: Callable[[jax.Array], jax.Array]


class LayerProbe(NamedTuple):
  """`Wavefunction.layer_probe()`: what SR needs to build every sample's
  gradient from the layers (`zoo.nn.gradient_rules`).

  Attributes:
    log_psi: (params, x [B, N], shifts {layer: [B images, ...]}) ->
      (log psi [B], {layer: its recorded inputs, a pytree [B images,
      ...]}); the shifts are added at the layers' probe points (zeros change
      nothing; a missing layer gets none).
    layers: {layer module name: its `zoo.nn.GradientRule`}.
    points: {layer: the shape and dtype of its probe point for one
      configuration, [1, ...]}.
    images: configurations the layers see per sample (a symmetrized model's
      group elements, image-major: row g B + b), whose gradients add up to
      the sample's; 1 for a plain model.
  """
  log_psi: Callable[..., tuple[jax.Array, dict[str, Any]]]
  layers: dict[str, nn.GradientRule]
  points: dict[str, jax.ShapeDtypeStruct]
  images: int = 1

  @property
  def dense(self) -> bool:
    """Whether every layer is a MaskedDense1D of a plain model (SR's Gram
    form, `zoo.vmc.sr.centred_gram`)."""
    return self.images == 1 and all(
        rule.dense is not None for rule in self.layers.values())


class Wavefunction:
  """An autoregressive wavefunction as pure functions of (params, inputs).

  `x` holds local-state values, shape [B, N]; a single configuration [N] is
  accepted too and gives outputs without the batch axis.

  Attributes:
    spec: the resolved architecture.
    name: the family name, e.g. "FastARNNConv1D".
    hilbert, machine_pow, is_fast: from the spec.
  """

  def __init__(self, spec: ARNNSpec, name: str):
    self.spec = spec
    self.name = name

    def functions():
      net = ARNN(spec)
      return net.conditionals_log_psi, (
          net.conditionals_log_psi, net.init_cache, net.conditional_log_psi,
          net.units, net.stage, net.head_log_psi, net.keep,
          net.conditionals_from, net.conditionals_restarted)

    self._transformed = hk.multi_transform_with_state(functions)

  # Hashing by identity lets a model be a static argument of jax.jit.
  __hash__ = object.__hash__
  __eq__ = object.__eq__

  @property
  def hilbert(self) -> Hilbert:
    return self.spec.hilbert

  @property
  def machine_pow(self) -> int:
    return self.spec.machine_pow

  @property
  def is_fast(self) -> bool:
    return self.spec.fast

  @property
  def body_type(self) -> type:
    """The class of the family's body (`zoo.models.arnn`)."""
    return self.spec.body or MaskedStack

  @property
  def restarts(self) -> bool:
    """Whether local energies restart connected configurations from the
    shared prefix (`zoo.vmc.local_energy`): a fast model whose body does."""
    return bool(self.is_fast and self.body_type.restarts)

  @property
  def suffixes(self) -> str | None:
    """For a model whose local energies evaluate connected configurations
    from their first change on (`keep`, `conditionals_from`;
    zoo.models.arnn): what its body keeps, "linear" or "attention"; else
    None."""
    return self.body_type.suffixes

  @property
  def reach(self) -> tuple[int, tuple[int, ...]] | None:
    """(unit, units back per stage): how far back the body's stages see
    (`zoo.models.arnn`), or None where every earlier site may matter."""
    return self.body_type.reach(self.spec)

  # Evaluated on the configuration itself, not on images of it (`Model`).
  images = None

  @property
  def sampling_base(self) -> "Wavefunction":
    """The model whose conditionals draw the samples: itself (`Model`)."""
    return self

  def from_base_samples(self, x: jax.Array, keys: jax.Array) -> jax.Array:
    """Its own samples from `sampling_base`'s: the same (`Model`)."""
    del keys
    return x

  @property
  def order(self) -> np.ndarray:  # [N]
    """The site generated at each step (raster order unless the family
    needs another); `conditional` steps through it, samples come back in
    site order."""
    return self.spec.sites_in_order

  @property
  def dtype(self) -> Any:
    """The parameter dtype."""
    return self.spec.param_dtype

  @property
  def real_dtype(self) -> Any:
    """The real dtype of samples and probabilities."""
    return self.spec.real_dtype

  def as_batch(self, x) -> tuple[jax.Array, bool]:
    """x checked against the space: ([B, N], whether x was a single [N])."""
    x = jnp.asarray(x)
    n = self.hilbert.size
    if x.ndim not in (1, 2) or x.shape[-1] != n:
      raise ValueError(
          f"x must have shape [B, {n}] or [{n}] (N = {n} sites of "
          f"{self.hilbert}), got shape {tuple(x.shape)}")
    if jnp.iscomplexobj(x):
      raise ValueError(f"x must hold real local-state values, got dtype {x.dtype}")
    return (x, False) if x.ndim == 2 else (x[None], True)

  def init(self, key: jax.Array) -> tuple[Params, State]:
    """Parameters and an empty state (the cache comes from `init_cache`).

    One compiled program: Haiku creates the parameters by running the
    forward pass, which under jit is traced and dropped, not run
    operation by operation (each of which would compile alone)."""
    return _compiled_init(self)(key)

  def conditionals_log_psi(self, params: Params, x) -> jax.Array:
    """log psi_i(k | x_<i) for every site and local state: [B, N, K]."""
    x, single = self.as_batch(x)
    out, _ = self._transformed.apply[0](params, {}, None, x)
    chex.assert_shape(out, (x.shape[0], self.hilbert.size, self.hilbert.local_size))
    return out[0] if single else out

  def conditionals(self, params: Params, x) -> jax.Array:
    """Conditional probabilities |psi_i(k | x_<i)|^machine_pow: [B, N, K]."""
    log_psi = self.conditionals_log_psi(params, x)
    return jnp.exp(self.machine_pow * log_psi.real)

  def log_psi(self, params: Params, x) -> jax.Array:
    """log psi(x): [B], real for real params, complex otherwise."""
    x, single = self.as_batch(x)
    out = self._select(self.conditionals_log_psi(params, x), x)
    chex.assert_shape(out, (x.shape[0],))
    return out[0] if single else out

  def _select(self, cond: jax.Array, x: jax.Array) -> jax.Array:
    """log psi [B] from the conditionals [B, N, K] of x [B, N]."""
    idx = self.hilbert.states_to_indices(x)  # [B, N]
    return jnp.take_along_axis(cond, idx[..., None], axis=-1)[..., 0].sum(-1)

  # The body as stages (`zoo.models.arnn`), for a model with a `reach`;
  # x [B, N'] of whole units.

  def units(self, params: Params, x: jax.Array) -> jax.Array:
    """The input of stage 0 of x."""
    return self._transformed.apply[3](params, {}, None, x)[0]

  def stage(self, params: Params, i: int, h: jax.Array,
            valid: bool = False) -> jax.Array:
    """Stage i of h; valid: h starts with the stage's units back of
    context, which the output leaves out."""
    return self._transformed.apply[4](params, {}, None, i, h, valid)[0]

  def head_log_psi(self, params: Params, h: jax.Array, x: jax.Array,
                   start: jax.Array, sum_before: jax.Array) -> jax.Array:
    """log psi_i [B, L, K] of the sites x [B, L] from site `start` [B]
    on, h their last stage's output, sum_before [B] the total before them."""
    return self._transformed.apply[5](params, {}, None, h, x, start,
                                      sum_before)[0]

  # Configurations from their first change on, for a model with
  # `suffixes`; raster order.

  def keep(self, params: Params, x: jax.Array):
    """(what x [B, N] keeps of its full pass for `conditionals_from` or
    `conditionals_restarted`, x's conditionals log psi_i [B, N, K]) from
    that one pass."""
    return self._transformed.apply[6](params, {}, None, x)[0]

  def conditionals_from(self, params: Params, x: jax.Array, kept,
                        start: int, sum_before: jax.Array) -> jax.Array:
    """log psi_i [B, m, N - start, K] of the sites from `start` on of x
    [B, m, N], equal before it to the configurations of `kept` [B, ...];
    sum_before [B] the total of those sites."""
    return self._transformed.apply[7](params, {}, None, x, kept, start,
                                      sum_before)[0]

  # Configurations restarted from a generation step, for a model that
  # `restarts`.

  def conditionals_restarted(self, params: Params, x: jax.Array, kept,
                             start: jax.Array) -> jax.Array:
    """log psi_i [b, N, K] of x [b, N], equal before generation step
    `start` to the configurations whose states `kept` holds (`keep`, its
    leaves gathered on their last, batch, axis to the b configurations)."""
    return self._transformed.apply[8](params, {}, None, x, kept, start)[0]

  def init_cache(self, params: Params, batch_size: int) -> State:
    """A zeroed cache for `batch_size` configurations, as Haiku state."""
    batch_size = checks.positive_int("batch_size", batch_size)
    _, state = self._transformed.apply[1](params, {}, None, batch_size)
    return state

  def conditional_log_psi(self, params: Params, state: State, x, index
                          ) -> tuple[jax.Array, State]:
    """log psi of the site of step `index`, `order[index]`, given the sites
    generated before it: [B, K], and the updated cache.

    Fast models must be called for index = 0, 1, ... in order after
    `init_cache`; slow models do a full pass and return `state` unchanged.
    """
    x, single = self.as_batch(x)
    if checks.is_int(index) and not 0 <= index < self.hilbert.size:
      raise checks.FieldError("index", index,
                              f"must be in [0, {self.hilbert.size})")
    out, state = self._transformed.apply[2](params, state, None, x, index)
    chex.assert_shape(out, (x.shape[0], self.hilbert.local_size))
    return (out[0] if single else out), state

  def conditional(self, params: Params, state: State, x, index
                  ) -> tuple[jax.Array, State]:
    """Probabilities of the site of step `index` given the sites generated
    before it: [B, K], and the new cache."""
    log_psi, state = self.conditional_log_psi(params, state, x, index)
    return jnp.exp(self.machine_pow * log_psi.real), state

  def live_parameters(self) -> Params:
    """The params tree as numpy bools: False at the masked kernel entries,
    which the layers multiply by zero, so that no derivative ever reaches
    them (SR leaves them out of its jacobian)."""
    if getattr(self, "_live", None) is None:
      masks = {}

      def creator(next_creator, shape, dtype, init, context):
        mask = getattr(init, "mask", np.ones((), bool))
        masks.setdefault(context.module_name, {})[context.name] = (
            np.broadcast_to(mask, shape))
        return next_creator(shape, dtype, init)

      def trace(x):
        with hk.custom_creator(creator):
          return ARNN(self.spec).conditionals_log_psi(x)

      x = jnp.zeros((1, self.hilbert.size), self.real_dtype)
      jax.eval_shape(hk.transform(trace).init, jax.random.key(0), x)
      self._live = masks
    return self._live

  def layer_probe(self) -> LayerProbe | None:
    """For a model whose every parameter belongs to a layer with a
    `gradient_rule` (`zoo.nn.gradient_rules`) called once per pass: log
    psi with each such layer's inputs recorded and a shift added at its
    probe point, and the layers' rules; else None.

    A sample's gradient with respect to such a layer's parameters follows
    from the layer's inputs and the cotangent at its probe point, and the
    cotangents of every sample come from one reverse pass with respect to
    the shifts: SR's jacobian without a reverse pass per sample, and for
    dense layers A A^T without A (`zoo.vmc.sr.centred_gram`).
    """
    if not hasattr(self, "_layer_probe"):
      self._layer_probe = self._build_layer_probe()
    return self._layer_probe

  def _build_layer_probe(self) -> LayerProbe | None:
    calls, points = [], {}

    def probe(x, shifts):
      inputs = {}

      def interceptor(method, args, kwargs, context):
        module = context.module
        if (context.method_name != "__call__"
            or not hasattr(module, "gradient_rule")):
          return method(*args, **kwargs)
        name = module.module_name
        calls.append((name, module.gradient_rule(),
                      bool(kwargs.get("valid", False))))
        shift = shifts.get(name)
        if hasattr(module, "probed"):
          out, inputs[name], point = module.probed(shift, *args, **kwargs)
        else:
          out = point = method(*args, **kwargs)
          inputs[name] = args[0]
          out = out if shift is None else out + shift
        points[name] = jax.ShapeDtypeStruct(point.shape, point.dtype)
        return out

      with hk.intercept_methods(interceptor):
        cond = ARNN(self.spec).conditionals_log_psi(x)
      return self._select(cond, x), inputs

    transformed = hk.transform(probe)
    x = jnp.zeros((1, self.hilbert.size), self.real_dtype)
    shapes = self.parameter_shapes()
    _, inputs = jax.eval_shape(transformed.apply, shapes, None, x, {})
    names = [name for name, _, _ in calls]
    if (len(set(names)) != len(names) or set(names) != set(shapes)
        or any(valid for _, _, valid in calls)):
      return None
    rules = {name: rule for name, rule, _ in calls}
    for name, rule in rules.items():  # each rule gives its layer's params
      own = {k: v.shape for k, v in shapes[name].items()}
      grads = jax.eval_shape(
          lambda x, c, rule=rule, own=own: rule.sample_gradients(x, c, own),
          inputs[name], points[name])
      expected = {k: (1, *v.shape) for k, v in shapes[name].items()}
      if {k: v.shape for k, v in grads.items()} != expected:
        raise ValueError(
            f"layer {name}: its gradient_rule gives "
            f"{ {k: v.shape for k, v in grads.items()} }, expected the "
            f"parameters' shapes with a batch axis, {expected}")

    def log_psi(params, x, shifts):
      return transformed.apply(params, None, x, shifts)

    return LayerProbe(log_psi=log_psi, layers=rules, points=dict(points))

  def parameter_shapes(self) -> Params:
    """The params tree as jax.ShapeDtypeStructs, without initializing."""
    return jax.eval_shape(self.init, jax.random.key(0))[0]

  def parameter_count(self) -> int:
    """Stored parameters (masked kernel entries included)."""
    return sum(math.prod(p.shape)
               for p in jax.tree.leaves(self.parameter_shapes()))

  def __repr__(self) -> str:
    s = self.spec
    fields = [f"hilbert={s.hilbert}", f"features={s.features}"]
    if s.kernel_size and s.kernel_size[0]:
      fields += [f"kernel_size={s.kernel_size}",
                 f"kernel_dilation={s.kernel_dilation}"]
    if "pbc" in s.takes:
      fields.append(f"pbc={s.pbc}")
    if s.heads:
      fields.append(f"heads={s.heads}")
    if s.first_taps != "shifted":
      fields.append(f"first_taps={s.first_taps!r}")
    fields += [f"param_dtype={jnp.dtype(s.param_dtype).name}",
               f"machine_pow={s.machine_pow}"]
    return f"{self.name}({', '.join(fields)})"


@functools.lru_cache(maxsize=256)
def _compiled_init(model: Wavefunction):
  """`Wavefunction.init` of `model` as one jitted function of the key."""
  return jax.jit(lambda key: model._transformed.init(
      key, jnp.zeros((1, model.hilbert.size), model.real_dtype)))
