"""NetKet 3.23 with zoo models: a model NetKet's variational states take,
an exact sampler that draws with the zoo's cached one, and ARNN weights
moved between the two.

An optional extra (`pip install -e '.[netket]'`): `import zoo` never imports
NetKet; `import zoo.netket` does. A NetKet script switches in two lines:

  model = zoo.netket.Model(zoo.FastARNNGRU(zoo.spin_half((4, 4), total_sz=0)),
                           hilbert)          # instead of nk.models.ARNN...
  sampler = zoo.netket.Sampler(hilbert)      # instead of nk.sampler.ARDirectSampler
  vstate = nk.vqs.MCState(sampler, model, n_samples=1024)

and `nk.driver.VMC`, `nk.driver.VMC_SR` and `vstate.expect` work unchanged,
with every zoo family, the S^z sectors (which NetKet's own autoregressive
sampler refuses) and symmetrized models.

Local states. NetKet lists the values of a site in descending order (spin
1/2: +1, -1; spin 1: 2, 0, -2, that is 2 S^z) and the zoo in ascending order
(spin 1/2: -1, +1; spin 1: -1, 0, +1). `Model` pairs the two lists in
ascending order, so a NetKet configuration means the same spins in the zoo,
and the sector's total is carried over the same way.

Weights. `params_from_netket` turns the parameters of NetKet's `ARNNDense`,
`ARNNConv1D`, `ARNNConv2D` (and their fast twins, which share them) into
those of the zoo's model of the same layers (conv1d with
`first_taps="netket"`), and `params_to_netket` goes back: the
masked kernels are the same numbers in another layout, and the last layer's
outputs are reversed (the local-state order above). Complex models convert
with `activation="selu_netket"` (NetKet's `reim_selu`, scaled by sqrt(2)
inside and out). Other families are refused by name.
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

try:
  import netket as nk
except ImportError as error:  # pragma: no cover (the extra is installed)
  raise ImportError(
      "zoo.netket needs NetKet: pip install -e '.[netket]' (NetKet 3.23)"
  ) from error

from zoo import checks
from zoo import models
from zoo import nn
from zoo import sampler as zoo_sampler
from zoo import sharding
from zoo.hilbert import Hilbert
from zoo.models import wavefunction as zoo_wavefunction
from zoo.models.wavefunction import Wavefunction


# ---------------------------------------------------------------------------
# Hilbert spaces.

class LocalStates(NamedTuple):
  """How values of NetKet's space map to the zoo model's, site by site.

  Attributes:
    netket: NetKet's local-state values, ascending.
    zoo: the zoo's, ascending; `netket[k]` is the zoo's `zoo[k]`.
  """
  netket: np.ndarray
  zoo: np.ndarray

  @property
  def same(self) -> bool:
    return bool(np.array_equal(self.netket, self.zoo))

  def to_zoo(self, x: jax.Array, dtype) -> jax.Array:
    return self._relabel(x, self.netket, self.zoo, dtype)

  def to_netket(self, x: jax.Array, dtype) -> jax.Array:
    return self._relabel(x, self.zoo, self.netket, dtype)

  def _relabel(self, x, source, target, dtype) -> jax.Array:
    """x's values of `source`, as the values of `target` at their index."""
    if self.same:
      return x.astype(dtype)
    k = jnp.searchsorted(jnp.asarray(source, x.dtype), x)
    return jnp.asarray(target, dtype)[k]


def local_states(hilbert, space: Hilbert) -> LocalStates:
  """Checks that NetKet's `hilbert` is the zoo's `space` and pairs their
  local states.

  Raises:
    ValueError: naming what differs: the number of sites, of local states,
      or the constraint (none, or a sum that is the zoo's sector `total`).
  """
  if not isinstance(hilbert, nk.hilbert.DiscreteHilbert) or not getattr(
      hilbert, "is_finite", True):
    raise checks.FieldError("hilbert", hilbert,
                            "must be a finite discrete NetKet Hilbert space")
  if hilbert.size != space.size:
    raise checks.FieldError(
        "hilbert", hilbert,
        f"has {hilbert.size} sites; the zoo model's space has {space.size} "
        f"({space})")
  try:
    values = np.sort(np.asarray(hilbert.local_states, np.float64))
  except (TypeError, ValueError, AttributeError):
    raise checks.FieldError(
        "hilbert", hilbert,
        "must have the same local states on every site") from None
  ours = np.asarray(space.local_states, np.float64)
  if len(values) != len(ours):
    raise checks.FieldError(
        "hilbert", hilbert,
        f"has {len(values)} local states {tuple(values.tolist())}; the zoo "
        f"model's space has {len(ours)}: {space.local_states}")
  states = LocalStates(values, ours)
  constraint = hilbert.constraint if hilbert.constrained else None
  if constraint is None and space.total is None:
    return states
  if constraint is None or space.total is None:
    have = ("no constraint" if constraint is None
            else f"the constraint {constraint}")
    want = ("no sector" if space.total is None
            else f"the sector total={space.total:g} (the sum of its values)")
    raise checks.FieldError(
        "hilbert", hilbert, f"has {have}; the zoo model's space has {want}")
  total = _sum_constraint(constraint)
  if total is None:
    raise checks.FieldError(
        "hilbert", hilbert,
        f"has the constraint {constraint}; a zoo sector is a fixed sum of "
        "the local values (nk.hilbert.constraint.SumConstraint)")
  ours_total = _zoo_total(states, total, space.size)
  if ours_total is None or abs(ours_total - space.total) > 1e-9:
    raise checks.FieldError(
        "hilbert", hilbert,
        f"fixes the sum of its values to {total:g}; the zoo model's sector "
        f"is total={space.total:g} in its values {space.local_states}")
  return states


def _sum_constraint(constraint) -> float | None:
  sum_constraint = getattr(nk.hilbert.constraint, "SumConstraint", None)
  if sum_constraint is not None and isinstance(constraint, sum_constraint):
    return float(constraint.sum_value)
  return None


def _zoo_total(states: LocalStates, total: float, n: int) -> float | None:
  """A NetKet sum in the zoo's values, where the pairing is affine."""
  if len(states.zoo) == 1:
    return float(n * states.zoo[0])
  scale = (states.zoo[-1] - states.zoo[0]) / (states.netket[-1]
                                              - states.netket[0])
  shift = states.zoo[0] - scale * states.netket[0]
  if not np.allclose(scale * states.netket + shift, states.zoo, atol=1e-12):
    return None
  return float(scale * total + n * shift)


# ---------------------------------------------------------------------------
# The model.

class Model:
  """A zoo model as `nk.vqs.MCState` takes a Flax module.

  `init({"params": key}, x)` gives {"params": the zoo model's params};
  `apply(variables, x)` gives log psi(x) for NetKet configurations x of any
  batch shape [..., N].

  Args:
    wavefunction: a zoo model (any family, a sector, a `Symmetrized`).
    hilbert: NetKet's Hilbert space; checked against the model's
      (`local_states`).
  """

  def __init__(self, wavefunction: zoo_wavefunction.Model, hilbert):
    if not isinstance(wavefunction, zoo_wavefunction.Model):
      raise checks.FieldError("wavefunction", wavefunction,
                              "must be a zoo model (zoo.models.Model)")
    self.wavefunction = wavefunction
    self.hilbert = hilbert
    self.states = local_states(hilbert, wavefunction.hilbert)

  # By identity: a static argument of NetKet's jitted functions.
  __hash__ = object.__hash__
  __eq__ = object.__eq__

  def init(self, rngs, *args, **kwargs) -> dict[str, Any]:
    del args, kwargs  # the zoo model knows its input shape
    key = rngs["params"] if isinstance(rngs, dict) else rngs
    params, _ = self.wavefunction.init(key)
    return {"params": params}

  def apply(self, variables, x, *args, method=None, mutable=False,
            rngs=None, **kwargs):
    del rngs
    if args or kwargs or method is not None:
      raise ValueError(
          "zoo.netket.Model.apply computes log psi(x) only; got "
          f"method={method!r}, extra arguments {args or ''}{kwargs or ''}")
    x = jnp.asarray(x)
    n = self.wavefunction.hilbert.size
    flat = self.states.to_zoo(x.reshape(-1, n), self.wavefunction.real_dtype)
    out = self.wavefunction.log_psi(variables["params"], flat).reshape(
        x.shape[:-1])
    if mutable is not False:
      return out, {}
    return out

  def __repr__(self) -> str:
    return f"zoo.netket.Model({self.wavefunction!r})"


# ---------------------------------------------------------------------------
# The sampler.

class SamplerState(nk.sampler.SamplerState):
  """The key of the next draw."""
  key: jax.Array

  def __init__(self, key):
    self.key = key
    super().__init__()


class Sampler(nk.sampler.Sampler):
  """Exact, independent samples of a `zoo.netket.Model` by the zoo's
  cached sampler (`zoo.sampler.draw`), `chunk_size` samples at once (None:
  the zoo's default). Only models wrapped by `Model` can be sampled; their
  Hilbert space may be constrained (an S^z sector).

  With NetKet's sharding on and several devices, the samples are drawn
  sharded over all of them (`zoo.sharding.batch_mesh`).
  """

  chunk_size: int | None = nk.utils.struct.field(pytree_node=False,
                                                 default=None)

  def __init__(self, hilbert, *, chunk_size: int | None = None, dtype=None):
    self.chunk_size = checks.optional_positive_int("chunk_size", chunk_size)
    super().__init__(hilbert, machine_pow=2, dtype=dtype)

  @property
  def is_exact(self) -> bool:
    return True

  def _init_state(self, machine, params, key):
    del params
    self._model_of(machine)
    return SamplerState(key=key)

  def _reset(self, machine, params, state):
    del machine, params
    return state

  def _model_of(self, machine) -> Model:
    if not isinstance(machine, Model):
      raise checks.FieldError(
          "model", machine,
          "zoo.netket.Sampler draws from zoo models: wrap one in "
          "zoo.netket.Model(model, hilbert)")
    if machine.hilbert != self.hilbert:
      raise checks.FieldError(
          "model", machine,
          f"lives on {machine.hilbert}, the sampler on {self.hilbert}")
    return machine

  def _sample_chain(self, machine, variables, state, chain_length,
                    return_log_probabilities: bool = False):
    model = self._model_of(machine)
    pow_ = self.machine_pow
    if (not isinstance(pow_, jax.core.Tracer)
        and float(np.asarray(pow_)) != model.wavefunction.machine_pow):
      raise checks.FieldError(
          "machine_pow", float(np.asarray(pow_)),
          f"must be the model's machine_pow={model.wavefunction.machine_pow}"
          " (an autoregressive model samples |psi|^machine_pow)")
    return _sample(self, model, variables, state, chain_length,
                   return_log_probabilities)


@functools.partial(jax.jit, static_argnums=(1, 4, 5))
def _sample(sampler: Sampler, model: Model, variables, state, chain_length,
            return_log_probabilities):
  wavefunction = model.wavefunction
  n = sampler.n_batches * chain_length
  mesh = None
  if nk.config.netket_sharding and jax.device_count() > 1:
    mesh = sharding.batch_mesh()
  chunk = zoo_sampler.chunk_for(n, sampler.chunk_size, mesh,
                                model=wavefunction)
  key, next_key = jax.random.split(state.key)
  x, log_prob = zoo_sampler.draw(wavefunction, variables["params"], key, n,
                                 chunk, mesh)
  dtype = sampler.dtype or x.dtype
  x = model.states.to_netket(x, dtype).reshape(sampler.n_batches,
                                               chain_length, -1)
  state = state.replace(key=next_key)
  if return_log_probabilities:
    return (x, log_prob.reshape(sampler.n_batches, chain_length)), state
  return x, state


# ---------------------------------------------------------------------------
# Weights.

_NETKET_LAYER = re.compile(r"_layers_(\d+)")
_ZOO_LAYER = re.compile(r".*/~/layer_(\d+)")


def _zoo_layers(model: Wavefunction, params) -> list[str]:
  """The model's layer names in order, if it is convertible."""
  convertible = [name for name, family in models.FAMILIES.items()
                 if family.netket]
  if (model.sampling_base is not model
      or model.spec.family not in convertible):
    raise checks.FieldError(
        "model", model,
        "NetKet weights convert to the zoo's masked families "
        f"({', '.join(convertible)}), spin 1/2")
  if "first_taps" in model.spec.takes and model.spec.first_taps != "netket":
    raise checks.FieldError(
        "model", model,
        "NetKet's conv1d weights need first_taps='netket' (its exclusive "
        "first layer has kernel_size - 1 taps, the zoo's default k)")
  if model.hilbert.local_size != 2:
    raise checks.FieldError("model", model,
                            "NetKet weights convert for spin-1/2 models")
  if (jnp.issubdtype(model.dtype, jnp.complexfloating)
      and model.spec.activation is not nn.ACTIVATIONS["selu_netket"]):
    raise checks.FieldError(
        "model", model,
        "complex NetKet weights need activation='selu_netket' (NetKet's "
        "reim_selu scales by sqrt(2) inside and out; the zoo's selu does not)")
  return sorted(params, key=lambda k: int(_ZOO_LAYER.fullmatch(k).group(1)))


def _dense(model: Wavefunction) -> bool:
  """Whether its layers are dense (no kernel size): kernels over the sites."""
  return not model.spec.kernel_size[0]


def params_from_netket(model: Wavefunction, netket_params) -> dict:
  """The zoo params of `model` that equal NetKet's ARNN with
  `netket_params` (the "params" of its variables, or the variables).

  Raises:
    ValueError: naming the layer whose shape or presence does not fit.
  """
  netket_params = netket_params.get("params", netket_params)
  template, _ = jax.eval_shape(model.init, jax.random.key(0))
  names = _zoo_layers(model, template)
  theirs = {int(_NETKET_LAYER.fullmatch(k).group(1)): v
            for k, v in netket_params.items() if _NETKET_LAYER.fullmatch(k)}
  if sorted(theirs) != list(range(len(names))):
    raise checks.FieldError(
        "netket_params", sorted(netket_params),
        f"must hold layers _layers_0 .. _layers_{len(names) - 1} for "
        f"{model.name} with {len(names)} layers")
  n = model.hilbert.size
  out = {}
  for i, name in enumerate(names):
    layer = theirs[i]
    want = template[name]
    kernel = np.asarray(layer["kernel"])
    if _dense(model):  # (N Fin, N Fout) -> (N, Fin, N, Fout)
      if kernel.ndim != 2 or kernel.shape[0] % n or kernel.shape[1] % n:
        raise _shape_error(i, "kernel", kernel.shape, want["kernel"].shape)
      kernel = kernel.reshape(n, kernel.shape[0] // n, n, kernel.shape[1] // n)
    arrays = {"kernel": kernel}
    if "bias" in want:
      if "bias" not in layer:
        raise checks.FieldError(f"netket_params._layers_{i}", sorted(layer),
                                "must hold a bias (the zoo model uses one)")
      arrays["bias"] = np.asarray(layer["bias"])
    for field, value in arrays.items():
      if value.shape != want[field].shape:
        raise _shape_error(i, field, value.shape, want[field].shape)
      if i == len(names) - 1:  # outputs in the zoo's local-state order
        value = value[..., ::-1]
      arrays[field] = jnp.asarray(value, want[field].dtype)
    out[name] = arrays
  return out


def params_to_netket(model: Wavefunction, params) -> dict:
  """NetKet's ARNN params {"_layers_i": {"kernel", "bias"}} equal to the zoo
  `model` with `params` (the inverse of `params_from_netket`)."""
  names = _zoo_layers(model, params)
  out = {}
  for i, name in enumerate(names):
    arrays = {}
    for field, value in params[name].items():
      value = np.asarray(value)
      if i == len(names) - 1:
        value = value[..., ::-1]
      if field == "kernel" and _dense(model):
        n, f_in, _, f_out = value.shape
        value = value.reshape(n * f_in, n * f_out)
      arrays[field] = jnp.asarray(value)
    out[f"_layers_{i}"] = arrays
  return out


def _shape_error(i: int, field: str, shape, want) -> checks.FieldError:
  return checks.FieldError(
      f"netket_params._layers_{i}.{field}", tuple(shape),
      f"must have the shape of the zoo model's layer {i}, {tuple(want)} "
      "(same layers, features and kernel sizes)")
