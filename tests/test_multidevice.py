"""Sampling and VMC on 4 host devices equal 1 device (in a subprocess).

The device count is fixed when JAX starts, so each check runs in a fresh
process with XLA_FLAGS=--xla_force_host_platform_device_count=4.
"""

import json
import os
import subprocess
import sys

from absl.testing import absltest
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_check(mode):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             JAX_PLATFORMS="cpu")
  proc = subprocess.run(
      [sys.executable, "-m", "tests.multidevice_check", mode], cwd=ROOT, env=env,
      capture_output=True, text=True, timeout=600)
  if proc.returncode:
    raise AssertionError(proc.stderr[-3000:])
  return json.loads(proc.stdout.strip().splitlines()[-1])


class MultiDeviceTest(absltest.TestCase):

  def test_sampling_does_not_depend_on_devices(self):
    out = run_check("sample")
    self.assertEqual(out["n_devices"], 4)
    self.assertTrue(out["same_samples"])
    self.assertIn("batch", out["sharding"])
    self.assertIn("n_samples=30 is not divisible by the 4 devices", out["error"])

  def test_vmc_energies_equal_on_1_and_4_devices(self):
    out = run_check("vmc")
    for solver in ("none", "cholesky"):
      reference = out[f"{solver}_1_None"]
      self.assertLen(reference, 3)
      for key in (f"{solver}_4_None", f"{solver}_4_8"):
        np.testing.assert_allclose(out[key], reference, rtol=0, atol=1e-10, err_msg=key)


if __name__ == "__main__":
  absltest.main()
