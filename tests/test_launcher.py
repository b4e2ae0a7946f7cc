"""The VMC launcher: files, checkpoints, resuming, guards, the command.

Every run is a tiny experiment (`tiny=True`: 6 sites, a few features, 32
samples, 6 steps), so the cost is mostly compilation.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
import chex
import jax
import numpy as np

from experiments import vmc as launcher
from zoo import registry
from zoo import vmc
from zoo.physics import exact

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = "tfim_chain_fast_conv1d:tiny=True"
# metrics.jsonl fields that depend on the trajectory (wall_s does not).
TRAJECTORY_METRICS = ("step", "energy", "error", "variance", "grad_norm",
                      "update_norm", "learning_rate", "relative_error")


def tiny_config(**log):
  """The tiny default experiment: 6 steps, a read and a checkpoint every 2."""
  cfg = registry.get_config(TINY)
  cfg.log.update(log)
  return cfg


def trajectory(rows):
  return [{k: row[k] for k in TRAJECTORY_METRICS} for row in rows]


def assert_metrics_close(test, rows, expected):
  test.assertEqual([r["step"] for r in rows], [r["step"] for r in expected])
  for row, want in zip(trajectory(rows), trajectory(expected)):
    for key in TRAJECTORY_METRICS:
      np.testing.assert_allclose(row[key], want[key], rtol=1e-12, atol=1e-12,
                                 err_msg=f"{key} at step {row['step']}")


class LauncherTestCase(absltest.TestCase):
  """Keeps the exact-energy cache in a temporary directory."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._class_dir = tempfile.mkdtemp(prefix=f"{cls.__name__}-")
    cls._environ = mock.patch.dict(
        os.environ, {exact.CACHE_ENV_VAR: os.path.join(cls._class_dir, "ed")})
    cls._environ.start()

  @classmethod
  def tearDownClass(cls):
    cls._environ.stop()
    shutil.rmtree(cls._class_dir, ignore_errors=True)
    super().tearDownClass()


class TrainedRunTest(LauncherTestCase):
  """One uninterrupted tiny run, shared by the tests of its files."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.cfg = tiny_config(keep_checkpoints=2)
    cls.workdir = os.path.join(cls._class_dir, "run")
    cls.result = launcher.train(cls.cfg, cls.workdir)

  def test_files(self):
    with open(os.path.join(self.workdir, launcher.CONFIG_FILE)) as f:
      self.assertEqual(registry.config_from_json(f.read()).to_dict(),
                       self.cfg.to_dict())
    rows = launcher.read_metrics(
        os.path.join(self.workdir, launcher.METRICS_FILE))
    self.assertEqual([r["step"] for r in rows], list(range(6)))
    for row in rows:
      self.assertEqual(tuple(row), launcher.METRIC_FIELDS)
      self.assertTrue(all(np.isfinite(v) for v in row.values()))
    self.assertEqual([r["wall_s"] for r in rows],
                     sorted(r["wall_s"] for r in rows))
    with open(os.path.join(self.workdir, launcher.PLOT_FILE), "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    with open(os.path.join(self.workdir, launcher.RESULT_FILE)) as f:
      record = json.load(f)
    self.assertEqual(record["summary"], self.result.summary())
    self.assertEqual(record["steps"], 6)

  def test_result(self):
    result = self.result
    self.assertEqual(int(result.state.step), 6)
    self.assertEqual(result.exact_method, "ed")
    self.assertAlmostEqual(
        result.exact, exact.ground_state_energy(
            launcher.build_hamiltonian(self.cfg.hamiltonian)), places=10)
    self.assertAlmostEqual(
        result.relative_error,
        abs(result.energy - result.exact) / abs(result.exact))
    self.assertGreater(result.error, 0)
    self.assertRegex(
        result.summary(),
        r"E = -\d+\.\d+ \+- .*exact = .* \(ed\)  relative error = ")

  def test_checkpoint_round_trip(self):
    (_, newest), = launcher.checkpoints(self.workdir)[-1:]
    loaded = launcher.load_checkpoint(newest, self.result.state)
    chex.assert_trees_all_equal(
        jax.random.key_data(loaded.key), jax.random.key_data(
            self.result.state.key))
    chex.assert_trees_all_equal(loaded._replace(key=None),
                                self.result.state._replace(key=None))
    chex.assert_trees_all_equal_dtypes(loaded._replace(key=None),
                                       self.result.state._replace(key=None))

  def test_keeps_the_last_k_checkpoints(self):
    self.assertEqual([step for step, _ in launcher.checkpoints(self.workdir)],
                     [4, 6])

  def test_resume_is_the_uninterrupted_run(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    cfg = tiny_config(keep_checkpoints=2)
    stopped = launcher.train(cfg, workdir, stop_after=2)
    self.assertEqual(int(stopped.state.step), 2)
    launcher.train(cfg, workdir, stop_after=4)
    # As if killed after step 5 was logged but before its checkpoint: the
    # newest checkpoint is step 2, metrics run ahead and end in a torn line.
    os.unlink(launcher.checkpoint_path(workdir, 4))
    metrics = os.path.join(workdir, launcher.METRICS_FILE)
    with open(metrics, "a") as f:
      f.write('{"step": 4, "energy": -1.0}\n{"step": 5, "ene')
    result = launcher.train(cfg, workdir)

    chex.assert_trees_all_close(result.state.params, self.result.state.params,
                                rtol=1e-12, atol=1e-12)
    chex.assert_trees_all_close(result.state.opt_state,
                                self.result.state.opt_state,
                                rtol=1e-12, atol=1e-12)
    chex.assert_trees_all_equal(jax.random.key_data(result.state.key),
                                jax.random.key_data(self.result.state.key))
    assert_metrics_close(
        self, launcher.read_metrics(metrics), launcher.read_metrics(
            os.path.join(self.workdir, launcher.METRICS_FILE)))
    self.assertAlmostEqual(result.energy, self.result.energy, places=12)

  def test_atomic_save_survives_a_crash(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    state = self.result.state
    first = launcher.save_checkpoint(workdir, state)
    later = state._replace(step=state.step + 1,
                           params=jax.tree.map(lambda p: p + 1, state.params))
    with mock.patch.object(os, "replace", side_effect=OSError("disk gone")):
      with self.assertRaisesRegex(OSError, "disk gone"):
        launcher.save_checkpoint(workdir, later)
    self.assertEqual(os.listdir(workdir), [os.path.basename(first)])
    loaded = launcher.load_checkpoint(first, state)
    chex.assert_trees_all_equal(loaded.params, state.params)

  def test_never_saves_a_non_finite_state(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    state = self.result.state
    bad = state._replace(params=jax.tree.map(lambda p: p * np.nan,
                                             state.params))
    with self.assertRaisesRegex(FloatingPointError, "non-finite"):
      launcher.save_checkpoint(workdir, bad)
    self.assertEqual(os.listdir(workdir), [])


class GuardTest(LauncherTestCase):

  def test_stops_on_a_non_finite_energy_keeping_the_last_good_checkpoint(self):
    make_vmc = vmc.make_vmc

    def poisoned_make_vmc(*args, **kwargs):
      """Steps from 5 on give NaN energies and parameters."""
      real = make_vmc(*args, **kwargs)

      def run(state, n_steps):
        new_state, stats = real.run(state, n_steps)
        steps = int(state.step) + np.arange(n_steps)
        poison = np.where(steps >= 5, np.nan, 0.0)
        new_state = new_state._replace(params=jax.tree.map(
            lambda p: p + poison[-1], new_state.params))
        return new_state, stats._replace(energy=stats.energy + poison)

      return real._replace(run=run)

    workdir = tempfile.mkdtemp(dir=self._class_dir)
    with mock.patch.object(vmc, "make_vmc", poisoned_make_vmc):
      with self.assertRaisesRegex(
          FloatingPointError,
          r"non-finite statistics at step 5: energy=nan.*checkpoint_00000004"):
        launcher.train(tiny_config(), workdir)
    self.assertEqual([s for s, _ in launcher.checkpoints(workdir)], [2, 4])
    like = jax.eval_shape(launcher.build(tiny_config()).vmc.init,
                          jax.random.key(0))
    good = launcher.load_checkpoint(launcher.checkpoint_path(workdir, 4), like)
    chex.assert_tree_all_finite(good.params)
    rows = launcher.read_metrics(os.path.join(workdir, launcher.METRICS_FILE))
    self.assertEqual([r["step"] for r in rows], [0, 1, 2, 3, 4])


class WorkdirTest(LauncherTestCase):

  def test_refuses_a_different_config_unless_overwrite(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    cfg = tiny_config()
    launcher.prepare_workdir(cfg, workdir, overwrite=False)
    with open(os.path.join(workdir, launcher.METRICS_FILE), "w") as f:
      f.write('{"step": 0}\n')
    other = tiny_config()
    other.optimizer.learning_rate = 0.5
    with self.assertRaisesRegex(
        launcher.WorkdirError,
        r"optimizer.learning_rate: 0.05 -> 0.5(.|\n)*--overwrite"):
      launcher.prepare_workdir(other, workdir, overwrite=False)

    launcher.prepare_workdir(other, workdir, overwrite=True)
    (previous,) = [n for n in os.listdir(workdir) if n.startswith("previous-")]
    with open(os.path.join(workdir, previous, launcher.CONFIG_FILE)) as f:
      self.assertEqual(registry.config_from_json(f.read()).to_dict(),
                       cfg.to_dict())
    self.assertTrue(os.path.exists(
        os.path.join(workdir, previous, launcher.METRICS_FILE)))
    self.assertFalse(os.path.exists(
        os.path.join(workdir, launcher.METRICS_FILE)))
    with open(os.path.join(workdir, launcher.CONFIG_FILE)) as f:
      self.assertEqual(registry.config_from_json(f.read()).to_dict(),
                       other.to_dict())

  def test_accepts_fields_that_keep_the_trajectory(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    launcher.prepare_workdir(tiny_config(), workdir, overwrite=False)
    cfg = tiny_config(every_k=3, checkpoint_every=6, keep_checkpoints=5)
    cfg.vmc.eval_samples = 1000
    cfg.vmc.steps = 60  # A constant rate: a longer run, the same trajectory.
    launcher.prepare_workdir(cfg, workdir, overwrite=False)
    cfg.optimizer.schedule = "cosine"  # Now the steps shape the schedule.
    with self.assertRaisesRegex(launcher.WorkdirError, "optimizer.schedule"):
      launcher.prepare_workdir(cfg, workdir, overwrite=False)

  def test_refuses_run_files_without_a_config(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    with open(os.path.join(workdir, launcher.METRICS_FILE), "w") as f:
      f.write("")
    with self.assertRaisesRegex(launcher.WorkdirError, "no config.json"):
      launcher.prepare_workdir(tiny_config(), workdir, overwrite=False)

  def test_bad_fields_are_named(self):
    cfg = tiny_config(checkpoint_every=3)
    with self.assertRaisesRegex(
        ValueError, "log.checkpoint_every=3 must be a multiple of "
        "log.every_k=2"):
      launcher.train(cfg, tempfile.mkdtemp(dir=self._class_dir))
    cfg = tiny_config()
    cfg.optimizer.schedule = "sawtooth"
    with self.assertRaisesRegex(ValueError, "optimizer.schedule='sawtooth'"):
      launcher.train(cfg, tempfile.mkdtemp(dir=self._class_dir))


class CommandTest(LauncherTestCase):

  def _command(self, *args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "experiments.vmc", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300)

  def test_end_to_end(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    done = self._command(f"--config={TINY}", f"--workdir={workdir}",
                         "--config.vmc.steps=4")
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    summary = done.stdout.strip().splitlines()[-1]
    self.assertRegex(summary, r"^E = -\d+\.\d+ \+- \S+ \(128 samples after 4 "
                     r"steps\)  exact = -\d+\.\d+ \(ed\)  relative error = ")
    self.assertIn("steps/s", done.stderr)
    self.assertIn("ETA", done.stderr)
    with open(os.path.join(workdir, launcher.CONFIG_FILE)) as f:
      self.assertEqual(registry.config_from_json(f.read()).vmc.steps, 4)
    rows = launcher.read_metrics(os.path.join(workdir, launcher.METRICS_FILE))
    self.assertEqual([r["step"] for r in rows], [0, 1, 2, 3])
    self.assertTrue(os.path.exists(os.path.join(workdir, launcher.PLOT_FILE)))

    # Another config in the same workdir is refused, naming the field.
    refused = self._command(f"--config={TINY}", f"--workdir={workdir}",
                            "--config.vmc.seed=1")
    self.assertNotEqual(refused.returncode, 0)
    self.assertIn("vmc.seed: 0 -> 1", refused.stderr)
    self.assertIn("--overwrite", refused.stderr)

  def test_config_name(self):
    self.assertEqual(launcher.config_name("tfim_chain_fast_conv1d:tiny=True"),
                     "tfim_chain_fast_conv1d")
    self.assertEqual(launcher.config_name("configs/experiments.py:steps=3"),
                     "experiments")


if __name__ == "__main__":
  absltest.main()
