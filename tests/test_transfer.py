"""Starting runs from other runs' parameters: transfer, growing the
lattice, stages, the zoo of trained models (zoo.transfer, zoo.pretrained,
experiments.grow, experiments.stages)."""

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
import pytest

from configs import experiments as experiment_configs
from experiments import grow
from experiments import stages
from experiments import vmc as launcher
from experiments import workdir as workdir_lib
from experiments import catalog
from zoo import build, pretrained, registry, transfer, trees
from zoo.physics import exact


def gru_config(size: int, steps: int = 4):
  """A tiny GRU on a periodic Heisenberg chain of `size` sites."""
  cfg = registry.get_config("heisenberg_chain_fast_dense:tiny=True")
  cfg.model = registry.get_config("fast_gru:tiny=True,lattice=chain").model
  cfg.lattice.shape = (size,)
  cfg.vmc.steps = steps
  return cfg


@pytest.mark.slow  # trains, then trains again from it
class TransferTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = tempfile.mkdtemp()
    cls._env = mock.patch.dict(os.environ, {
        exact.CACHE_ENV_VAR: os.path.join(cls.dir, "ed")})
    cls._env.start()
    cls.source_dir = os.path.join(cls.dir, "source")
    cls.source = launcher.train(gru_config(4), cls.source_dir)

  @classmethod
  def tearDownClass(cls):
    cls._env.stop()
    shutil.rmtree(cls.dir, ignore_errors=True)
    super().tearDownClass()

  def test_a_larger_lattice_starts_from_the_trained_parameters(self):
    cfg = gru_config(6, steps=2)
    cfg.init["from"] = self.source_dir
    prepared = launcher.prepare(cfg, os.path.join(self.dir, "larger"))
    chex.assert_trees_all_equal(prepared.experiment.initial_params,
                                self.source.state.params)
    state = prepared.experiment.vmc.init(jax.random.key(0),
                                         prepared.experiment.initial_params)
    chex.assert_trees_all_equal(state.params, self.source.state.params)
    result = launcher.run(prepared)
    self.assertEqual(result.steps, 2)

  def test_what_does_not_fit_is_named(self):
    dense = registry.get_config("heisenberg_chain_fast_dense:tiny=True")
    dense_dir = os.path.join(self.dir, "dense")
    launcher.train(dense, dense_dir, stop_after=2)
    larger = registry.get_config("heisenberg_chain_fast_dense:tiny=True,L=8")
    larger.lattice.shape = (8,)
    larger.init["from"] = dense_dir
    with self.assertRaisesRegex(
        ValueError, r"init.from='.*dense': model.family='dense' has "
        r"parameters whose shapes depend on the number of sites \(this "
        r"model: 8\): transfer needs a weight-shared family"):
      launcher.prepare(larger, os.path.join(self.dir, "refused"))
    other = gru_config(6)
    other.init["from"] = dense_dir
    with self.assertRaisesRegex(
        ValueError, r"init.from='.*dense': holds a dense model; this "
        r"config's model.family is 'gru'"):
      launcher.prepare(other, os.path.join(self.dir, "refused"))
    wider = gru_config(6)
    wider.model.features = 6
    wider.init["from"] = self.source_dir
    with self.assertRaisesRegex(
        ValueError, r"init.from=.*: does not fit this config's model: .* "
        r"\['arnn_gru/~/gru_0'\]\['b'\] has shape \(8,\)"):
      launcher.prepare(wider, os.path.join(self.dir, "refused"))
    missing = gru_config(6)
    missing.init["from"] = os.path.join(self.dir, "nowhere")
    with self.assertRaisesRegex(ValueError, r"init.from=.*nowhere.*holds no "
                                r"config.json"):
      launcher.prepare(missing, os.path.join(self.dir, "refused"))
    self.assertFalse(os.path.exists(os.path.join(self.dir, "refused")))

  def test_pretrained_round_trip(self):
    directory = os.path.join(self.dir, "zoo")
    os.makedirs(directory)
    catalog.save_pretrained(self.source_dir, "tiny_gru", directory)
    with self.assertRaisesRegex(ValueError, "name='tiny_gru': .* exists"):
      catalog.save_pretrained(self.source_dir, "tiny_gru", directory)
    self.assertEqual(pretrained.names(directory), ["tiny_gru"])
    trained = pretrained.load("tiny_gru", directory)
    self.assertAlmostEqual(trained.record["energy"], self.source.energy)
    model, params = trained.model()
    chex.assert_trees_all_equal(params, self.source.state.params)
    x = np.ones((2, 4)) * np.array([1, -1, 1, -1])
    np.testing.assert_allclose(model.log_psi(params, x),
                               build.model(gru_config(4)).log_psi(
                                   self.source.state.params, x))
    with self.assertRaisesRegex(ValueError, "no trained model 'nothing'"):
      pretrained.load("nothing", directory)
    with self.assertRaisesRegex(ValueError, r"init.from='pretrained:nothing'"):
      workdir_lib.load_source("pretrained:nothing")

  @pytest.mark.slow
  def test_grow(self):
    records = grow.grow(gru_config(4, steps=2), [4, 6],
                        os.path.join(self.dir, "grow"))
    self.assertEqual([r["size"] for r in records], [4, 6])
    self.assertTrue(all(r["steps"] == 2 for r in records))
    # A rerun trains nothing: both stages are done.
    with mock.patch.object(launcher, "train",
                           side_effect=AssertionError("trained again")):
      again = grow.grow(gru_config(4, steps=2), [4, 6],
                        os.path.join(self.dir, "grow"))
    self.assertEqual([r["energy"] for r in again],
                     [r["energy"] for r in records])


  @pytest.mark.slow
  def test_stages_end_in_a_symmetrized_evaluation(self):
    workdir = os.path.join(self.dir, "stages")
    plan = [stages.parse_stage("vmc.steps=2 optimizer.learning_rate=0.02"),
            stages.parse_stage("model.symmetries=translations vmc.steps=0")]
    records = stages.run_stages(gru_config(4), plan, workdir)
    self.assertEqual([(r["stage"], r["steps"]) for r in records],
                     [("stage1", 2), ("stage2", 0)])
    # The last stage is stage 1's parameters, evaluated symmetrized.
    _, trained = workdir_lib.load_params(records[0]["workdir"])
    cfg = stages.stage_config(gru_config(4), plan[1], "")
    run = build.experiment(cfg)
    self.assertIn("Symmetrized", repr(run.model))
    params = trees.from_paths(run.model.parameter_shapes(), trained, "stage1")
    energy = run.evaluate(params, jax.random.fold_in(
        jax.random.key(run.seed), launcher.EVAL_STREAM))[0]
    self.assertAlmostEqual(records[1]["energy"], float(energy), places=10)
    with mock.patch.object(launcher, "train",
                           side_effect=AssertionError("trained again")):
      again = stages.run_stages(gru_config(4), plan, workdir)
    self.assertEqual([r["energy"] for r in again],
                     [r["energy"] for r in records])
    # Saved as a trained model: the last stage's, with every stage's steps.
    directory = os.path.join(self.dir, "zoo_of_stages")
    os.makedirs(directory)
    catalog.save_pretrained(workdir, "staged", directory)
    saved = pretrained.load("staged", directory)
    self.assertEqual(saved.record["energy"], records[1]["energy"])
    self.assertEqual(saved.record["steps"], 2)
    self.assertAlmostEqual(saved.record["wall_s"],
                           records[0]["wall_s"] + records[1]["wall_s"])
    self.assertEqual([s["stage"] for s in saved.record["stages"]],
                     ["stage1", "stage2"])
    self.assertEqual(saved.config.model.symmetries, "translations")


class StageTest(absltest.TestCase):

  def test_overrides_are_literals_or_strings(self):
    self.assertEqual(
        stages.parse_stage("vmc.steps=3 lattice.shape=(6,6) vmc.budget=35m "
                           "model.symmetries=point_group,spin_flip"),
        {"vmc.steps": 3, "lattice.shape": (6, 6), "vmc.budget": "35m",
         "model.symmetries": "point_group,spin_flip"})
    for text, message in (("steps=3", "'steps=3' is not of the form"),
                          ("vmc.steps", "'vmc.steps' is not of the form"),
                          ("vmc.steps=1 vmc.steps=2", "sets vmc.steps twice")):
      with self.assertRaisesRegex(ValueError, message):
        stages.parse_stage(text)

  def test_registered_stages_apply_to_their_experiments(self):
    self.assertNotEmpty(experiment_configs.STAGES)
    for name, texts in experiment_configs.STAGES.items():
      cfg = experiment_configs.get_config_of(name, None)
      for text in texts:
        stage = stages.stage_config(cfg, stages.parse_stage(text), "")
        build.learning_rate(stage)  # the optimizer's and the vmc's fields
        build.model(stage)
      self.assertEqual(stages.registered_stages(name + ":L=4"), texts)
    with self.assertRaisesRegex(ValueError, "'tfim_chain_fast_dense' has no "
                                "registered stages"):
      stages.registered_stages("tfim_chain_fast_dense")

  @pytest.mark.slow
  def test_the_commands_refuse_in_one_line(self):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for args, message in (
        (("experiments.stages", "--config=tfim_chain_fast_dense"),
         "error: stage=None: give one --stage or more: "
         "'tfim_chain_fast_dense' has no registered stages"),
        (("experiments.stages", "--config=heisenberg_square_6x6",
          "--stage=vmc.stepz=3"),
         "error: vmc.stepz=3: is not a known field"),
        (("experiments.grow", "--config=heisenberg_square_6x6",
          "--sizes=4,x"),
         "error: sizes='4,x': must be integers separated by commas")):
      done = subprocess.run([sys.executable, "-m", *args], cwd=root,
                            capture_output=True, text=True, timeout=300)
      self.assertEqual(done.returncode, 1, done.stderr)
      self.assertStartsWith(done.stderr.strip().splitlines()[-1], message)

  def test_a_stage_names_its_bad_field(self):
    cfg = gru_config(4)
    for overrides, message in (
        ({"vmc.stepz": 3}, r"vmc.stepz=3: is not a known field; known: .*steps"),
        ({"vmcc.steps": 3}, r"vmcc.steps=3: 'vmcc' is not a section"),
        ({"vmc.steps": "many"}, r"vmc.steps='many': .*type")):
      with self.assertRaisesRegex(ValueError, message):
        stages.stage_config(cfg, overrides, "")
    with self.assertRaisesRegex(ValueError, "must name one stage or more"):
      stages.run_stages(cfg, [], "unused")
    stage = stages.stage_config(cfg, {"vmc.steps": 7}, "somewhere")
    self.assertEqual((stage.vmc.steps, stage.init["from"], cfg.vmc.steps),
                     (7, "somewhere", 4))


class SourceTest(absltest.TestCase):

  def test_arrays_by_path(self):
    model = build.model(registry.get_config("fast_gru:tiny=True"))
    params, _ = model.init(jax.random.key(0))
    from zoo import trees  # pylint: disable=g-import-not-at-top
    source = transfer.Source(registry.get_config("fast_gru:tiny=True"),
                             trees.by_path(params), "here")
    chex.assert_trees_all_equal(transfer.params_for(source, model), params)


if __name__ == "__main__":
  absltest.main()
