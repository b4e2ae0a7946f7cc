"""Smoke tests of the measuring scripts: they run and print their tables."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import compare_runs
from experiments import sign_structure
from experiments import workdir as workdir_lib
import zoo
from zoo.physics import hamiltonians
from zoo.physics import lattice
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args: str) -> str:
  result = subprocess.run([sys.executable, "-m", *args], cwd=ROOT,
                          env=helpers.subprocess_env(), capture_output=True,
                          text=True, timeout=300)
  if result.returncode:
    raise AssertionError(f"{args} exited {result.returncode}:\n{result.stderr[-3000:]}")
  return result.stdout


class CompareRunsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp(prefix="compare-")
    self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

  def _workdir(self, errors, wall_per_step, final):
    path = tempfile.mkdtemp(dir=self.dir)
    rows = [dict(step=i, relative_error=e, wall_s=(i + 1) * wall_per_step)
            for i, e in enumerate(errors)]
    with open(os.path.join(path, workdir_lib.METRICS_FILE), "w") as f:
      f.write(workdir_lib.metric_lines(rows))
    with open(os.path.join(path, workdir_lib.RESULT_FILE), "w") as f:
      json.dump(dict(steps=len(errors), relative_error=final,
                     wall_s=len(errors) * wall_per_step + 10.0), f)
    return path

  def test_stages_join_and_marks_read_within_a_stage(self):
    plain = self._workdir([0.3, 0.2, 0.1, 0.1], 60.0, 0.09)  # ends at 250 s
    symmetric = self._workdir([0.01, 0.02], 60.0, 0.015)  # 130 s more
    run = compare_runs.load_run([plain, symmetric])
    self.assertEqual([r["step"] for r in run["rows"]], [0, 1, 2, 3, 4, 5])
    self.assertEqual([r["wall_s"] for r in run["rows"]][3:],
                     [240.0, 310.0, 370.0])
    self.assertEqual((run["steps"], run["wall_s"]), (6, 380.0))
    errors = compare_runs.smoothed(run["rows"], window=3)
    # The median never reaches back across the stage boundary.
    np.testing.assert_allclose(errors, [0.3, 0.25, 0.2, 0.1, 0.01, 0.015])
    self.assertEqual(compare_runs.at_mark(run, errors, 130.0), 0.25)
    self.assertEqual(compare_runs.at_mark(run, errors, 375.0), 0.015)
    self.assertIsNone(compare_runs.at_mark(run, errors, 400.0))  # ended
    text = compare_runs.table({"staged": run}, [130.0, 400.0], window=3)
    self.assertEqual(text.splitlines()[2],
                     "| staged | 6 | 6.3 min | 1.50e-02 | 2.5e-01 |  |")
    with self.assertRaisesRegex(ValueError, "holds no metrics.jsonl"):
      compare_runs.load_run([tempfile.mkdtemp(dir=self.dir)])
    with self.assertRaisesRegex(ValueError, "must be LABEL=WORKDIR"):
      compare_runs.parse_run("no label")


class SignStructureTest(absltest.TestCase):

  def test_a_positive_model_of_a_positive_ground_state(self):
    # The Marshall-rotated Heisenberg chain has a positive ground state
    # (Perron-Frobenius), and a real model is positive: its signs are
    # right, so the exact signs change nothing and the exact amplitudes
    # with its phases are the ground state.
    ham = hamiltonians.Heisenberg(lattice.chain(8), marshall_sign=True)
    model = zoo.FastARNNDense(zoo.spin_half(8, total_sz=0), layers=2,
                              features=4, param_dtype=jnp.float64)
    params, _ = model.init(jax.random.key(0))
    figures = sign_structure.decompose(model, params, ham)
    self.assertEqual(figures["states"], 70)
    self.assertAlmostEqual(figures["right_signs"], 1.0, places=12)
    self.assertEqual(figures["phase_spread"], 0.0)
    self.assertLess(figures["model_phases"], 1e-12)
    self.assertAlmostEqual(figures["exact_signs"], figures["model"],
                           places=12)
    # The model's energy: sum_x p(x) E_loc(x) over the sector, by the
    # local energies.
    x = model.hilbert.all_states()
    p = jnp.exp(2 * jax.jit(model.log_psi)(params, x))
    e = float(jnp.sum(p * jax.jit(lambda x: ham.local_energy(
        model.log_psi, params, x))(x)))
    self.assertAlmostEqual(abs(e - figures["exact"]) / abs(figures["exact"]),
                           figures["model"], places=12)
    self.assertGreater(figures["model"], 1e-3)
    self.assertTrue(0 < figures["overlap"] < 1)

  def test_a_frustrated_model_and_the_command(self):
    # J1-J2 at J2 = 0.5 breaks the Marshall sign: a real positive model
    # misses part of the ground state's weight, and the exact signs lower
    # its energy.
    ham = hamiltonians.J1J2(lattice.square(2, 4), J2=0.8, marshall_sign=True)
    model = zoo.FastARNNDense(zoo.spin_half(8, total_sz=0), layers=1,
                              features=4, param_dtype=jnp.float64)
    params, _ = model.init(jax.random.key(1))
    figures = sign_structure.decompose(model, params, ham)
    self.assertLess(figures["right_signs"], 0.99)
    self.assertLess(figures["exact_signs"], figures["model"])
    with self.assertRaisesRegex(AssertionError, "--run=pretrained:nope"):
      run("experiments.sign_structure", "--run=pretrained:nope")

  @pytest.mark.slow
  def test_the_command_on_a_trained_model(self):
    out_dir = self.enterContext(tempfile.TemporaryDirectory())
    path = os.path.join(out_dir, "signs.json")
    out = run("experiments.sign_structure",
              "--run=pretrained:j1j2_square_4x4", f"--json={path}")
    with open(path) as f:
      figures = json.load(f)
    self.assertIn(f"model         rel. error {figures['model']:.3e}", out)
    self.assertEqual(figures["states"], 12870)
    with self.assertRaisesRegex(AssertionError, "exists"):
      run("experiments.sign_structure", "--run=pretrained:j1j2_square_4x4",
          f"--json={path}")


@pytest.mark.slow
class ToolsTest(absltest.TestCase):

  def test_profile_sampler_lists_ops_of_the_site_loop(self):
    model = "--model=fast_arnn_conv2d:L=3,layers=2,features=4,kernel=(3,3),dtype=float32"

    def table(top):
      out = run("experiments.profile_sampler", model, "--batch=16", "--calls=2",
                f"--top={top}")
      self.assertIn("samples/s", out)
      return [line.split() for line in out.splitlines() if not line.startswith("#")][1:]

    # Every op, most expensive first. (Which ops lead is timing, so the
    # site-loop ops are looked for in the whole table, not the first rows.)
    rows = table(1000)
    per_call = [float(row[0]) for row in rows]
    self.assertEqual(per_call, sorted(per_call, reverse=True))
    # Site-loop ops run once per site: 9 sites.
    self.assertIn("9", [row[1] for row in rows])
    self.assertGreater(len(rows), 5)
    self.assertLen(table(5), 5)

  def test_bench_sampler_times_slow_fast_and_a_sector(self):
    # One run: both twins on a chain and a square, and the S^z = 0 sector.
    out = run("experiments.bench_sampler", "--sizes_1d=4,5", "--sizes_2d=2",
              "--batch=8", "--repeats=1", "--layers=2", "--features=4",
              "--total_sz=0")
    self.assertIn("sector/fast", out)
    rows = {" ".join(line.split()[:2]): line.split()
            for line in out.splitlines() if line.startswith(("1d", "2d"))}
    self.assertEqual(set(rows), {"1d N=4", "1d N=5", "2d 2x2"})
    for name, row in rows.items():
      # sites, slow/s and fast/s timed, their ratio, memory, per-site time.
      self.assertGreater(float(row[3]), 0, name)
      self.assertGreater(float(row[4]), 0, name)
      self.assertRegex(row[5], r"^\d+\.\dx$", name)
    self.assertRegex(rows["1d N=4"][-1], r"^\d+\.\d\dx$")  # 4 sites reach 0
    self.assertEqual(rows["1d N=5"][-2:], ["-", "-"])  # 5 sites cannot

  def test_step_tools_time_a_registered_experiment(self):
    # Overrides reach the config (the 16-sample case is another program);
    # the stages of the same experiment, with SR.
    case = "heisenberg_square_6x6:tiny=True"
    out = run("experiments.bench_step", "--rounds=1",
              f"--cases={case},{case}|vmc.n_samples=16")
    self.assertRegex(out, rf"{case}: \d+\.\d+ s a step")
    self.assertRegex(out, rf"{case}\|vmc.n_samples=16: \d+\.\d+ s a step")
    out = run("experiments.profile_step", f"--config={case}", "--sr",
              "--rounds=1", "--samples=8")
    for stage in ("sample", "e_loc", "gradient", "sr_problem", "step"):
      self.assertRegex(out, rf"\n{stage} +\d+\.\d+")

  def test_matmul_rate_prints_both_layouts(self):
    out = run("experiments.matmul_rate", "--shapes=4x6", "--batches=8,16",
              "--dtypes=float32", "--repeats=2", "--rounds=1")
    rows = [line.split() for line in out.splitlines()
            if line.startswith(" ") and "shape" not in line]
    self.assertEqual([row[:3] for row in rows],
                     [["4x6", "8", "float32"], ["4x6", "16", "float32"]])
    for row in rows:  # GFLOP/s of W v and of v W^T
      self.assertTrue(all(float(figure) > 0 for figure in row[3:]), row)

  def test_gpu_figures_tiny_writes_its_tables(self):
    # Three parts at tiny sizes on the CPU: a NetKet comparison (ours alone
    # where NetKet is absent), whole steps and a training; each with its
    # seconds. --only keeps the named cases (of the steps, the 16-sample
    # one of two), --budgets sets a part's seconds.
    with tempfile.TemporaryDirectory() as out:
      printed = run("experiments.gpu_figures", "--scale=tiny",
                    "--parts=netket_vmc,steps,train_6x6",
                    "--only=vmc_tfim,n_samples", "--budgets=steps=100",
                    f"--out={out}")
      with open(os.path.join(out, "figures.json")) as f:
        results = json.load(f)
      with open(os.path.join(out, "figures.md")) as f:
        table = f.read()
    parts = {p["part"]: p for p in results["parts"]}
    self.assertEqual(list(parts), ["netket_vmc", "steps", "train_6x6"])
    for name, part in parts.items():
      self.assertEqual(part["status"], "ok", part)
      self.assertGreater(part["seconds"], 0)
      self.assertRegex(table, rf"\| {name} \| ok \| \d+\.\d \|")
      self.assertRegex(printed, rf"{name} +ok")
    self.assertGreater(parts["netket_vmc"]["rows"][0]["ours_s"], 0)
    self.assertEqual([row["case"] for row in parts["steps"]["rows"]],
                     ["heisenberg_square_6x6:tiny=True|vmc.n_samples=16"])
    self.assertGreater(parts["steps"]["rows"][0]["step_s"], 0)
    trained = parts["train_6x6"]["rows"][0]
    self.assertEqual(trained["steps"], 6)
    self.assertLess(trained["relative_error"], 1)
    self.assertIn("## train_6x6", table)

  def test_gpu_figures_refuses_a_bad_budget(self):
    for bad in ("steps=ten", "steps=nan"):
      result = subprocess.run(
          [sys.executable, "-m", "experiments.gpu_figures", "--scale=tiny",
           f"--budgets={bad}", "--out=/nonexistent/never"], cwd=ROOT,
          env=helpers.subprocess_env(), capture_output=True, text=True,
          timeout=120)
      self.assertNotEqual(result.returncode, 0)
      self.assertIn(f"--budgets: {bad!r} must be PART=SECONDS",
                    result.stderr)


if __name__ == "__main__":
  absltest.main()
