"""The ARNN families and their fast twins, with field validation.

Each constructor returns a `Wavefunction` bundle. The fast twin of a family
has the same fields and the same params tree; only `conditional` differs
(cached one-site pass instead of a full pass). `FAMILIES` is the one table
of families: the records (`zoo.models.record.Family`) that the body
modules of `zoo.models` declare as `RECORDS`, gathered here; configs name
them by its keys (`model.family`), `CONSTRUCTORS` and `MODELS` hold the
constructors made from the records, and `FAMILY_FIELDS` lists the fields
each takes. The built-in families:

  family        constructors                    body                  order
  dense         ARNNDense, FastARNNDense        masked layers         raster
  conv1d        ARNNConv1D, FastARNNConv1D      masked convolutions   raster
  conv2d        ARNNConv2D, FastARNNConv2D      masked convolutions   raster
  gru           ARNNGRU, FastARNNGRU            lattice GRUs          snake
  transformer   ARNNTransformer, Fast...        attention, KV cache   raster
  gated_conv1d  ARNNGatedConv1D, Fast...        gated residual convs  raster
  gated_conv2d  ARNNGatedConv2D, Fast...        gated residual convs  raster

Every family's constructors are `ARNN<title>` and `FastARNN<title>`
(`Family.title`); `ARGRU`, `FastARGRU`, `ARTransformer` and
`FastARTransformer` are the older names of the GRU's and the transformer's
(`Family.aliases`), the same functions, kept for one release.

The weight-shared families (all but dense) have parameters whose shapes do
not depend on the lattice size: parameters made on L x L run on L' x L'.

Fields (the same values from Python and from a config):
  hilbert: the Hilbert space (the 2D convolutions need a 2D lattice shape
    (Lx, Ly); gru and transformer take a chain or a lattice).
  layers: masked layers, or blocks (GRU layers, attention blocks, gated
    blocks) before an output layer.
  features: masked families: the width of every layer, the last being
    `hilbert.local_size`: an int F (F for every layer but the last), the
    hidden widths (`layers - 1` of them), all `layers` widths ending in
    local_size, or a schedule down to local_size, ("pyramid", F) (linear
    from F) or ("log", F) (geometric from F). Other families: the width of
    each block, F or one per block (one width for the residual families,
    transformer and gated).
  kernel_size: 1D: k; 2D: (kh, kw) with kw odd (or one int for both).
  kernel_dilation: one value for all layers, one per layer (e.g. 1, 2, 4,
    8), or "wavenet" (1, 2, 4, ... doubling per layer, as in WaveNet; van den
    Oord et al. 2016, arXiv:1609.03499). 2D values are ints or (dh, dw)
    pairs; a 2-tuple of ints in 2D means (dh, dw); write ((1, 1), (2, 2))
    for a 2-layer schedule.
  pbc: gru: read the wrap-around neighbours of a periodic lattice (a config
    takes it from its lattice section).
  heads: transformer: attention heads, dividing the width.
  first_taps: conv1d: "shifted" (default: the exclusive first layer shifts
    its input one site and keeps k taps) or "netket" (k - 1 taps at -d ..
    -(k - 1) d, as NetKet's ARNNConv1D; `zoo.netket` converts its weights).
  activation: a callable or a name in `zoo.nn.ACTIVATIONS`; default selu on
    real and imaginary parts separately (masked: between layers; gated:
    before the output layer).
  use_bias, param_dtype (float32/64, complex64/128, or their names; the
  gru, transformer and gated families keep their blocks real and make the
  output layer complex), precision, machine_pow, kernel_init (JAX-style;
  masked kernels are masked and rescaled), bias_init.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zoo import checks
from zoo import nn
from zoo.hilbert import Hilbert
from zoo.models.arnn import ARNNSpec, Body
from zoo.models.wavefunction import Wavefunction
from zoo.models.record import Family

PARAM_DTYPES = ("float32", "float64", "complex64", "complex128")
# Width schedules of `features`: (name, F) -> widths from F down to K.
FEATURE_SCHEDULES = ("pyramid", "log")
# Dilation schedules of `kernel_dilation`.
DILATION_SCHEDULES = ("wavenet",)


def _features(features, layers: int, local_size: int) -> tuple[int, ...]:
  """The width of every layer (see the module docstring).

  >>> _features(("pyramid", 32), 4, 2)
  (32, 22, 12, 2)
  """
  if checks.is_int(features):
    f = checks.positive_int("features", features)
    return (f,) * (layers - 1) + (local_size,)
  if isinstance(features, Sequence) and not isinstance(features, str):
    features = tuple(features)
    if len(features) == 2 and isinstance(features[0], str):
      return _feature_schedule(features, layers, local_size)
    for i, f in enumerate(features):
      checks.positive_int(f"features[{i}]", f)
    if len(features) == layers - 1:
      features += (local_size,)
    if len(features) != layers:
      raise checks.FieldError(
          "features", features,
          f"has {len(features)} entries; expected layers - 1 = {layers - 1} "
          f"hidden widths, or layers = {layers} widths ending in local_size = "
          f"{local_size}")
    if features[-1] != local_size:
      raise checks.FieldError(
          "features", features,
          f"must end with local_size={local_size} (the last layer outputs one "
          "value per local state)")
    return tuple(int(f) for f in features)
  raise checks.FieldError(
      "features", features,
      "must be an int, a tuple of ints, or a schedule ('pyramid', F) or "
      "('log', F)")


def _feature_schedule(features, layers: int, local_size: int):
  name, start = features
  checks.one_of("features[0]", name, FEATURE_SCHEDULES)
  start = checks.positive_int("features[1]", start)
  if layers == 1:
    return (local_size,)
  t = np.arange(layers) / (layers - 1)
  if name == "pyramid":
    widths = start + (local_size - start) * t
  else:
    widths = start * (local_size / start)**t
  return tuple(max(1, int(round(w))) for w in widths[:-1]) + (local_size,)


def _per_layer(name: str, value, layers: int, rank: int) -> tuple[tuple[int, ...], ...]:
  """One value for all layers or one per layer; each a rank-tuple of ints."""

  def one(v, where):
    if checks.is_int(v):
      return (checks.positive_int(where, v),) * rank
    if rank == 2 and isinstance(v, Sequence) and len(v) == 2 and all(map(checks.is_int, v)):
      return (checks.positive_int(f"{where}[0]", v[0]),
              checks.positive_int(f"{where}[1]", v[1]))
    expected = "a positive integer" + (" or a pair of them" if rank == 2 else "")
    raise checks.FieldError(where, v, f"must be {expected}")

  is_pair = rank == 2 and isinstance(value, Sequence) and len(value) == 2 and all(
      map(checks.is_int, value))
  if checks.is_int(value) or is_pair:
    return (one(value, name),) * layers
  if isinstance(value, Sequence) and not isinstance(value, str):
    if len(value) != layers:
      raise checks.FieldError(
          name, tuple(value),
          f"has {len(value)} entries; expected one value or one per layer "
          f"(layers={layers})")
    return tuple(one(v, f"{name}[{i}]") for i, v in enumerate(value))
  raise checks.FieldError(name, value, "must be a value or one per layer")


def _dilation(value, layers: int, rank: int) -> tuple[tuple[int, ...], ...]:
  if isinstance(value, str):
    checks.one_of("kernel_dilation", value, DILATION_SCHEDULES)
    return tuple((2**i,) * rank for i in range(layers))  # "wavenet"
  return _per_layer("kernel_dilation", value, layers, rank)


def _param_dtype(param_dtype) -> Any:
  try:
    dtype = jnp.dtype(param_dtype)
  except TypeError:
    dtype = None
  if dtype is None or dtype.name not in PARAM_DTYPES:
    raise checks.FieldError("param_dtype", param_dtype,
                            f"must be one of {', '.join(PARAM_DTYPES)}")
  if dtype.itemsize * (1 if dtype.kind == "f" else 0.5) == 8 and not jax.config.jax_enable_x64:
    raise checks.FieldError(
        "param_dtype", dtype.name,
        "needs jax_enable_x64; `import zoo` enables it unless it was switched "
        "off afterwards")
  return dtype.type


def _activation(activation):
  if isinstance(activation, str):
    return nn.ACTIVATIONS[checks.one_of("activation", activation,
                                        sorted(nn.ACTIVATIONS))]
  if not callable(activation):
    raise checks.FieldError("activation", activation,
                            "must be a callable or a name")
  return activation


# Defaults of the shared fields a constructor may leave out (a family's own
# fields have theirs in its record).
DEFAULTS = dict(kernel_dilation=1, activation="selu", use_bias=True,
                param_dtype=jnp.float64, precision=None, machine_pow=2,
                kernel_init=None, bias_init=nn.zeros)


def _widths(features, layers: int) -> tuple[int, ...]:
  """The width of each block: F for all, or one per block."""
  if checks.is_int(features):
    return (checks.positive_int("features", features),) * layers
  if isinstance(features, Sequence) and not isinstance(features, str):
    features = tuple(features)
    for i, f in enumerate(features):
      checks.positive_int(f"features[{i}]", f)
    if len(features) != layers:
      raise checks.FieldError(
          "features", features,
          f"has {len(features)} entries; expected one width or one per layer "
          f"(layers={layers})")
    return tuple(int(f) for f in features)
  raise checks.FieldError("features", features,
                          "must be an int or a tuple of ints")


def _kernels(family: Family, layers: int, kernel_size, kernel_dilation):
  """Per-layer kernel sizes and dilations of the convolutional families."""
  if kernel_size is None:
    raise checks.FieldError("kernel_size", None,
                            f"is required for {family.name} models")
  if family.kernel_rank == 1:
    size = ((checks.positive_int("kernel_size", kernel_size),),) * layers
    return size, _dilation(kernel_dilation, layers, 1)
  size = _per_layer("kernel_size", kernel_size, 1, 2)[0]
  if size[1] % 2 == 0:
    raise checks.FieldError(
        "kernel_size", size,
        "must have an odd width (columns centred on the current site)")
  return (size,) * layers, _dilation(kernel_dilation, layers, 2)


def make_spec(family: str, hilbert: Hilbert, *, fast: bool = False,
              **fields) -> ARNNSpec:
  """Validates the fields of a family and resolves them into an ARNNSpec.

  `fields` are the family's (its record's `fields`, see the module
  docstring); `layers` and `features` are required, the others have
  DEFAULTS or the record's defaults.
  """
  if not isinstance(hilbert, Hilbert):
    raise checks.FieldError("hilbert", hilbert, "must be a zoo.Hilbert")
  record = FAMILIES[checks.one_of("family", family, FAMILIES)]
  known = record.fields
  for name, value in fields.items():
    if name not in known:
      raise checks.FieldError(
          name, value, f"does not apply to {family} models; their fields: "
          f"{', '.join(known)}")
  for name in ("layers", "features"):
    if name not in fields:
      raise checks.FieldError(name, None, f"is required for {family} models")
  f = {**{k: v for k, v in DEFAULTS.items() if k in known}, **record.defaults,
       **fields}
  layers = checks.positive_int("layers", f["layers"])
  if record.two_d and len(hilbert.shape) != 2:
    raise checks.FieldError(
        "hilbert", hilbert,
        f"must have a 2D lattice shape (Lx, Ly) for {family} models")
  if record.masked_widths:
    features = _features(f["features"], layers, hilbert.local_size)
  else:
    features = _widths(f["features"], layers)
  if record.kernel_rank:
    kernel_size, kernel_dilation = _kernels(
        record, layers, f.get("kernel_size"), f["kernel_dilation"])
  else:
    kernel_size = kernel_dilation = ((),) * layers
  if record.residual and len(set(features)) != 1:
    raise checks.FieldError(
        "features", features,
        "must be one width for all layers (the residual stream)")
  heads = 0
  if "heads" in known:
    heads = checks.positive_int("heads", f["heads"])
    for width in features:
      if width % heads:
        raise checks.FieldError(
            "heads", heads, f"must divide the width of every layer, "
            f"{features}")
  precision = f["precision"]
  if precision is not None and not isinstance(precision, (str, jax.lax.Precision)):
    raise checks.FieldError("precision", precision,
                            "must be None, a jax.lax.Precision or a name")
  if f["kernel_init"] is not None and not callable(f["kernel_init"]):
    raise checks.FieldError("kernel_init", f["kernel_init"],
                            "must be None or a JAX initializer")
  if "bias_init" in known and not callable(f["bias_init"]):
    raise checks.FieldError("bias_init", f["bias_init"],
                            "must be a JAX initializer")
  pbc = checks.boolean("pbc", f["pbc"]) if "pbc" in known else False
  first_taps = "shifted"
  if "first_taps" in known:
    first_taps = checks.one_of("first_taps", f["first_taps"],
                               ("shifted", "netket"))
    if first_taps == "netket" and kernel_size[0][0] < 2:
      raise checks.FieldError(
          "kernel_size", kernel_size[0][0],
          "must be >= 2 with first_taps='netket' (its first layer keeps "
          "kernel_size - 1 taps)")
  return ARNNSpec(
      family=family, hilbert=hilbert, features=features,
      kernel_size=kernel_size, kernel_dilation=kernel_dilation,
      activation=_activation(f.get("activation", "selu")),
      use_bias=checks.boolean("use_bias", f.get("use_bias", True)),
      param_dtype=_param_dtype(f["param_dtype"]), precision=precision,
      machine_pow=checks.positive_int("machine_pow", f["machine_pow"]),
      kernel_init=f["kernel_init"], bias_init=f.get("bias_init", nn.zeros),
      fast=checks.boolean("fast", fast), body=record.body,
      order=record.generation_order(hilbert), pbc=pbc, heads=heads,
      first_taps=first_taps, takes=known)


def _gather() -> dict[str, Family]:
  """The records of every module of `zoo.models` that declares `RECORDS`
  (a body module), by family name; a name twice is an error."""
  table = {}
  package = sys.modules[__package__]  # zoo.models, being imported
  for info in pkgutil.iter_modules(package.__path__):
    if info.name == __name__.rpartition(".")[2]:
      continue
    module = importlib.import_module(f"{__package__}.{info.name}")
    for record in getattr(module, "RECORDS", ()):
      if not (isinstance(record.body, type) and issubclass(record.body, Body)):
        raise TypeError(f"family {record.name!r}: its body {record.body!r} "
                        "must be a zoo.models.arnn.Body")
      if record.name in table:
        raise ValueError(f"family {record.name!r} is declared twice "
                         f"(zoo.models.{info.name})")
      table[record.name] = record
  return table


def _constructor(record: Family, fast: bool):
  name = record.fast if fast else record.slow

  def constructor(hilbert: Hilbert, **fields) -> Wavefunction:
    return Wavefunction(make_spec(record.name, hilbert, fast=fast, **fields),
                        name)

  constructor.__name__ = constructor.__qualname__ = name
  constructor.__doc__ = (
      f"{'Fast (cached) ' if fast else ''}autoregressive {record.name} network "
      f"({record.summary}); returns a `Wavefunction`. See the module "
      "docstring for the fields.")
  return constructor


# family name -> its record: the one table of families.
FAMILIES: dict[str, Family] = _gather()
# family name -> (slow constructor, fast twin).
CONSTRUCTORS = {name: (_constructor(r, False), _constructor(r, True))
                for name, r in FAMILIES.items()}
# constructor name -> constructor: `ARNN<title>` and `FastARNN<title>` of
# every record, and the older names a record keeps (`Family.aliases`).
MODELS = {f.__name__: f for pair in CONSTRUCTORS.values() for f in pair}
MODELS.update({alias: f for name, r in FAMILIES.items() if r.aliases
               for alias, f in zip(r.aliases, CONSTRUCTORS[name])})
globals().update(MODELS)
# The fields each family takes besides `hilbert` (and `fast`).
FAMILY_FIELDS = {name: r.fields for name, r in FAMILIES.items()}
# Families whose parameter shapes depend on the number of sites (the others
# share their weights across sites; see zoo.transfer).
SIZE_DEPENDENT = tuple(name for name, r in FAMILIES.items()
                       if r.size_dependent)
# Every field some family takes (a config's `model` section holds those of
# its family, with `family` and `fast`).
FIELDS = tuple(dict.fromkeys(f for fields in FAMILY_FIELDS.values()
                             for f in fields))

# The built-in constructors by name, for readers of the source and the API
# reference (a new family's are in MODELS and re-exported all the same).
ARNNDense = MODELS["ARNNDense"]
"""The dense family's slow twin (full passes),
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
FastARNNDense = MODELS["FastARNNDense"]
"""The dense family's fast (cached) twin,
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
ARNNConv1D = MODELS["ARNNConv1D"]
"""The conv1d family's slow twin (full passes),
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
FastARNNConv1D = MODELS["FastARNNConv1D"]
"""The conv1d family's fast (cached) twin,
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
ARNNConv2D = MODELS["ARNNConv2D"]
"""The conv2d family's slow twin (full passes),
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
FastARNNConv2D = MODELS["FastARNNConv2D"]
"""The conv2d family's fast (cached) twin,
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
ARNNGRU = MODELS["ARNNGRU"]
"""The gru family's slow twin (full passes),
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
FastARNNGRU = MODELS["FastARNNGRU"]
"""The gru family's fast (cached) twin,
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
ARNNTransformer = MODELS["ARNNTransformer"]
"""The transformer family's slow twin (full passes),
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
FastARNNTransformer = MODELS["FastARNNTransformer"]
"""The transformer family's fast (cached) twin,
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
ARNNGatedConv1D = MODELS["ARNNGatedConv1D"]
"""The gated_conv1d family's slow twin (full passes),
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
FastARNNGatedConv1D = MODELS["FastARNNGatedConv1D"]
"""The gated_conv1d family's fast (cached) twin,
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
ARNNGatedConv2D = MODELS["ARNNGatedConv2D"]
"""The gated_conv2d family's slow twin (full passes),
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
FastARNNGatedConv2D = MODELS["FastARNNGatedConv2D"]
"""The gated_conv2d family's fast (cached) twin,
a `Wavefunction` from `(hilbert, **fields)` (the fields: module doc)."""
