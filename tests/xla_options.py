"""The XLA options the tests compile with (tests/conftest.py sets them).

Tests check numbers, not XLA's speed, and most of their time is spent
compiling small models (a test compiles tens to hundreds of programs, most
of them single operations run outside jit). XLA's CPU kernels emitted
without the fusion emitters compile in about half the time (`SUBPROCESS`:
kept in the environment, so that the subprocesses the tests start compile
that way too); the tests' own process also compiles with the unoptimized
backend (`IN_PROCESS`), and so do subprocesses on one device
(`ONE_DEVICE`, `tests.helpers.subprocess_env`), but not those on several:
in a two-device NetKet run it hung in an all-gather that one device never
reached. Together
they take about 35% off a model test's time and change no result beyond
the tests' tolerances; unfused kernels run slower, so a subprocess that
trains for minutes (the NetKet docs example) runs as a user's would
(`without_test_options`).

No imports: conftest reads this before JAX starts.
"""

SUBPROCESS = ("--xla_cpu_use_fusion_emitters=false",)
ONE_DEVICE = ("--xla_backend_optimization_level=0",)
IN_PROCESS = SUBPROCESS + ONE_DEVICE


def with_options(flags: str | None, options) -> str:
  """XLA_FLAGS with `options` added."""
  return " ".join(filter(None, (flags, *options)))


def without_test_options(flags: str | None) -> str:
  """XLA_FLAGS without any of the tests' options."""
  return " ".join(f for f in (flags or "").split() if f not in IN_PROCESS)
