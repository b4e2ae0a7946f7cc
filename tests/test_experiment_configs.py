"""The registered VMC experiments: one case per row of EXPERIMENTS.

Nothing here trains; tests/test_launcher.py runs the tiny experiments.
"""

import dataclasses
import os

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from configs import experiments as experiment_configs
from experiments import vmc as launcher
from zoo import build, physics, registry
from zoo.physics import hamiltonians

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = tuple(experiment_configs.EXPERIMENTS)
SECTIONS = ("lattice", "hilbert", "model", "hamiltonian", "optimizer", "vmc",
            "init", "log")


class ExperimentConfigTest(parameterized.TestCase):

  @parameterized.parameters(*NAMES)
  def test_registered_with_every_section(self, name):
    self.assertIn(name, registry.names())
    cfg = registry.get_config(name)
    self.assertEqual(sorted(cfg), sorted(SECTIONS))
    kind = cfg.hamiltonian.kind
    self.assertEqual(set(cfg.hamiltonian),
                     {"kind"} | set(hamiltonians.coupling_fields(kind)))

  @parameterized.parameters(*NAMES)
  def test_one_lattice_for_model_and_hamiltonian(self, name):
    cfg = registry.get_config(name)
    experiment = build.experiment(cfg)
    ham = experiment.hamiltonian
    self.assertEqual(ham.lattice, build.lattice(cfg))
    self.assertEqual(cfg.lattice.pbc,
                     experiment_configs.EXPERIMENTS[name].get("pbc", True))
    # The model's space is the Hamiltonian's, or one S^z sector of it, and
    # the model section alone (as `zoo list` builds it) gives the same.
    self.assertEqual(experiment.model.hilbert,
                     dataclasses.replace(ham.hilbert, total=cfg.hilbert.total))
    self.assertEqual(build.model(cfg).hilbert, experiment.model.hilbert)
    self.assertIsNotNone(physics.reference_for(ham))
    self.assertEqual(experiment.learning_rate(0), cfg.optimizer.learning_rate)
    self.assertEqual(experiment.steps, cfg.vmc.steps)

  @parameterized.parameters(*NAMES)
  def test_tiny_shrinks_the_run(self, name):
    cfg = registry.get_config(f"{name}:tiny=True")
    self.assertLessEqual(np.prod(cfg.lattice.shape), 6)
    self.assertLessEqual(cfg.vmc.steps, 10)
    self.assertLessEqual(cfg.vmc.n_samples, 64)
    experiment = build.experiment(cfg)
    # (A dense model stores its masked kernels whole: 468 on 6 sites.)
    self.assertLessEqual(experiment.model.parameter_count(), 600)
    full = registry.get_config(name)
    self.assertEqual(cfg.hamiltonian.to_dict(), full.hamiltonian.to_dict())
    self.assertEqual((cfg.model.family, cfg.model.fast),
                     (full.model.family, full.model.fast))

  @parameterized.parameters(*NAMES)
  def test_arguments(self, name):
    cfg = registry.get_config(
        f"{name}:L=6,steps=7,samples=64,lr=0.2,diag_shift=0.01,seed=3")
    self.assertIn(tuple(cfg.lattice.shape), ((6,), (6, 6)))
    self.assertEqual((cfg.vmc.steps, cfg.vmc.n_samples, cfg.vmc.seed),
                     (7, 64, 3))
    self.assertEqual(
        cfg.vmc.eval_samples,
        experiment_configs.EXPERIMENTS[name].get("eval_samples")
        or max(4 * 64, experiment_configs.EVAL_SAMPLES))
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
    self.assertAlmostEqual(float(build.experiment(cfg).learning_rate(600)),
                           0.2 * cfg.optimizer.learning_rate)
    for arg, message in (
        ("schedule=sawtooth",
         "optimizer.schedule='sawtooth': must be one of 'constant'"),
        ("final_lr_fraction=1.5",
         r"optimizer.final_lr_fraction=1.5: must be a number in \[0, 1\]"),
        ("samples=0", "vmc.n_samples=0: must be a positive integer")):
      with self.assertRaisesRegex(ValueError, message):
        build.experiment(registry.get_config(f"tfim_chain_fast_dense:{arg}"))

  @parameterized.parameters(*NAMES)
  def test_file_is_the_name(self, name):
    path = os.path.join(ROOT, "configs", "experiments.py")
    self.assertEqual(
        registry.get_config(f"{path}:experiment={name},steps=9").to_dict(),
        registry.get_config(f"{name}:steps=9").to_dict())

  def test_the_issue_systems(self):
    systems = {name: build.hamiltonian(registry.get_config(name))
               for name in NAMES}
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
    self.assertEqual(build.model(registry.get_config(
        "j1j2_square_fast_conv2d")).spec.param_dtype.__name__, "complex128")
    # Each dense row runs the system of its conv twin.
    for name in NAMES:
      if "_fast_dense" in name:
        twin = name.replace("_fast_dense", "_fast_conv2d" if "square" in name
                            else "_fast_conv1d")
        self.assertEqual(systems[name], systems[twin], name)
    self.assertEqual(experiment_configs.DEFAULT, launcher.DEFAULT_CONFIG)
    self.assertEqual(launcher.DEFAULT_CONFIG, "tfim_chain_fast_dense")

  def test_sector(self):
    self.assertIsNone(
        registry.get_config("tfim_chain_fast_dense").hilbert.total)
    cfg = registry.get_config("heisenberg_square_fast_dense:tiny=True")
    self.assertEqual(cfg.hilbert.total, 0)
    self.assertEqual(build.experiment(cfg).model.hilbert.total, 0.0)
    cfg.hilbert.total = 2  # S^z = 1
    self.assertEqual(build.experiment(cfg).model.hilbert.total, 2.0)
    cfg.hilbert.total = None
    self.assertIsNone(build.experiment(cfg).model.hilbert.total)
    # The exact energy is that of the sector.
    ham = build.hamiltonian(cfg)
    e0 = physics.exact_or_reference(ham)
    e1 = physics.exact_or_reference(ham, total=2)
    self.assertEqual(e0.method, "ed")
    self.assertGreater(e1.energy, e0.energy + 1e-6)
    for value, message in (
        (1, r"hilbert.total=1: is not a sum of 4 local states from "
            r"\(-1.0, 1.0\) \(reachable: -4 to 4 in steps of 2\)"),
        (6, r"hilbert.total=6: is not a sum of 4 local states"),
        ("up", r"hilbert.total='up': must be a number or None")):
      cfg.hilbert.total = value
      with self.assertRaisesRegex(ValueError, message):
        build.experiment(cfg)
    tfim = registry.get_config("tfim_chain_fast_dense:tiny=True")
    tfim.hilbert.total = 0
    with self.assertRaisesRegex(
        ValueError, r"hilbert.total=0.0: needs a Hamiltonian that conserves "
        r"S\^z; TransverseFieldIsing does not"):
      build.experiment(tfim)
    tfim.hilbert.total = None
    tfim.hilbert.kind = "spin_one"
    with self.assertRaisesRegex(
        ValueError, r"hilbert.kind='spin_one': must be 'spin_half': "
        r"hamiltonian.kind='tfim' acts on spins 1/2"):
      build.experiment(tfim)

  def test_bad_hamiltonian_fields_are_named(self):
    cfg = registry.get_config("tfim_chain_fast_conv1d")
    cfg.hamiltonian.J2 = 0.5
    with self.assertRaisesRegex(
        ValueError, "hamiltonian.J2=0.5: is not a known field; known: h, J"):
      build.hamiltonian(cfg)
    cfg = registry.get_config("tfim_chain_fast_conv1d")
    cfg.hamiltonian.kind = "hubbard"
    with self.assertRaisesRegex(
        ValueError, "hamiltonian.kind='hubbard': must be one of 'tfim'"):
      build.hamiltonian(cfg)
    cfg = registry.get_config("heisenberg_chain_fast_dense")
    cfg.lattice.shape = (5,)
    with self.assertRaisesRegex(
        ValueError, "hamiltonian.marshall_sign=True: needs a bipartite"):
      build.hamiltonian(cfg)


if __name__ == "__main__":
  absltest.main()
