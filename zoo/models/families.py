"""The ARNN families and their fast twins, with field validation.

Each constructor returns a `Wavefunction` bundle. The fast twin of a family
has the same fields and the same params tree; only `conditional` differs
(cached one-site pass instead of a full pass).

Fields:
  hilbert: the Hilbert space (conv2d needs a 2D lattice shape (Lx, Ly)).
  layers: number of masked layers.
  features: an int F means F for every layer but the last, which has
    `hilbert.local_size`; a tuple must have `layers` entries ending in it.
  kernel_size: conv1d: k; conv2d: (kh, kw) with kw odd (or one int for both).
  kernel_dilation: one value for all layers, or one per layer (e.g. 1, 2, 4,
    8); conv2d values are ints or (dh, dw) pairs. A 2-tuple of ints for
    conv2d means (dh, dw); write ((1, 1), (2, 2)) for a 2-layer schedule.
  activation: a callable or a name in `zoo.nn.ACTIVATIONS`; default selu on
    real and imaginary parts separately.
  use_bias, param_dtype (float32/64, complex64/128), precision, machine_pow,
  kernel_init (JAX-style; masked and rescaled), bias_init.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zoo import nn
from zoo.hilbert import Hilbert
from zoo.models.arnn import ARNNSpec
from zoo.models.bundle import Wavefunction

PARAM_DTYPES = ("float32", "float64", "complex64", "complex128")


def _is_int(v) -> bool:
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_positive(name: str, v) -> int:
  if not _is_int(v) or v < 1:
    raise ValueError(f"{name} must be a positive integer, got {v!r}")
  return int(v)


def _features(features, layers: int, local_size: int) -> tuple[int, ...]:
  if _is_int(features):
    _check_positive("features", features)
    return (int(features),) * (layers - 1) + (local_size,)
  if not isinstance(features, Sequence):
    raise ValueError(f"features must be an int or a tuple of ints, got {features!r}")
  features = tuple(features)
  if len(features) != layers:
    raise ValueError(
        f"features={features} has {len(features)} entries; expected one per "
        f"layer (layers={layers})")
  for i, f in enumerate(features):
    _check_positive(f"features[{i}]", f)
  if features[-1] != local_size:
    raise ValueError(
        f"features={features} must end with local_size={local_size} (the "
        "last layer outputs one value per local state)")
  return tuple(int(f) for f in features)


def _per_layer(name: str, value, layers: int, rank: int) -> tuple[tuple[int, ...], ...]:
  """One value for all layers or one per layer; each a rank-tuple of ints."""

  def one(v, where):
    if _is_int(v):
      return (_check_positive(where, v),) * rank
    if rank == 2 and isinstance(v, Sequence) and len(v) == 2 and all(map(_is_int, v)):
      return (_check_positive(f"{where}[0]", v[0]), _check_positive(f"{where}[1]", v[1]))
    expected = "a positive integer" + (" or a pair of them" if rank == 2 else "")
    raise ValueError(f"{where} must be {expected}, got {v!r}")

  is_pair = rank == 2 and isinstance(value, Sequence) and len(value) == 2 and all(
      map(_is_int, value))
  if _is_int(value) or is_pair:
    return (one(value, name),) * layers
  if isinstance(value, Sequence) and not isinstance(value, str):
    if len(value) != layers:
      raise ValueError(
          f"{name}={tuple(value)} has {len(value)} entries; expected one value "
          f"or one per layer (layers={layers})")
    return tuple(one(v, f"{name}[{i}]") for i, v in enumerate(value))
  raise ValueError(f"{name} must be a value or one per layer, got {value!r}")


def _param_dtype(param_dtype) -> Any:
  try:
    dtype = jnp.dtype(param_dtype)
  except TypeError:
    dtype = None
  if dtype is None or dtype.name not in PARAM_DTYPES:
    raise ValueError(f"param_dtype must be one of {PARAM_DTYPES}, got {param_dtype!r}")
  if dtype.itemsize * (1 if dtype.kind == "f" else 0.5) == 8 and not jax.config.jax_enable_x64:
    raise ValueError(
        f"param_dtype={dtype.name} needs jax_enable_x64; `import zoo` enables it "
        "unless it was switched off afterwards")
  return dtype.type


def _activation(activation):
  if isinstance(activation, str):
    if activation not in nn.ACTIVATIONS:
      raise ValueError(
          f"activation={activation!r} is not one of {sorted(nn.ACTIVATIONS)}")
    return nn.ACTIVATIONS[activation]
  if not callable(activation):
    raise ValueError(f"activation must be a callable or a name, got {activation!r}")
  return activation


def make_spec(
    family: str,
    hilbert: Hilbert,
    *,
    layers: int,
    features,
    kernel_size=None,
    kernel_dilation=1,
    activation="selu",
    use_bias: bool = True,
    param_dtype=jnp.float64,
    precision=None,
    machine_pow: int = 2,
    kernel_init=None,
    bias_init=nn.zeros,
    fast: bool = False,
) -> ARNNSpec:
  """Validates the fields of a family and resolves them into an ARNNSpec."""
  if not isinstance(hilbert, Hilbert):
    raise ValueError(f"hilbert must be a zoo.Hilbert, got {hilbert!r}")
  layers = _check_positive("layers", layers)
  features = _features(features, layers, hilbert.local_size)
  if family == "dense":
    if kernel_size is not None:
      raise ValueError(f"kernel_size does not apply to dense models, got {kernel_size!r}")
    kernel_size = kernel_dilation = ((),) * layers
  elif family == "conv1d":
    if kernel_size is None:
      raise ValueError("kernel_size is required for conv1d models")
    kernel_size = (( _check_positive("kernel_size", kernel_size),),) * layers
    kernel_dilation = _per_layer("kernel_dilation", kernel_dilation, layers, 1)
  elif family == "conv2d":
    if len(hilbert.shape) != 2:
      raise ValueError(
          f"conv2d models need a 2D lattice shape (Lx, Ly); hilbert has shape "
          f"{hilbert.shape}")
    if kernel_size is None:
      raise ValueError("kernel_size is required for conv2d models")
    kernel_size = _per_layer("kernel_size", kernel_size, 1, 2)[0]
    if kernel_size[1] % 2 == 0:
      raise ValueError(
          f"kernel_size={kernel_size} must have an odd width (columns centred "
          "on the current site)")
    kernel_size = (kernel_size,) * layers
    kernel_dilation = _per_layer("kernel_dilation", kernel_dilation, layers, 2)
  else:
    raise ValueError(f"family must be one of dense, conv1d, conv2d, got {family!r}")
  if not _is_int(machine_pow) or machine_pow < 1:
    raise ValueError(f"machine_pow must be a positive integer, got {machine_pow!r}")
  if precision is not None and not isinstance(precision, (str, jax.lax.Precision)):
    raise ValueError(f"precision must be None, a jax.lax.Precision or a name, got {precision!r}")
  if kernel_init is not None and not callable(kernel_init):
    raise ValueError(f"kernel_init must be a JAX initializer, got {kernel_init!r}")
  if not callable(bias_init):
    raise ValueError(f"bias_init must be a JAX initializer, got {bias_init!r}")
  return ARNNSpec(
      family=family, hilbert=hilbert, features=features,
      kernel_size=kernel_size, kernel_dilation=kernel_dilation,
      activation=_activation(activation), use_bias=bool(use_bias),
      param_dtype=_param_dtype(param_dtype), precision=precision,
      machine_pow=int(machine_pow), kernel_init=kernel_init,
      bias_init=bias_init, fast=bool(fast))


def _family(family: str, fast: bool, name: str):

  def constructor(hilbert: Hilbert, **fields) -> Wavefunction:
    return Wavefunction(make_spec(family, hilbert, fast=fast, **fields), name)

  constructor.__name__ = constructor.__qualname__ = name
  constructor.__doc__ = (
      f"{'Fast (cached) ' if fast else ''}autoregressive {family} network; "
      "returns a `Wavefunction`. See the module docstring for the fields.")
  return constructor


ARNNDense = _family("dense", False, "ARNNDense")
FastARNNDense = _family("dense", True, "FastARNNDense")
ARNNConv1D = _family("conv1d", False, "ARNNConv1D")
FastARNNConv1D = _family("conv1d", True, "FastARNNConv1D")
ARNNConv2D = _family("conv2d", False, "ARNNConv2D")
FastARNNConv2D = _family("conv2d", True, "FastARNNConv2D")

MODELS = {f.__name__: f for f in (ARNNDense, FastARNNDense, ARNNConv1D,
                                  FastARNNConv1D, ARNNConv2D, FastARNNConv2D)}
