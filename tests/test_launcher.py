"""The VMC launcher: files, checkpoints, resuming, guards, the command.

Every run is a tiny experiment (`tiny=True`: 6 sites, a few features, 32
samples, 6 steps), so the cost is mostly compilation. The command's tests
run it in subprocesses and are marked slow.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from unittest import mock

from absl.testing import absltest
import chex
import jax
import numpy as np
import pytest

from experiments import vmc as launcher
from experiments import workdir as workdir_lib
from zoo import build, config_tools, registry
from zoo import vmc
from zoo.physics import exact

from tests import helpers

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


def read_json(path):
  with open(path) as f:
    return json.load(f)


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


@pytest.mark.slow  # a whole tiny run and its files
class TrainedRunTest(LauncherTestCase):
  """One uninterrupted tiny run, shared by the tests of its files."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.cfg = tiny_config(keep_checkpoints=2)
    cls.workdir = os.path.join(cls._class_dir, "run")
    cls.result = launcher.train(cls.cfg, cls.workdir)

  def test_files(self):
    with open(os.path.join(self.workdir, workdir_lib.CONFIG_FILE)) as f:
      self.assertEqual(config_tools.config_from_json(f.read()).to_dict(),
                       self.cfg.to_dict())
    rows = workdir_lib.read_metrics(
        os.path.join(self.workdir, workdir_lib.METRICS_FILE))
    self.assertEqual([r["step"] for r in rows], list(range(6)))
    for row in rows:
      self.assertEqual(tuple(row), launcher.METRIC_FIELDS)
      self.assertTrue(all(np.isfinite(v) for v in row.values()))
    self.assertEqual([r["wall_s"] for r in rows],
                     sorted(r["wall_s"] for r in rows))
    with open(os.path.join(self.workdir, workdir_lib.PLOT_FILE), "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    record = read_json(os.path.join(self.workdir, workdir_lib.RESULT_FILE))
    self.assertEqual(record["summary"], self.result.summary())
    self.assertEqual(record["steps"], 6)

  def test_result(self):
    result = self.result
    self.assertEqual(int(result.state.step), 6)
    self.assertEqual(result.exact_method, "ed")
    self.assertAlmostEqual(
        result.exact, exact.ground_state_energy(build.hamiltonian(self.cfg)),
        places=10)
    self.assertAlmostEqual(
        result.relative_error,
        abs(result.energy - result.exact) / abs(result.exact))
    self.assertGreater(result.error, 0)
    self.assertRegex(
        result.summary(),
        r"E = -\d+\.\d+ \+- .*exact = .* \(ed\)  relative error = ")

  def test_checkpoint_round_trip(self):
    (_, newest), = workdir_lib.checkpoints(self.workdir)[-1:]
    loaded = workdir_lib.load_checkpoint(newest, self.result.state)
    chex.assert_trees_all_equal(
        jax.random.key_data(loaded.key), jax.random.key_data(
            self.result.state.key))
    chex.assert_trees_all_equal(loaded._replace(key=None),
                                self.result.state._replace(key=None))
    chex.assert_trees_all_equal_dtypes(loaded._replace(key=None),
                                       self.result.state._replace(key=None))

  def test_checkpoint_keys_are_tree_paths(self):
    (_, newest), = workdir_lib.checkpoints(self.workdir)[-1:]
    with np.load(newest) as data:
      names = set(data.files)
    self.assertIn(".params['arnn_conv1d/~/layer_0']['kernel']", names)
    self.assertIn(".key", names)
    self.assertIn(".step", names)

  def test_another_tree_is_refused_naming_the_path(self):
    (_, newest), = workdir_lib.checkpoints(self.workdir)[-1:]
    state = self.result.state
    # Layers 0 and 1 have biases of one shape: a file read by position
    # would restore a renamed layer silently into the wrong leaves.
    params = dict(state.params)
    params["arnn_conv1d/~/layer_x"] = params.pop("arnn_conv1d/~/layer_1")
    with self.assertRaisesRegex(
        workdir_lib.CheckpointMismatch,
        r"has no array \.params\['arnn_conv1d/~/layer_x'\]\['bias'\]"):
      workdir_lib.load_checkpoint(newest, state._replace(params=params))
    params = dict(state.params)
    params["arnn_conv1d/~/layer_0"] = dict(
        params["arnn_conv1d/~/layer_0"],
        bias=params["arnn_conv1d/~/layer_0"]["bias"][:1])
    with self.assertRaisesRegex(
        workdir_lib.CheckpointMismatch,
        r"\.params\['arnn_conv1d/~/layer_0'\]\['bias'\] has shape \(4,\) "
        r"and dtype float64; expected \(1,\) float64"):
      workdir_lib.load_checkpoint(newest, state._replace(params=params))
    with self.assertRaises(workdir_lib.CheckpointMismatch):
      workdir_lib.resume(self.workdir, state._replace(params=params))

  def test_keeps_the_last_k_checkpoints(self):
    self.assertEqual([s for s, _ in workdir_lib.checkpoints(self.workdir)],
                     [4, 6])

  def test_resume_is_the_uninterrupted_run(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    cfg = tiny_config(keep_checkpoints=2)
    stopped = launcher.train(cfg, workdir, stop_after=2)
    self.assertEqual(int(stopped.state.step), 2)
    launcher.train(cfg, workdir, stop_after=4)
    # As if killed after step 5 was logged but before its checkpoint: the
    # newest checkpoint is step 2, metrics run ahead and end in a torn line.
    os.unlink(workdir_lib.checkpoint_path(workdir, 4))
    metrics = os.path.join(workdir, workdir_lib.METRICS_FILE)
    with open(metrics, "a") as f:
      f.write('{"step": 4, "energy": -1.0}\n{"step": 5, "ene')
    result = launcher.train(cfg, workdir)

    # Bit for bit.
    chex.assert_trees_all_equal(result.state.params, self.result.state.params)
    chex.assert_trees_all_equal(result.state.opt_state,
                                self.result.state.opt_state)
    chex.assert_trees_all_equal(jax.random.key_data(result.state.key),
                                jax.random.key_data(self.result.state.key))
    self.assertEqual(
        trajectory(workdir_lib.read_metrics(metrics)),
        trajectory(workdir_lib.read_metrics(
            os.path.join(self.workdir, workdir_lib.METRICS_FILE))))
    self.assertEqual(result.energy, self.result.energy)

  def test_atomic_save_survives_a_crash(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    state = self.result.state
    first = workdir_lib.save_checkpoint(workdir, state)
    later = state._replace(step=state.step + 1,
                           params=jax.tree.map(lambda p: p + 1, state.params))
    with mock.patch.object(os, "replace", side_effect=OSError("disk gone")):
      with self.assertRaisesRegex(OSError, "disk gone"):
        workdir_lib.save_checkpoint(workdir, later)
    self.assertEqual(os.listdir(workdir), [os.path.basename(first)])
    loaded = workdir_lib.load_checkpoint(first, state)
    chex.assert_trees_all_equal(loaded.params, state.params)

  def test_never_saves_a_non_finite_state(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    state = self.result.state
    bad = state._replace(params=jax.tree.map(lambda p: p * np.nan,
                                             state.params))
    with self.assertRaisesRegex(FloatingPointError, r"\.params\[.* non-finite"):
      workdir_lib.save_checkpoint(workdir, bad)
    self.assertEqual(os.listdir(workdir), [])


class GuardTest(LauncherTestCase):

  def test_stops_on_a_non_finite_energy_keeping_the_last_good_checkpoint(self):
    make_vmc = vmc.make_vmc

    def poisoned_make_vmc(*args, **kwargs):
      """Steps from 5 on give NaN energies and parameters."""
      real = make_vmc(*args, **kwargs)

      def run(state, n_steps, length=None):
        new_state, stats = real.run(state, n_steps, length)
        steps = int(state.step) + np.arange(len(stats.energy))
        poison = np.where(steps >= 5, np.nan, 0.0)
        new_state = new_state._replace(params=jax.tree.map(
            lambda p: p + poison[n_steps - 1], new_state.params))
        return new_state, stats._replace(energy=stats.energy + poison)

      return real._replace(run=run)

    workdir = tempfile.mkdtemp(dir=self._class_dir)
    with mock.patch.object(vmc, "make_vmc", poisoned_make_vmc):
      with self.assertRaisesRegex(
          FloatingPointError,
          r"non-finite statistics at step 5: energy=nan.*checkpoint_00000004"):
        launcher.train(tiny_config(), workdir)
    self.assertEqual([s for s, _ in workdir_lib.checkpoints(workdir)], [2, 4])
    like = jax.eval_shape(build.experiment(tiny_config()).vmc.init,
                          jax.random.key(0))
    good = workdir_lib.load_checkpoint(
        workdir_lib.checkpoint_path(workdir, 4), like)
    chex.assert_tree_all_finite(good.params)
    rows = workdir_lib.read_metrics(
        os.path.join(workdir, workdir_lib.METRICS_FILE))
    self.assertEqual([r["step"] for r in rows], [0, 1, 2, 3, 4])


class WorkdirTest(LauncherTestCase):

  def test_refuses_a_different_config_unless_overwrite(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    cfg = tiny_config()
    workdir_lib.prepare(cfg, workdir, overwrite=False)
    with open(os.path.join(workdir, workdir_lib.METRICS_FILE), "w") as f:
      f.write('{"step": 0}\n')
    other = tiny_config()
    other.optimizer.learning_rate = 0.5
    with self.assertRaisesRegex(
        workdir_lib.WorkdirError,
        r"optimizer.learning_rate: 0.05 -> 0.5(.|\n)*--overwrite"):
      workdir_lib.prepare(other, workdir, overwrite=False)

    workdir_lib.prepare(other, workdir, overwrite=True)
    (previous,) = [n for n in os.listdir(workdir) if n.startswith("previous-")]
    with open(os.path.join(workdir, previous, workdir_lib.CONFIG_FILE)) as f:
      self.assertEqual(config_tools.config_from_json(f.read()).to_dict(),
                       cfg.to_dict())
    self.assertTrue(os.path.exists(
        os.path.join(workdir, previous, workdir_lib.METRICS_FILE)))
    self.assertFalse(os.path.exists(
        os.path.join(workdir, workdir_lib.METRICS_FILE)))
    with open(os.path.join(workdir, workdir_lib.CONFIG_FILE)) as f:
      self.assertEqual(config_tools.config_from_json(f.read()).to_dict(),
                       other.to_dict())

  def test_accepts_fields_that_keep_the_trajectory(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    workdir_lib.prepare(tiny_config(), workdir, overwrite=False)
    cfg = tiny_config(every_k=3, checkpoint_every=6, keep_checkpoints=5)
    cfg.vmc.eval_samples = 1000
    cfg.vmc.steps = 60  # A constant rate: a longer run, the same trajectory.
    workdir_lib.prepare(cfg, workdir, overwrite=False)
    cfg.optimizer.schedule = "cosine"  # Now the steps shape the schedule.
    with self.assertRaisesRegex(workdir_lib.WorkdirError,
                                "optimizer.schedule"):
      workdir_lib.prepare(cfg, workdir, overwrite=False)

  def test_refuses_run_files_without_a_config(self):
    workdir = tempfile.mkdtemp(dir=self._class_dir)
    with open(os.path.join(workdir, workdir_lib.METRICS_FILE), "w") as f:
      f.write("")
    with self.assertRaisesRegex(workdir_lib.WorkdirError, "no config.json"):
      workdir_lib.prepare(tiny_config(), workdir, overwrite=False)

  def test_bad_fields_are_named_before_anything_is_written(self):
    for field, value, message in (
        ("log.checkpoint_every", 3, "log.checkpoint_every=3: must be a "
         "multiple of log.every_k=2"),
        ("log.every_k", 0, "log.every_k=0: must be a positive integer"),
        ("optimizer.schedule", "sawtooth",
         "optimizer.schedule='sawtooth': must be one of"),
        ("vmc.chunk_size", -1, "vmc.chunk_size=-1: must be an integer >= 0"),
        ("optimizer.sr.solver", "lu", "optimizer.sr.solver='lu': must be"),
    ):
      cfg = tiny_config()
      section, name = field.rsplit(".", 1)
      target = cfg
      for part in section.split("."):
        target = target[part]
      target[name] = value
      workdir = os.path.join(self._class_dir, f"bad-{field}")
      with self.assertRaisesRegex(ValueError, message):
        launcher.train(cfg, workdir)
      self.assertFalse(os.path.exists(workdir), field)


def run_command(*args, timeout=300, devices=None):
  env = helpers.subprocess_env(devices)
  return subprocess.run(
      [sys.executable, "-m", "experiments.vmc", *args], cwd=ROOT, env=env,
      capture_output=True, text=True, timeout=timeout)


def metrics_of(workdir):
  return trajectory(workdir_lib.read_metrics(
      os.path.join(workdir, workdir_lib.METRICS_FILE)))


@pytest.mark.slow
class CommandTest(LauncherTestCase):
  """The command end to end, in subprocesses: one run that the others (two
  devices, a run killed with SIGKILL and resumed) must follow."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.workdir = os.path.join(cls._class_dir, "reference")
    cls.done = run_command(f"--config={TINY}", f"--workdir={cls.workdir}",
                           "--config.vmc.steps=4")

  def test_end_to_end(self):
    done = self.done
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    summary = done.stdout.strip().splitlines()[-1]
    self.assertRegex(summary, r"^E = -\d+\.\d+ \+- \S+ \(128 samples after 4 "
                     r"steps\)  exact = -\d+\.\d+ \(ed\)  relative error = ")
    self.assertIn("steps/s", done.stderr)
    self.assertIn("ETA", done.stderr)
    self.assertIn("1 devices in all", done.stderr)
    # The start says what a user needs, without JAX's search for a TPU or
    # matplotlib's font cache (`experiments.quiet_libraries`).
    self.assertRegex(done.stderr, r"Model FastARNNConv1D\(.*\): \d+ parameters")
    self.assertIn("Exact energy (ed): ", done.stderr)
    self.assertIn(f"Starting a new run in {self.workdir}", done.stderr)
    self.assertNotIn("Unable to initialize backend", done.stderr)
    self.assertNotIn("fontManager", done.stderr)
    with open(os.path.join(self.workdir, workdir_lib.CONFIG_FILE)) as f:
      self.assertEqual(config_tools.config_from_json(f.read()).vmc.steps, 4)
    self.assertEqual([r["step"] for r in metrics_of(self.workdir)],
                     [0, 1, 2, 3])
    self.assertTrue(os.path.exists(
        os.path.join(self.workdir, workdir_lib.PLOT_FILE)))

  def test_another_config_is_refused(self):
    refused = run_command(f"--config={TINY}", f"--workdir={self.workdir}",
                          "--config.vmc.steps=4", "--config.vmc.seed=1")
    self.assertEqual(refused.returncode, 1)
    self.assertIn("error: ", refused.stderr)
    self.assertIn("vmc.seed: 0 -> 1", refused.stderr)
    self.assertIn("--overwrite", refused.stderr)
    self.assertNotIn("Traceback", refused.stderr)

  def test_two_devices_follow_one(self):
    workdir = os.path.join(self._class_dir, "two_devices")
    done = run_command(f"--config={TINY}", f"--workdir={workdir}",
                       "--config.vmc.steps=4", "--cpu_devices=2", devices=2)
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn("2 devices in all", done.stderr)
    one = [r["energy"] for r in metrics_of(self.workdir)]
    two = [r["energy"] for r in metrics_of(workdir)]
    self.assertLen(two, 4)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-10)

  def test_killed_and_resumed_is_the_uninterrupted_run(self):
    """SIGKILL mid-run, rerun: the metrics and result equal, bit for bit, a
    run that was never stopped."""
    steps = ("--config.vmc.steps=60", "--config.log.checkpoint_every=4",
             "--config.log.keep_checkpoints=2")
    whole = os.path.join(self._class_dir, "whole")
    done = run_command(f"--config={TINY}", f"--workdir={whole}", *steps)
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])

    killed = os.path.join(self._class_dir, "killed")
    env = helpers.subprocess_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments.vmc", f"--config={TINY}",
         f"--workdir={killed}", *steps], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not any(step >= 4 for step, _ in workdir_lib.checkpoints(killed)):
      self.assertIsNone(proc.poll(), "the run ended before it was killed")
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    self.assertFalse(os.path.exists(
        os.path.join(killed, workdir_lib.RESULT_FILE)))
    self.assertLess(len(metrics_of(killed)), 60)

    done = run_command(f"--config={TINY}", f"--workdir={killed}", *steps)
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertIn("Resuming from step", done.stderr)
    self.assertEqual(metrics_of(killed), metrics_of(whole))
    self.assertLen(metrics_of(killed), 60)
    result = lambda w: {k: v for k, v in read_json(
        os.path.join(w, workdir_lib.RESULT_FILE)).items() if k != "wall_s"}
    self.assertEqual(result(killed), result(whole))

  def test_bad_values_end_in_one_line(self):
    # The messages of bad values and workdirs are tests/test_command_line.py's
    # (in this process); here the real command: a bad override, and an
    # argument the flags do not take, each end in one line on stderr and
    # status 1; --traceback shows the traceback instead.
    for args, line in (
        ([f"--config={TINY}", "--config.model.features=(4, 4, 4, 4)"],
         "error: model.features=(4, 4, 4, 4): has 4 entries; expected "
         "layers - 1 = 2 hidden widths, or layers = 3 widths ending in "
         "local_size = 2"),
        ([f"--config={TINY}", "unexpected"],
         "error: unexpected arguments: unexpected (--helpshort lists the "
         "flags)"),
    ):
      workdir = tempfile.mkdtemp(dir=self._class_dir)
      done = run_command(*args, f"--workdir={workdir}")
      self.assertEqual(done.returncode, 1, done.stderr[-3000:])
      self.assertEqual(done.stderr.strip().splitlines()[-1], line)
      self.assertNotIn("Traceback", done.stderr)
      self.assertEqual(done.stdout, "")
    done = run_command(f"--config={TINY}", "--config.vmc.n_samples=0",
                       f"--workdir={workdir}", "--traceback")
    self.assertNotEqual(done.returncode, 0)
    self.assertIn("Traceback", done.stderr)
    self.assertIn("FieldError: vmc.n_samples=0", done.stderr)

  def test_config_name(self):
    self.assertEqual(launcher.config_name("tfim_chain_fast_conv1d:tiny=True"),
                     "tfim_chain_fast_conv1d")
    self.assertEqual(launcher.config_name("configs/experiments.py:steps=3"),
                     "experiments")


if __name__ == "__main__":
  absltest.main()
