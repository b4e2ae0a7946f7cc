"""Sampling and VMC on 4 host devices equal 1 device (in a subprocess).

(The launcher on two devices: tests/test_launcher.py, CommandTest.)

The device count is fixed when JAX starts, so each check runs in a fresh
process with XLA_FLAGS=--xla_force_host_platform_device_count=4.
"""

import json
import os
import socket
import subprocess
import sys

from absl.testing import absltest
import numpy as np
import pytest

from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_check(mode, *args, devices=4):
  env = helpers.subprocess_env(devices)
  proc = subprocess.run(
      [sys.executable, "-m", "tests.multidevice_check", mode, *map(str, args)],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  if proc.returncode:
    raise AssertionError(proc.stderr[-3000:])
  return json.loads(proc.stdout.strip().splitlines()[-1])


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
class MultiDeviceTest(absltest.TestCase):

  def test_sampling_does_not_depend_on_devices(self):
    out = run_check("sample")
    self.assertEqual(out["n_devices"], 4)
    self.assertTrue(out["same_samples"])
    self.assertIn("batch", out["sharding"])
    self.assertIn("n_samples=30: is not divisible by the 4 devices", out["error"])

  def test_vmc_energies_equal_on_1_and_4_devices(self):
    out = run_check("vmc")
    for solver in ("none", "cholesky"):
      reference = out[f"{solver}_1_None"]
      self.assertLen(reference, 3)
      # Plain gradients also in chunks of 8 (SR takes the same chunked
      # local energies).
      key = f"{solver}_4_8" if solver == "none" else f"{solver}_4_None"
      np.testing.assert_allclose(out[key], reference, rtol=0, atol=1e-10,
                                 err_msg=key)

  def test_two_processes_follow_the_single_process_trace(self):
    reference = run_check("process", 0, 1, 0, devices=1)["energy"]
    port = free_port()
    env = helpers.subprocess_env(1)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tests.multidevice_check", "process", str(i), "2",
         str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = []
    for p in procs:
      stdout, stderr = p.communicate(timeout=600)
      self.assertEqual(p.returncode, 0, stderr[-3000:])
      outs.append(json.loads(stdout.strip().splitlines()[-1]))
    self.assertEqual(sorted(o["process_index"] for o in outs), [0, 1])
    for out in outs:
      self.assertEqual(out["n_devices"], 2)
      np.testing.assert_allclose(out["energy"], reference, rtol=0, atol=1e-10)


if __name__ == "__main__":
  absltest.main()
