"""The config registry, the config modules, plugins and the zoo command.

Every registered name gets its own cheap cases, generated from the registry:
it builds, describes and shrinks, and its config reads back from JSON. The
numerical properties (fast == slow, normalization, sampling) are the family
suite's (tests/test_models.py); here one registered name per family runs
end to end (`SMOKE_RUNS`), so a compiled program is paid per family, not per
name.
"""

import os
import re
import subprocess
import sys
import tempfile
import textwrap
import warnings

from absl import flags
from absl.testing import absltest, parameterized
import chex
import jax.numpy as jnp
from ml_collections import config_dict
import numpy as np
import pytest

import configs
from configs import base, families
import experiments
from experiments import catalog
import zoo
from zoo import build, config_tools, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = registry.names()
# Built-in variants: name -> (family module name, the arguments it changes).
BUILTINS = {name: (module.__name__.rpartition(".")[2], diff)
            for module in families.MODULES
            for name, diff in module.VARIANTS.items()}


# One registered name per family (and the default experiment) runs end to
# end: the fast twin samples, the slow twin evaluates. Spread over dtypes,
# spaces and a sector; `test_smoke_runs_cover_every_family` keeps it whole.
SMOKE_RUNS = ("fast_arnn_dense", "fast_arnn_conv1d_dilated",
              "fast_arnn_conv2d:dtype=complex128", "fast_gru:total=0",
              "fast_transformer:hilbert=spin_one",
              "fast_gated_conv1d:dtype=complex128", "fast_gated_conv2d",
              "tfim_chain_fast_dense")


def _named(names):
  return [(name.replace(":", "_").replace("=", "_"), name) for name in names]


def _leaves(cfg, prefix=""):
  """(path, value, field type) of every leaf."""
  out = []
  for key in cfg:
    value = cfg[key]
    if isinstance(value, config_dict.ConfigDict):
      out += _leaves(value, f"{prefix}{key}.")
    else:
      out.append((f"{prefix}{key}", value, cfg.get_type(key)))
  return out


class RegisteredConfigTest(parameterized.TestCase):

  @parameterized.named_parameters(_named(NAMES))
  def test_builds_describes_and_shrinks(self, name):
    """Each name builds, its description lists its parameters (shapes only,
    nothing compiled), and its tiny version builds a smaller model."""
    cfg = registry.get_config(name)
    model = build.model(cfg)
    count = model.parameter_count()
    self.assertGreater(count, 0)
    text = catalog.describe(cfg)
    self.assertIn(f"total: {count:,} parameters", text)
    self.assertIn(f"model: {model!r}", text)
    tiny = build.model(config_tools.shrink(cfg))
    self.assertEqual(tiny.spec.family, model.spec.family)
    self.assertLessEqual(tiny.hilbert.size, model.hilbert.size)
    self.assertLessEqual(tiny.parameter_count(), count)

  @parameterized.named_parameters(_named(SMOKE_RUNS))
  def test_builds_evaluates_and_samples(self, name):
    """The tiny run's samples lie in the space, the conditionals sum to one
    and the sampler's cached log-probabilities equal the slow full pass."""
    cfg = registry.get_config(name)
    run = catalog.smoke_run(config_tools.shrink(cfg), n_samples=8)
    hilbert = run.fast.hilbert
    n, k = hilbert.size, hilbert.local_size
    chex.assert_shape(run.samples, (8, n))
    chex.assert_shape([run.log_prob, run.log_psi], (8,))
    chex.assert_shape(run.conditionals, (8, n, k))
    chex.assert_tree_all_finite((run.log_psi, run.conditionals))
    self.assertTrue(np.all(hilbert.contains(run.samples)))
    complex_params = jnp.issubdtype(jnp.dtype(run.fast.dtype), jnp.complexfloating)
    self.assertEqual(jnp.iscomplexobj(run.log_psi), complex_params)
    np.testing.assert_allclose(run.conditionals.sum(-1), 1.0, rtol=1e-10)
    # Fast == slow: the sampler's cached log-probabilities against the full pass.
    self.assertTrue(run.fast.is_fast)
    self.assertFalse(run.slow.is_fast)
    np.testing.assert_allclose(
        run.log_prob, run.slow.machine_pow * np.real(run.log_psi),
        rtol=0, atol=1e-10)
    self.assertEqual(catalog.smoke_problems(run), [])

  def test_smoke_runs_cover_every_family(self):
    """Every family of the table has a registered name that runs end to end,
    and the smoke runs meet a complex dtype, a larger local space and a
    sector."""
    models = [build.model(registry.get_config(name)) for name in SMOKE_RUNS]
    self.assertEqual({m.spec.family for m in models}, set(zoo.models.FAMILIES))
    self.assertTrue(any(jnp.issubdtype(jnp.dtype(m.spec.param_dtype),
                                       jnp.complexfloating) for m in models))
    self.assertTrue(any(m.hilbert.local_size > 2 for m in models))
    self.assertTrue(any(m.hilbert.total is not None for m in models))

  @parameterized.named_parameters(_named(NAMES))
  def test_json_round_trip(self, name):
    cfg = registry.get_config(name)
    text = cfg.to_json()
    loaded = config_tools.config_from_json(text)
    self.assertEqual(_leaves(loaded), _leaves(cfg))
    self.assertEqual(loaded.to_json(), text)
    a, b = build.model(cfg).spec, build.model(loaded).spec
    for field in ("family", "hilbert", "features", "kernel_size",
                  "kernel_dilation", "param_dtype", "machine_pow", "fast"):
      self.assertEqual(getattr(a, field), getattr(b, field), field)

  @parameterized.named_parameters(_named(BUILTINS))
  def test_variant_is_its_family_file_with_arguments(self, name):
    module, diff = BUILTINS[name]
    path = os.path.join(ROOT, "configs", f"{module}.py")
    from_file = registry.get_config(f"{path}:{config_tools.format_arg(diff)}")
    self.assertEqual(from_file.to_dict(), registry.get_config(name).to_dict())

  def test_required_variants_registered(self):
    required = {"arnn_dense", "fast_arnn_dense", "arnn_conv1d",
                "fast_arnn_conv1d", "fast_arnn_conv1d_dilated", "arnn_conv2d",
                "fast_arnn_conv2d", "fast_arnn_conv2d_dilated"}
    self.assertLessEqual(required, set(NAMES))
    models = {name: build.model(registry.get_config(name)) for name in BUILTINS}
    spec = lambda name: models[name].spec
    self.assertEqual(spec("fast_arnn_conv1d_dilated").kernel_dilation,
                     ((1,), (2,), (4,), (8,), (16,)))
    self.assertEqual(spec("fast_arnn_conv2d_dilated").kernel_dilation,
                     ((1, 1), (2, 2), (4, 4), (8, 8)))
    self.assertEqual(spec("fast_arnn_conv1d").features, (16, 16, 16, 2))
    self.assertEqual(spec("fast_arnn_conv1d_pyramid").features, (32, 22, 12, 2))
    self.assertEqual(spec("fast_arnn_dense_explicit").features, (32, 16, 8, 2))
    # The dtype, the local space and the sector are arguments of any name.
    for name in BUILTINS:
      self.assertNotRegex(name, r"_(complex|spin_one|fock|sz0)$")
    for spec, local_size, total, dtype in (
        ("fast_gru:dtype=complex128", 2, None, np.complex128),
        ("fast_transformer:hilbert=spin_one", 3, None, np.float64),
        ("fast_arnn_conv1d:hilbert=fock,n_max=3", 4, None, np.float64),
        ("fast_gated_conv2d:total=0", 2, 0.0, np.float64)):
      model = build.model(registry.get_config(spec))
      self.assertEqual((model.hilbert.local_size, model.hilbert.total,
                        np.dtype(model.spec.param_dtype)),
                       (local_size, total, np.dtype(dtype)), spec)
    for name, model in models.items():
      self.assertEqual(model.is_fast, name.startswith("fast_"), name)


class ParseArgTest(parameterized.TestCase):

  DEFAULTS = dict(fast=False, L=16, lr=0.1, hilbert="spin_half",
                  features=(16,), dilation=(1,))

  @parameterized.named_parameters(
      ("bool_true", "fast=True", "fast", True),
      ("bool_lower", "fast=true", "fast", True),
      ("bool_one", "fast=1", "fast", True),
      ("bool_false", "fast=False", "fast", False),
      ("int", "L=8", "L", 8),
      ("negative_int", "L=-3", "L", -3),
      ("float", "lr=3e-4", "lr", 3e-4),
      ("float_from_int", "lr=2", "lr", 2.0),
      ("str", "hilbert=fock", "hilbert", "fock"),
      ("tuple_python", "features=(16, 8, 2)", "features", (16, 8, 2)),
      ("tuple_brackets", "features=[16,8]", "features", (16, 8)),
      ("tuple_colons", "features=16:8:2", "features", (16, 8, 2)),
      ("tuple_one_value", "features=32", "features", (32,)),
      ("tuple_schedule", "features=pyramid:32", "features", ("pyramid", 32)),
      ("tuple_word", "dilation=wavenet", "dilation", ("wavenet",)),
      ("tuple_nested", "dilation=((1, 1), (2, 2))", "dilation", ((1, 1), (2, 2))),
  )
  def test_typed_from_defaults(self, arg, key, expected):
    args = config_tools.parse_arg(arg, **self.DEFAULTS)
    self.assertEqual(args[key], expected)
    self.assertIs(type(args[key]), type(expected))
    for other in set(self.DEFAULTS) - {key}:
      self.assertEqual(args[other], self.DEFAULTS[other])

  def test_several_and_none(self):
    args = config_tools.parse_arg("L=8,features=(16,8,2),fast=True", **self.DEFAULTS)
    self.assertEqual((args.L, args.features, args.fast), (8, (16, 8, 2), True))
    self.assertEqual(config_tools.parse_arg(None, **self.DEFAULTS).to_dict(),
                     self.DEFAULTS)
    self.assertEqual(config_tools.parse_arg("", **self.DEFAULTS).to_dict(),
                     self.DEFAULTS)

  @parameterized.named_parameters(
      ("unknown_key", "featurs=3",
       "unknown argument 'featurs' in 'featurs=3' (did you mean 'features'?); "
       "known keys: L, dilation, fast, features, hilbert, lr"),
      ("bad_int", "L=eight",
       "argument L='eight' is not an int (the type of its default 16)"),
      ("float_for_int", "L=8.5", "argument L='8.5' is not an int"),
      ("bad_bool", "fast=maybe", "argument fast='maybe' is not a bool"),
      ("bad_float", "lr=fast", "argument lr='fast' is not a float"),
      ("bad_tuple", "features=(16", "argument features='(16' is not a tuple"),
      ("no_equals", "L", "argument 'L' in 'L' is not of the form key=value"),
      ("repeated", "L=8,L=9", "argument 'L' is given twice"),
  )
  def test_errors_name_key_value_and_expected(self, arg, message):
    with self.assertRaisesRegex(ValueError, re.escape(message)):
      config_tools.parse_arg(arg, **self.DEFAULTS)

  def test_format_arg_reads_back(self):
    values = dict(fast=True, L=8, lr=0.5, hilbert="fock",
                  features=("pyramid", 32), dilation=((1, 1), (2, 2)))
    text = config_tools.format_arg(values)
    self.assertEqual(text, "fast=True,L=8,lr=0.5,hilbert=fock,features=pyramid:32,"
                     "dilation=((1, 1), (2, 2))")
    self.assertEqual(config_tools.parse_arg(text, **self.DEFAULTS).to_dict(), values)


class SpecTest(parameterized.TestCase):

  def test_name_with_arguments(self):
    cfg = registry.get_config("fast_arnn_conv1d:L=8,features=32")
    self.assertEqual(cfg.lattice.shape, (8,))
    self.assertEqual(cfg.model.features, 32)
    self.assertTrue(cfg.model.fast)
    model = build.model(
        registry.get_config("arnn_conv2d:L=5,kernel=2:3,features=(8,4,3)"))
    self.assertEqual(model.hilbert.shape, (5, 5))
    self.assertEqual(model.spec.kernel_size[0], (2, 3))
    self.assertEqual(model.spec.features, (8, 4, 3, 2))
    self.assertFalse(model.is_fast)
    # A variant's defaults, then the arguments: the schedule follows layers.
    model = build.model(registry.get_config(
        "fast_arnn_conv1d_dilated:layers=3,hilbert=spin_one"))
    self.assertEqual(model.spec.kernel_dilation, ((1,), (2,), (4,)))
    self.assertEqual(model.hilbert.local_size, 3)
    self.assertEqual(model.spec.features, (16, 16, 3))

  def test_file_with_arguments(self):
    path = os.path.join(ROOT, "configs", "arnn_conv2d.py")
    cfg = registry.get_config(f"{path}:fast=True,L=8")
    self.assertEqual(cfg.to_dict(),
                     registry.get_config("fast_arnn_conv2d:L=8").to_dict())
    self.assertEqual(registry.get_config(path).to_dict(),
                     registry.get_config("arnn_conv2d").to_dict())

  @parameterized.named_parameters(
      ("bad_key", "fast_arnn_conv1d:featurs=3",
       "unknown argument 'featurs' in 'featurs=3' (did you mean 'features'?); "
       "known keys: L, activation, dilation, dtype, fast, features, hilbert, "
       "kernel, layers, machine_pow, n_max, pbc, symmetries, tiny, total"),
      ("bad_type", "fast_arnn_conv2d:L=big",
       "argument L='big' is not an int (the type of its default 8)"),
      ("unknown_name", "fast_arnn_conv3d:L=4",
       "unknown config name 'fast_arnn_conv3d'; closest registered names: "
       "fast_arnn_conv2d, fast_arnn_conv1d"),
      ("missing_file", "no/such/config.py:L=4",
       "config file 'no/such/config.py' (from spec 'no/such/config.py:L=4') "
       "does not exist"),
      ("not_a_spec", "", "spec must be a registered name"),
  )
  def test_errors(self, spec, message):
    with self.assertRaisesRegex(ValueError, re.escape(message)):
      registry.get_config(spec)

  def test_file_must_define_get_config(self):
    path = os.path.join(temporary_directory(self), "empty.py")
    with open(path, "w") as f:
      f.write("X = 1\n")
    with self.assertRaisesRegex(ValueError, "has no get_config"):
      registry.get_config(path)

  def test_any_type_fields_take_any_type(self):
    cfg = registry.get_config("fast_arnn_conv1d")
    cfg.lock()
    for value in ((32, 16, 8), ("log", 64), 8):
      cfg.model.features = value
      self.assertEqual(cfg.model.features, value)
    cfg.model.kernel_dilation = "wavenet"
    cfg.model.layers = 3
    self.assertEqual(build.model(cfg).spec.kernel_dilation, ((1,), (2,), (4,)))


class RegistryTest(parameterized.TestCase):

  def test_duplicate_name_raises(self):
    r = registry.Registry(group=None, builtins=None)
    r.register("mine", base.variants(configs.arnn_conv1d.ARGS, {"x": {}},
                                     configs.arnn_conv1d.config_from_args)["x"])
    with self.assertRaisesRegex(
        ValueError, r"config name 'mine' is already registered \(by "
        r"configs\.arnn_conv1d\.get_config\[x\]\); pick another name"):
      r.register("mine", lambda arg=None: config_dict.ConfigDict())

  def test_builtin_names_cannot_be_taken(self):
    with self.assertRaisesRegex(
        ValueError, "'fast_arnn_conv1d' is already registered"):
      registry.register("fast_arnn_conv1d", lambda arg=None: None)

  def test_decorator_and_module(self):
    r = registry.Registry(group=None, builtins=None)

    @r.register("decorated")
    def get_config(arg=None):
      return config_dict.ConfigDict(dict(arg=arg))

    self.assertEqual(get_config("a").arg, "a")
    r.register("module", configs.arnn_dense)
    self.assertEqual(r.names(), ["decorated", "module"])
    self.assertEqual(r.get_config("decorated:x=1").arg, "x=1")
    self.assertIsNone(r.get_config("decorated").arg)
    self.assertEqual(r.get_config("module:L=4").lattice.shape, (4,))
    self.assertIn("module", r)
    self.assertNotIn("other", r)

  @parameterized.parameters("", "a:b", "cfg.py", "9lives", "with space", None)
  def test_bad_names(self, name):
    r = registry.Registry(group=None, builtins=None)
    with self.assertRaisesRegex(ValueError, "must start with a letter"):
      r.register(name, lambda arg=None: config_dict.ConfigDict())

  def test_get_config_must_return_config_dict(self):
    r = registry.Registry(group=None, builtins=None)
    r.register("plain", lambda: {"a": 1})
    with self.assertRaisesRegex(
        ValueError, "must return an ml_collections ConfigDict, got dict"):
      r.get_config("plain")

  def test_builtins_load_on_first_lookup(self):
    r = registry.Registry(group=None, builtins=f"{__name__}:_count_builtins")
    _count_builtins.calls = 0
    self.assertEqual(_count_builtins.calls, 0)
    self.assertIn("counted", r)
    self.assertEqual(r.names(), ["counted"])
    self.assertEqual(_count_builtins.calls, 1)


def _count_builtins(r):
  _count_builtins.calls += 1
  r.register("counted", lambda arg=None: config_dict.ConfigDict())


# A plugin distribution: its package, and its .dist-info with entry points.
PLUGIN = '''
"""A third-party package that adds configs to arnn-zoo."""

from zoo import registry as zoo_registry


def small_conv1d(arg=None):
  """The built-in fast conv1d, narrower; takes the same arguments."""
  cfg = zoo_registry.get_config("fast_arnn_conv1d" + (":" + arg if arg else ""))
  cfg.model.features = 5
  return cfg


def register_configs(registry):
  registry.register("demo_small_conv1d", small_conv1d)
'''
BROKEN_IMPORT = "import a_module_that_does_not_exist\n"
BROKEN_MIDWAY = '''
def register_configs(registry):
  registry.register("demo_half_registered", lambda arg=None: None)
  raise RuntimeError("demo failure after one registration")
'''


def temporary_directory(test):
  """A directory removed after `test` (absltest's needs parsed flags)."""
  directory = tempfile.TemporaryDirectory()
  test.addCleanup(directory.cleanup)
  return directory.name


def write_distribution(root, group):
  """Writes zoo_demo_plugins-0.1 into `root` with three entry points."""
  modules = {"zoo_demo_plugin": PLUGIN, "zoo_demo_broken": BROKEN_IMPORT,
             "zoo_demo_midway": BROKEN_MIDWAY}
  for module, source in modules.items():
    with open(os.path.join(root, f"{module}.py"), "w") as f:
      f.write(textwrap.dedent(source))
  info = os.path.join(root, "zoo_demo_plugins-0.1.dist-info")
  os.makedirs(info)
  with open(os.path.join(info, "METADATA"), "w") as f:
    f.write("Metadata-Version: 2.1\nName: zoo-demo-plugins\nVersion: 0.1\n")
  with open(os.path.join(info, "entry_points.txt"), "w") as f:
    f.write(f"[{group}]\n"
            "demo = zoo_demo_plugin:register_configs\n"
            "broken = zoo_demo_broken:register_configs\n"
            "midway = zoo_demo_midway:register_configs\n")


class PluginTest(absltest.TestCase):
  GROUP = "arnn_zoo_test.configs"

  def setUp(self):
    super().setUp()
    self.root = temporary_directory(self)
    write_distribution(self.root, self.GROUP)
    sys.path.insert(0, self.root)
    self.addCleanup(sys.path.remove, self.root)
    for module in ("zoo_demo_plugin", "zoo_demo_broken", "zoo_demo_midway"):
      self.addCleanup(sys.modules.pop, module, None)

  def test_discovery_and_broken_plugins(self):
    r = registry.Registry(group=self.GROUP)
    # Not assertWarns: it touches every module's __warningregistry__, which
    # haiku.experimental.flax refuses without flax installed.
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      names = r.names()
    self.assertTrue(all(w.category is registry.PluginWarning for w in caught))
    messages = sorted(str(w.message) for w in caught)
    self.assertLen(messages, 2)
    self.assertRegex(messages[0], r"plugin 'broken' "
                     r"\(zoo_demo_broken:register_configs\) "
                     r"from distribution 'zoo-demo-plugins' failed and is skipped: "
                     r"ModuleNotFoundError")
    self.assertRegex(messages[1], r"plugin 'midway' .* RuntimeError: demo failure")
    self.assertIn("demo_small_conv1d", names)
    self.assertNotIn("demo_half_registered", names)  # Rolled back.
    self.assertLessEqual(set(BUILTINS), set(names))
    cfg = r.get_config("demo_small_conv1d:L=6")
    self.assertEqual(build.model(cfg).spec.features, (5, 5, 5, 2))
    # Loaded once: a second lookup neither reloads nor warns again.
    with warnings.catch_warnings(record=True) as again:
      warnings.simplefilter("always")
      self.assertEqual(r.load_plugins(), [])
    self.assertEmpty(again)

  @pytest.mark.slow
  def test_plugin_through_the_command(self):
    """The real group, in a fresh interpreter: lazy, and seen by the CLI."""
    root = temporary_directory(self)
    write_distribution(root, registry.ENTRY_POINT_GROUP)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, ROOT]))
    script = textwrap.dedent("""
        import sys, warnings
        import zoo
        from zoo import registry
        lazy = [m for m in ("configs", "zoo_demo_plugin") if m in sys.modules]
        with warnings.catch_warnings(record=True) as caught:
          warnings.simplefilter("always")
          names = registry.names()
        print(lazy, "demo_small_conv1d" in names, len(caught))
    """)
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    self.assertEqual(out.stdout.strip(), "[] True 2")
    out = subprocess.run(
        [sys.executable, "-m", "experiments.catalog", "describe",
         "--config=demo_small_conv1d:L=7", "--config.model.layers=2",
         "--config.model.kernel_dilation=wavenet"],
        env=env, cwd=ROOT, capture_output=True, text=True)
    self.assertEqual(out.returncode, 0, out.stderr)
    self.assertIn("model.features = 5", out.stdout)
    self.assertIn("features=(5, 2)", out.stdout)
    self.assertIn("shape=(7,)", out.stdout)
    self.assertIn("dilation per layer: 1,2", out.stdout)
    self.assertIn("plugin 'broken'", out.stderr)


class BuildTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("unknown_model_field", "model.featurs", 3,
       "model.featurs=3: is not a known field; known: family, fast, symmetries, "
       "layers"),
      ("family", "model.family", "conv3d",
       "model.family='conv3d': must be one of 'dense', 'conv1d', 'conv2d'"),
      ("layers", "model.layers", 0,
       "model.layers=0: must be a positive integer"),
      ("features", "model.features", ("cone", 8),
       "model.features[0]='cone': must be one of 'pyramid', 'log'"),
      ("dilation", "model.kernel_dilation", "doubling",
       "model.kernel_dilation='doubling': must be one of 'wavenet'"),
      ("kind", "hilbert.kind", "qubit", "hilbert.kind='qubit': must be one of"),
      ("n_max_on_spins", "hilbert.n_max", 3,
       "hilbert.n_max=3: applies only to kind='fock' (kind='spin_half')"),
      ("model_checks", "model.param_dtype", "int32",
       "model.param_dtype='int32': must be one of"),
      ("shape", "lattice.shape", (6, 0),
       "lattice.shape=(6, 0): must be (N,) or (Lx, Ly)"),
  )
  def test_errors_name_the_field(self, path, value, message):
    cfg = registry.get_config("fast_arnn_conv1d:L=6")
    section, field = path.split(".")
    cfg[section][field] = value
    with self.assertRaisesRegex(ValueError, re.escape(message)):
      build.model(cfg)

  def test_needs_its_sections(self):
    cfg = registry.get_config("fast_arnn_conv1d:L=6")
    del cfg["lattice"]
    with self.assertRaisesRegex(
        ValueError, r"lattice=None: must be a config section; the config has "
        r"the fields \['hilbert', 'model'\]"):
      build.model(cfg)

  def test_hilbert_kinds(self):
    cfg = registry.get_config("fast_arnn_conv1d:L=6")
    cfg.hilbert.kind = "custom"
    cfg.hilbert.local_states = (0.0, 0.5, 1.0)
    self.assertEqual(build.model(cfg).hilbert.local_states, (0.0, 0.5, 1.0))
    cfg.hilbert.local_states = None
    with self.assertRaisesRegex(
        ValueError, "hilbert.local_states=None: is required for kind='custom'"):
      build.model(cfg)
    cfg.hilbert.kind = "fock"
    with self.assertRaisesRegex(
        ValueError, "hilbert.n_max=None: must be a positive integer"):
      build.model(cfg)

  def test_hilbert_total(self):
    cfg = registry.get_config("fast_arnn_conv2d:L=4")
    self.assertIsNone(cfg.hilbert.total)
    cfg.hilbert.total = 0
    self.assertEqual(build.model(cfg).hilbert, zoo.spin_half((4, 4), total_sz=0))
    self.assertEqual(
        config_tools.config_from_json(cfg.to_json()).hilbert.total, 0)
    cfg.hilbert.total = 1
    with self.assertRaisesRegex(
        ValueError, r"hilbert.total=1: is not a sum of 16 local states"):
      build.model(cfg)
    # Shrinking to 3 x 3 (odd) moves the total to the nearest reachable one.
    cfg.hilbert.total = 0
    tiny = config_tools.shrink(cfg)
    self.assertEqual((tiny.lattice.shape, tiny.hilbert.total), ((3, 3), -1.0))
    fock = registry.get_config("fast_arnn_conv1d:hilbert=fock,n_max=3,L=10")
    fock.hilbert.total = 25
    tiny = config_tools.shrink(fock)  # 6 sites of n_max 2
    self.assertEqual(build.model(tiny).hilbert.total, 12.0)

  def test_shrink(self):
    tiny = config_tools.shrink(registry.get_config("fast_arnn_dense_explicit"))
    self.assertEqual(tiny.lattice.shape, (config_tools.TINY_SITES_1D,))
    self.assertEqual(build.model(tiny).spec.features, (4, 4, 2))
    tiny = config_tools.shrink(
        registry.get_config("fast_arnn_conv2d:hilbert=fock,n_max=2,L=10,"
                            "layers=6"))
    self.assertEqual(tiny.lattice.shape, (3, 3))
    self.assertEqual(tiny.hilbert.n_max, 2)
    self.assertEqual(tiny.model.layers, 3)
    cfg = registry.get_config("fast_arnn_conv1d:layers=5,dilation=1:2:4:8:16")
    self.assertEqual(config_tools.shrink(cfg).model.kernel_dilation, (1, 2, 4))
    self.assertEqual(cfg.model.kernel_dilation, (1, 2, 4, 8, 16))  # A copy.


class ConfigFlagTest(absltest.TestCase):

  def test_name_file_and_default(self):
    flag_values = flags.FlagValues()
    experiments.define_config_flag("config", flag_values=flag_values)
    flag_values(["prog", "--config=fast_arnn_conv1d:L=8"])
    self.assertEqual(flag_values.config.lattice.shape, (8,))
    self.assertTrue(flag_values.config.is_locked)
    path = os.path.join(ROOT, "configs", "arnn_conv2d.py")
    flag_values = flags.FlagValues()
    experiments.define_config_flag("config", flag_values=flag_values)
    flag_values(["prog", f"--config={path}:fast=True,L=5"])
    self.assertEqual(flag_values.config.lattice.shape, (5, 5))
    flag_values = flags.FlagValues()
    experiments.define_config_flag("cfg", default="arnn_dense:L=4",
                                   flag_values=flag_values)
    flag_values(["prog"])
    self.assertEqual(flag_values.cfg.lattice.shape, (4,))

  def test_bad_spec_names_argument(self):
    flag_values = flags.FlagValues()
    experiments.define_config_flag("config", flag_values=flag_values)
    with self.assertRaisesRegex(flags.IllegalFlagValueError,
                                "argument L='x' is not an int"):
      flag_values(["prog", "--config=fast_arnn_conv1d:L=x"])


class CommandTest(absltest.TestCase):

  def test_list(self):
    table, failures = catalog.list_table(NAMES)
    self.assertEqual(failures, [])
    lines = table.splitlines()
    self.assertEqual(lines[0].split(), list(catalog.LIST_HEADER))
    self.assertLen(lines, len(NAMES) + 2)
    row = next(line for line in lines
               if line.startswith("fast_arnn_conv1d_dilated "))
    self.assertEqual(row.split(), ["fast_arnn_conv1d_dilated", "conv1d", "yes",
                                   "spin_half", "32", "5", "16,16,16,16,2", "2",
                                   "1,2,4,8,16", "float64", "1,698"])

  def test_describe(self):
    cfg = registry.get_config("fast_arnn_conv2d_dilated:L=4")
    text = catalog.describe(cfg)
    self.assertIn("model.kernel_dilation = 'wavenet'", text)
    self.assertIn("dilation per layer: 1x1,2x2,4x4,8x8", text)
    self.assertRegex(text, r"arnn_conv2d/~/layer_1\s+kernel\s+\(2, 3, 16, 16\)\s+"
                     r"float64\s+1,536\s+12,288")
    self.assertIn("total: 3,410 parameters, 26.6 KiB", text)

  def test_validate_names_each_failure(self):
    bad_file = os.path.join(temporary_directory(self), "bad.py")
    with open(bad_file, "w") as f:
      f.write("from zoo import registry\n"
              "def get_config(arg=None):\n"
              "  cfg = registry.get_config('fast_arnn_dense')\n"
              "  cfg.model.layers = 0\n"
              "  return cfg\n")
    out = open(os.devnull, "w")
    self.addCleanup(out.close)
    failures = catalog.validate(
        ["fast_arnn_conv1d:L=5", "no_such_config", bad_file], out=out)
    self.assertLen(failures, 2)
    self.assertStartsWith(
        failures[0], "no_such_config: ValueError: unknown config name")
    self.assertEqual(failures[1], f"{bad_file}: FieldError: model.layers=0: "
                     "must be a positive integer")


if __name__ == "__main__":
  absltest.main()
