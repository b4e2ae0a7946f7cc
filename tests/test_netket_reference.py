"""Our dense and conv2d models reproduce NetKet 3.23 given the same params.

NetKet orders spin-1/2 local states [+1, -1] and we order them [-1, +1], so
the last layer's output columns are reversed when its params are moved over.
"""

import json
import os

from absl.testing import absltest, parameterized
import jax.numpy as jnp
import numpy as np

import zoo

DATA = os.path.join(os.path.dirname(__file__), "data")


def load(name):
  with np.load(os.path.join(DATA, name)) as f:
    return {k: f[k] for k in f.files}


def our_params(ref, module, site_shape):
  """NetKet's flat `_layers_<i>` leaves in our layout."""
  params = {}
  n_layers = len({k.split("/")[1] for k in ref if k.startswith("param/")})
  for i in range(n_layers):
    kernel = ref[f"param/_layers_{i}/kernel"]
    bias = ref[f"param/_layers_{i}/bias"]
    if site_shape is not None:  # dense: (N * Fin, N * Fout) -> (N, Fin, N, Fout)
      n = site_shape
      kernel = kernel.reshape(n, kernel.shape[0] // n, n, kernel.shape[1] // n)
    if i == n_layers - 1:  # output columns in our local-state order
      kernel, bias = kernel[..., ::-1], bias[..., ::-1]
    params[f"{module}/~/layer_{i}"] = {"kernel": jnp.asarray(kernel),
                                       "bias": jnp.asarray(bias)}
  return params


class NetKetReferenceTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("dense", "netket_dense_spinhalf_N6.npz",
       lambda: zoo.ARNNDense(zoo.spin_half(6), layers=2, features=3), "arnn_dense", 6),
      ("fast_dense", "netket_dense_spinhalf_N6.npz",
       lambda: zoo.FastARNNDense(zoo.spin_half(6), layers=2, features=3), "arnn_dense", 6),
      ("conv2d", "netket_conv2d_spinhalf_3x3_k2x3.npz",
       lambda: zoo.ARNNConv2D(zoo.spin_half((3, 3)), layers=2, features=3,
                              kernel_size=(2, 3)), "arnn_conv2d", None),
  )
  def test_same_log_psi_and_conditionals(self, filename, build, module, n_sites):
    ref = load(filename)
    meta = json.loads(str(ref["meta"]))
    self.assertIn("3.23", json.dumps(meta))
    model = build()
    params = our_params(ref, module, n_sites)
    x = ref["x"].astype(np.float64)
    np.testing.assert_allclose(model.log_psi(params, x), ref["log_psi"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.conditionals(params, x)[..., ::-1],
                               ref["conditionals"], rtol=0, atol=1e-12)


if __name__ == "__main__":
  absltest.main()
