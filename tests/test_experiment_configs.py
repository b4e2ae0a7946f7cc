"""The registered VMC experiments: one case per row of EXPERIMENTS.

Nothing here trains; tests/test_launcher.py runs the tiny experiments.
"""

import dataclasses
import os
import re

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from configs import experiments as experiment_configs
from experiments import vmc as launcher
from zoo import registry
from zoo.physics import hamiltonians
from zoo.physics import reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = tuple(experiment_configs.EXPERIMENTS)
SECTIONS = ("model", "hamiltonian", "optimizer", "vmc", "log")


class ExperimentConfigTest(parameterized.TestCase):

  @parameterized.parameters(*NAMES)
  def test_registered_with_every_section(self, name):
    self.assertIn(name, registry.names())
    cfg = registry.get_config(name)
    self.assertEqual(tuple(sorted(cfg)), tuple(sorted(SECTIONS)))
    self.assertIsInstance(cfg.model, str)
    kind = cfg.hamiltonian.kind
    self.assertEqual(
        set(cfg.hamiltonian),
        {"kind", "shape", "pbc"} | set(experiment_configs.HAMILTONIAN_FIELDS[
            kind]))

  @parameterized.parameters(*NAMES)
  def test_builds_on_the_hamiltonian_lattice_with_a_reference(self, name):
    cfg = registry.get_config(name)
    experiment = launcher.build(cfg)
    # The model's space is the Hamiltonian's, or one S^z sector of it.
    total_sz = cfg.vmc.total_sz
    self.assertEqual(experiment.model.hilbert,
                     dataclasses.replace(experiment.hamiltonian.hilbert,
                                         total=None if total_sz is None
                                         else 2 * total_sz))
    # The model spec alone (as `zoo list` builds it) has the same lattice,
    # or, for a dense model on a square lattice, its sites in raster order.
    alone = dataclasses.replace(registry.build(cfg).hilbert,
                                total=experiment.model.hilbert.total)
    if "conv" in cfg.model or len(cfg.hamiltonian.shape) == 1:
      self.assertEqual(alone, experiment.hamiltonian.hilbert)
    else:
      self.assertEqual(alone.size, experiment.hamiltonian.hilbert.size)
    self.assertIsNotNone(reference.reference_for(experiment.hamiltonian))
    self.assertEqual(experiment.learning_rate(0),
                     cfg.optimizer.learning_rate)

  @parameterized.parameters(*NAMES)
  def test_tiny_shrinks_the_run(self, name):
    cfg = registry.get_config(f"{name}:tiny=True")
    self.assertLessEqual(np.prod(cfg.hamiltonian.shape), 6)
    self.assertLessEqual(cfg.vmc.steps, 10)
    self.assertLessEqual(cfg.vmc.n_samples, 64)
    experiment = launcher.build(cfg)
    # (A dense model stores its masked kernels whole: 468 on 6 sites.)
    self.assertLessEqual(registry.parameter_count(experiment.model), 600)
    full = registry.get_config(name)
    self.assertEqual(cfg.hamiltonian.kind, full.hamiltonian.kind)
    self.assertEqual(cfg.model.partition(":")[0], full.model.partition(":")[0])

  @parameterized.parameters(*NAMES)
  def test_arguments(self, name):
    cfg = registry.get_config(
        f"{name}:L=6,steps=7,samples=64,lr=0.2,diag_shift=0.01,seed=3")
    self.assertIn(tuple(cfg.hamiltonian.shape), ((6,), (6, 6)))
    square_dense = (len(cfg.hamiltonian.shape) == 2
                    and "conv" not in cfg.model)
    sites = 36 if square_dense else 6
    self.assertIn(f"L={sites},", cfg.model + ",")
    self.assertEqual((cfg.vmc.steps, cfg.vmc.n_samples, cfg.vmc.seed),
                     (7, 64, 3))
    self.assertEqual(cfg.vmc.eval_samples,
                     max(4 * 64, experiment_configs.EVAL_SAMPLES))
    self.assertEqual(
        registry.get_config(f"{name}:tiny=True").vmc.eval_samples,
        4 * experiment_configs.TINY_SAMPLES)
    self.assertEqual(cfg.optimizer.learning_rate, 0.2)
    self.assertEqual(cfg.optimizer.sr.diag_shift, 0.01)
    with self.assertRaisesRegex(ValueError, "unknown argument 'stepz'"):
      registry.get_config(f"{name}:stepz=3")

  def test_schedule_arguments(self):
    # A row's schedule is an argument default; others stay constant.
    self.assertEqual(
        registry.get_config("tfim_chain_fast_dense").optimizer.schedule,
        "cosine")
    self.assertEqual(
        registry.get_config("tfim_square_fast_dense").optimizer.schedule,
        "constant")
    cfg = registry.get_config(
        "tfim_square_fast_dense:schedule=warmup_cosine,final_lr_fraction=0.2")
    self.assertEqual((cfg.optimizer.schedule, cfg.optimizer.final_lr_fraction),
                     ("warmup_cosine", 0.2))
    with self.assertRaisesRegex(ValueError, "schedule='sawtooth' is not one"):
      registry.get_config("tfim_chain_fast_dense:schedule=sawtooth")
    with self.assertRaisesRegex(ValueError, "final_lr_fraction=1.5 must be"):
      registry.get_config("tfim_chain_fast_dense:final_lr_fraction=1.5")

  @parameterized.parameters(*NAMES)
  def test_file_is_the_name(self, name):
    path = os.path.join(ROOT, "configs", "experiments.py")
    self.assertEqual(
        registry.get_config(f"{path}:experiment={name},steps=9").to_dict(),
        registry.get_config(f"{name}:steps=9").to_dict())

  def test_the_issue_systems(self):
    systems = {}
    for name in NAMES:
      ham = launcher.build_hamiltonian(registry.get_config(name).hamiltonian)
      systems[name] = ham
    tfim = systems["tfim_chain_fast_conv1d"]
    self.assertIsInstance(tfim, hamiltonians.TransverseFieldIsing)
    self.assertEqual((tfim.lattice.shape, tfim.lattice.pbc, tfim.h),
                     ((20,), True, 1.0))
    heisenberg = systems["heisenberg_chain_fast_conv1d"]
    self.assertEqual((type(heisenberg), heisenberg.lattice.shape,
                      heisenberg.marshall_sign),
                     (hamiltonians.Heisenberg, (20,), True))
    square = systems["heisenberg_square_fast_conv2d"]
    self.assertEqual((type(square), square.lattice.shape, square.lattice.pbc,
                      square.marshall_sign),
                     (hamiltonians.Heisenberg, (4, 4), True, True))
    tfim_2d = systems["tfim_square_fast_conv2d"]
    self.assertEqual((tfim_2d.lattice.shape, tfim_2d.h), ((4, 4), 3.04))
    j1j2 = systems["j1j2_square_fast_conv2d"]
    self.assertEqual((type(j1j2), j1j2.lattice.shape, j1j2.J2),
                     (hamiltonians.J1J2, (4, 4), 0.5))
    self.assertTrue(re.search(
        "complex", registry.build(registry.get_config(
            "j1j2_square_fast_conv2d")).spec.param_dtype.__name__))
    # Each dense row runs the system of its conv twin.
    for name in NAMES:
      if "_fast_dense" in name:
        twin = name.replace("_fast_dense", "_fast_conv2d" if "square" in name
                            else "_fast_conv1d")
        self.assertEqual(
            registry.get_config(name).hamiltonian.to_dict(),
            registry.get_config(twin).hamiltonian.to_dict(), name)
        self.assertEqual(systems[name].lattice.shape,
                         systems[twin].lattice.shape)
    self.assertEqual(experiment_configs.DEFAULT, launcher.DEFAULT_CONFIG)
    self.assertEqual(launcher.DEFAULT_CONFIG, "tfim_chain_fast_dense")

  def test_sector(self):
    self.assertIsNone(registry.get_config("tfim_chain_fast_dense").vmc.total_sz)
    cfg = registry.get_config("heisenberg_square_fast_dense:tiny=True")
    self.assertEqual(cfg.vmc.total_sz, 0)
    model = launcher.build(cfg).model
    self.assertEqual(model.hilbert.total, 0.0)
    cfg.vmc.total_sz = 1
    self.assertEqual(launcher.build(cfg).model.hilbert.total, 2.0)
    cfg.vmc.total_sz = None
    self.assertIsNone(launcher.build(cfg).model.hilbert.total)
    # The exact energy is that of the sector.
    ham = launcher.build(cfg).hamiltonian
    e0, method = launcher.exact_energy(ham)
    e1, _ = launcher.exact_energy(ham, total_sz=1)
    self.assertEqual(method, "ed")
    self.assertGreater(e1, e0 + 1e-6)
    for value, message in (
        (0.5, r"vmc.total_sz=0.5 is not the total S\^z of any configuration "
              r"of 4 spins 1/2 \(-2 to 2 in steps of 1\)"),
        (3, r"vmc.total_sz=3 is not the total S\^z"),
        ("up", r"vmc.total_sz='up' must be None or a number")):
      cfg.vmc.total_sz = value
      with self.assertRaisesRegex(ValueError, message):
        launcher.build(cfg)
    tfim = registry.get_config("tfim_chain_fast_dense:tiny=True")
    tfim.vmc.total_sz = 0
    with self.assertRaisesRegex(
        ValueError, r"vmc.total_sz=0 needs a Hamiltonian that conserves "
        r"S\^z; hamiltonian.kind='tfim' does not"):
      launcher.build(tfim)

  def test_bad_hamiltonian_fields_are_named(self):
    cfg = registry.get_config("tfim_chain_fast_conv1d")
    cfg.hamiltonian.J2 = 0.5
    with self.assertRaisesRegex(
        ValueError, "hamiltonian.J2 does not apply to kind='tfim'"):
      launcher.build_hamiltonian(cfg.hamiltonian)
    cfg = registry.get_config("tfim_chain_fast_conv1d")
    cfg.hamiltonian.kind = "hubbard"
    with self.assertRaisesRegex(ValueError, "hamiltonian.kind='hubbard'"):
      launcher.build_hamiltonian(cfg.hamiltonian)


if __name__ == "__main__":
  absltest.main()
