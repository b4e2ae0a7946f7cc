"""arnn-zoo: fast autoregressive neural-network wavefunctions in dm-haiku.

Importing `zoo` enables float64 in JAX (`jax_enable_x64`): the models default
to float64 parameters, as variational energies need. float32 models keep
float32 throughout.

It also asks XLA for 512-bit vectors on CPUs with AVX-512 (see
`zoo.xla_flags`; ARNN_ZOO_XLA_FLAGS=0 opts out), which speeds up the
element-wise work of sampling by up to ~1.5x.
"""

from zoo import xla_flags

xla_flags.apply()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from zoo.hilbert import Hilbert, fock, spin_half, spin_one  # noqa: E402
from zoo.models import (MODELS, ARNNGRU, ARNNConv1D, ARNNConv2D,  # noqa: E402
                        ARNNDense, ARNNGatedConv1D, ARNNGatedConv2D,
                        ARNNTransformer, FastARNNGRU, FastARNNConv1D,
                        FastARNNConv2D, FastARNNDense, FastARNNGatedConv1D,
                        FastARNNGatedConv2D, FastARNNTransformer, Wavefunction)


def __getattr__(name):
  """A constructor of a family the names above do not list."""
  if name in MODELS:
    return MODELS[name]
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
