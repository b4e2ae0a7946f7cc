"""The command line: every bad input is one line, and the start is quiet.

A bad flag, override, config value or workdir ends a launcher with one line
on stderr, `error: FIELD=VALUE: what is expected`, and exit status 1. The
tests run the launchers' own functions in this process (flag parsing with
`experiments.parse_flags`, `experiments.vmc.prepare` inside
`experiments.clean_errors`); `tests/test_launcher.py::CommandTest` runs a
few of the same cases as real commands.
"""

import contextlib
import io
import logging
import os
import sys
import tempfile
from unittest import mock

from absl import flags
from absl.testing import absltest, parameterized

import experiments
from experiments import runtime
from experiments import vmc as launcher
from experiments import workdir as workdir_lib
from zoo import registry

TINY = "tfim_chain_fast_conv1d:tiny=True"


def _sections(cfg, prefix=""):
  """The path of every section (and subsection) of a config."""
  for key, value in cfg.items():
    if hasattr(value, "items"):
      yield prefix + key
      yield from _sections(value, prefix + key + ".")


SECTIONS = tuple(_sections(registry.get_config(TINY)))


class OneLineTestCase(parameterized.TestCase):

  def error_line(self, fn, *args, **kwargs) -> str:
    """The message of `error: ...`, checked to be the one line `fn` wrote
    to stderr before it exited with status 1."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), self.assertRaises(
        SystemExit) as stop:
      fn(*args, **kwargs)
    self.assertEqual(stop.exception.code, 1)
    lines = stderr.getvalue().splitlines()
    self.assertLen(lines, 1, stderr.getvalue())
    self.assertStartsWith(lines[0], "error: ")
    return lines[0][len("error: "):]

  def parse_error(self, *args: str, default: str | None = TINY) -> str:
    """The one line of the config flag's parsing of `args`."""
    argv = ["launcher", *args]
    flag_values = flags.FlagValues()
    # ml_collections reads the overrides from sys.argv.
    with mock.patch.object(sys, "argv", argv):

      def parse():
        experiments.define_config_flag("config", default=default,
                                       flag_values=flag_values)
        experiments.parse_flags(argv, flag_values)

      return self.error_line(parse)


class OverrideTest(OneLineTestCase):
  """`--config.PATH=VALUE` of a field the config does not have."""

  @parameterized.parameters(*SECTIONS)
  def test_an_unknown_field_of_each_section(self, section):
    line = self.parse_error(f"--config={TINY}",
                            f"--config.{section}.no_such_field=1")
    self.assertStartsWith(
        line, f"{section}.no_such_field='1': is not a known field; known: ")

  def test_an_unknown_field_of_the_default_config(self):
    # No --config: the launcher's default is parsed as the flag is defined.
    self.assertStartsWith(
        self.parse_error("--config.vmc.foo=1",
                         default="tfim_chain_fast_dense"),
        "vmc.foo='1': is not a known field; known: annealing_steps, "
        "budget, chunk_size, eval_samples, n_samples, seed, steps, temperature")

  def test_an_unknown_top_level_field(self):
    self.assertStartsWith(
        self.parse_error("--config.foo=1"),
        "foo='1': is not a known field; known: hamiltonian, hilbert, init, ")

  def test_an_unknown_section(self):
    self.assertStartsWith(
        self.parse_error("--config.foo.bar=1"),
        "foo.bar='1': foo is not a known section; known: hamiltonian, ")

  def test_a_value_used_as_a_section(self):
    self.assertEqual(
        self.parse_error("--config.vmc.steps.every=1"),
        "vmc.steps.every='1': vmc.steps is a value, not a section of the "
        "config")

  def test_a_section_given_a_value(self):
    self.assertStartsWith(
        self.parse_error("--config.vmc=3"),
        "vmc='3': is a section; set its fields (vmc.FIELD=VALUE), one of: ")

  def test_a_field_named_by_a_keyword_points_to_the_argument(self):
    self.assertEqual(
        self.parse_error("--config.init.from=pretrained:x"),
        "init.from='pretrained:x': cannot be set by a flag ('from' is a "
        "Python keyword); use the config's argument instead: "
        "--config=NAME:init=VALUE")

  @parameterized.parameters(
      ("vmc.steps=abc", "vmc.steps='abc': must be an integer"),
      ("optimizer.learning_rate=fast",
       "optimizer.learning_rate='fast': must be a number"),
      ("optimizer.sr.enabled=maybe",
       "optimizer.sr.enabled='maybe': must be True or False"),
  )
  def test_a_value_of_the_wrong_type(self, override, line):
    self.assertEqual(self.parse_error(f"--config.{override}"), line)

  def test_a_good_override_parses(self):
    argv = ["launcher", f"--config={TINY}", "--config.vmc.steps=3"]
    flag_values = flags.FlagValues()
    with mock.patch.object(sys, "argv", argv):
      experiments.define_config_flag("config", flag_values=flag_values)
      experiments.parse_flags(argv, flag_values)
    self.assertEqual(flag_values.config.vmc.steps, 3)


class SpecTest(OneLineTestCase):
  """`--config=SPEC` that names no config."""

  def test_a_folder(self):
    folder = tempfile.mkdtemp()
    self.addCleanup(os.rmdir, folder)
    self.assertEndsWith(
        self.parse_error(f"--config={folder}"),
        f"config {folder!r} is a folder; give a config file path.py[:arg] "
        "or a registered name")

  def test_a_folder_named_like_a_file(self):
    folder = tempfile.mkdtemp(suffix=".py")
    self.addCleanup(os.rmdir, folder)
    self.assertIn(f"config file {folder!r} (from spec {folder!r}) is a "
                  "folder", self.parse_error(f"--config={folder}"))

  def test_a_missing_file(self):
    self.assertIn("config file 'no/such.py' (from spec 'no/such.py') does "
                  "not exist", self.parse_error("--config=no/such.py"))

  def test_an_unknown_name_lists_a_few_names(self):
    line = self.parse_error("--config=qqqq")
    self.assertIn("unknown config name 'qqqq'; registered names: ", line)
    self.assertLess(len(line), 600)

  def test_an_unknown_argument(self):
    self.assertIn("unknown argument 'foo' in 'foo=1'",
                  self.parse_error("--config=tfim_chain_fast_dense:foo=1"))


class ConfigValueTest(OneLineTestCase):
  """Values the builders refuse name their own section."""

  @parameterized.parameters(
      ("name", "adamw2", "optimizer.name='adamw2': must be one of 'sgd', "),
      ("learning_rate", float("nan"),
       "optimizer.learning_rate=nan: must be a positive finite number"),
      ("sr.diag_shift", -1.0,
       "optimizer.sr.diag_shift=-1.0: must be a positive finite number"),
  )
  def test_optimizer_fields_are_named_as_optimizer(self, field, value, line):
    cfg = registry.get_config(TINY)
    section = cfg.optimizer
    *inner, name = field.split(".")
    for part in inner:
      section = section[part]
    section[name] = value
    workdir = os.path.join(tempfile.mkdtemp(), "run")

    def prepare():
      with experiments.clean_errors(ValueError):
        launcher.prepare(cfg, workdir)

    self.assertStartsWith(self.error_line(prepare), line)
    self.assertFalse(os.path.exists(workdir))


class RunValueTest(OneLineTestCase):
  """Values of the run and the model, from an argument or an override, end
  in one line naming the field (`tests/test_launcher.py` runs one of them
  as a real command)."""

  @parameterized.named_parameters(
      ("steps_argument", "tfim_chain_fast_dense:steps=-5", {},
       "vmc.steps=-5: must be an integer >= 0"),
      ("n_samples", TINY, {"vmc.n_samples": 0},
       "vmc.n_samples=0: must be a positive integer"),
      ("features", TINY, {"model.features": (4, 4, 4, 4)},
       "model.features=(4, 4, 4, 4): has 4 entries; expected layers - 1 = 2 "
       "hidden widths, or layers = 3 widths ending in local_size = 2"),
  )
  def test_a_bad_value_is_one_line(self, spec, overrides, line):
    cfg = registry.get_config(spec)
    for path, value in overrides.items():
      section, name = path.split(".")
      cfg[section][name] = value
    workdir = os.path.join(tempfile.mkdtemp(), "run")

    def prepare():
      with experiments.clean_errors(ValueError):
        launcher.prepare(cfg, workdir)

    self.assertEqual(self.error_line(prepare), line)
    self.assertFalse(os.path.exists(workdir))


class WorkdirTest(OneLineTestCase):
  """A workdir that is a file, or that cannot be made or written."""

  def error_of(self, workdir) -> str:
    def prepare():
      with experiments.clean_errors(ValueError):
        workdir_lib.prepare(registry.get_config(TINY), workdir, False)
    return self.error_line(prepare)

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp()
    self.file = os.path.join(self.dir, "a_file")
    with open(self.file, "w") as f:
      f.write("not a run\n")

  def test_a_file(self):
    self.assertEqual(self.error_of(self.file),
                     f"workdir={self.file!r}: is a file; must be a folder "
                     "(or a path where one can be made)")
    with open(self.file) as f:
      self.assertEqual(f.read(), "not a run\n")

  def test_a_path_through_a_file(self):
    workdir = os.path.join(self.file, "run")
    self.assertEqual(self.error_of(workdir),
                     f"workdir={workdir!r}: must be a folder this process "
                     "can make and write; Not a directory")

  def test_a_folder_that_cannot_be_written(self):
    workdir = os.path.join(self.dir, "read_only")
    os.mkdir(workdir, 0o555)
    self.addCleanup(os.chmod, workdir, 0o755)
    with contextlib.ExitStack() as stack:
      if os.access(workdir, os.W_OK):  # root writes anywhere
        stack.enter_context(mock.patch.object(
            workdir_lib.os, "access", return_value=False))
      line = self.error_of(workdir)
    self.assertEqual(line, f"workdir={workdir!r}: must be a folder this "
                     "process can make and write; Permission denied")


class RuntimeFlagTest(absltest.TestCase):

  def test_cpu_devices_is_checked_as_it_is_parsed(self):
    for value, valid in (("auto", True), ("2", True), (None, True),
                         ("0", False), ("x", False), ("-1", False)):
      self.assertEqual(runtime._valid_cpu_devices(value), valid, value)
    error = flags.IllegalFlagValueError(
        f"flag --cpu_devices=x: {runtime.CPU_DEVICES_EXPECTED}")
    self.assertEqual(experiments.flag_error_message(error),
                     "--cpu_devices=x: must be a positive integer or 'auto'")


class QuietStartTest(absltest.TestCase):

  def test_the_loggers_exist_and_are_quieted(self):
    # The names are the modules' own loggers: a rename in JAX or matplotlib
    # fails here rather than bringing the lines back unnoticed.
    from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
    from matplotlib import font_manager  # pylint: disable=g-import-not-at-top
    self.assertEqual(xla_bridge.logger.name, "jax._src.xla_bridge")
    self.assertEqual(font_manager._log.name, "matplotlib.font_manager")
    saved = {name: logging.getLogger(name).level
             for name in experiments.QUIET_LOGGERS}
    self.addCleanup(lambda: [logging.getLogger(n).setLevel(level)
                             for n, level in saved.items()])
    experiments.quiet_libraries()
    self.assertFalse(xla_bridge.logger.isEnabledFor(logging.INFO))
    self.assertFalse(font_manager._log.isEnabledFor(logging.WARNING))
    self.assertTrue(xla_bridge.logger.isEnabledFor(logging.WARNING))


if __name__ == "__main__":
  absltest.main()
