"""Test-session settings: fast compilation, and the slow tier.

Tests check numbers, not XLA's speed, and most of their time is spent
compiling small models, so this process compiles with XLA's unoptimized
backend (about twice as fast to compile). Subprocesses the tests start get
the environment as it was.

ARNN_ZOO_TEST_CACHE=1 keeps compiled programs in a persistent cache under
.pytest_cache/, so that a second run skips most compilations. It is off by
default: in a fresh CI run JAX's cache write (serializing a CPU executable)
crashed the process with a segmentation fault once, after 24 minutes, on a
test that passes with the cache and without it when run alone.

Tiers: `pytest -m "not slow"` is the day-to-day run; the README's command
and CI run everything, one worker per core (pytest-xdist). The one tier
mechanism is the `slow` marker: on a test, a class (subprocesses: several
devices, the launcher end to end, the tools, plugin installs), or on the
second of two methods that share a check when part of a parameterized grid
is slow (the grid is split by its cases' fields, so renaming a test never
moves it between tiers).
"""

import os

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_saved_xla_flags = os.environ.get("XLA_FLAGS")
os.environ["XLA_FLAGS"] = " ".join(filter(None, (
    _saved_xla_flags, "--xla_backend_optimization_level=0")))

import jax  # noqa: E402  (after XLA_FLAGS, which the backend reads once)

import zoo  # noqa: E402, F401  (its own XLA flags join before the backend starts)

jax.devices()  # Start the CPU backend with the flags above, then restore them.
if _saved_xla_flags is None:
  del os.environ["XLA_FLAGS"]
else:
  os.environ["XLA_FLAGS"] = _saved_xla_flags

if os.environ.get("ARNN_ZOO_TEST_CACHE", "0") == "1":
  jax.config.update("jax_compilation_cache_dir",
                    os.path.join(_ROOT, ".pytest_cache", "jax-compilation"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

