"""Test-session settings: fast compilation, and the slow tier.

Everything the tests compile uses XLA options that compile faster
(tests/xla_options.py): this process `IN_PROCESS`, the subprocesses it
starts `SUBPROCESS` (kept in the environment).

Tiers: `pytest -m "not slow"` is the day-to-day run; the README's command
and CI run everything, one worker per core (pytest-xdist). The one tier
mechanism is the `slow` marker: on a test, a class (subprocesses: several
devices, the launcher end to end, the tools, plugin installs), or on the
cases of a parameterized grid that `helpers.grid` picks by their fields
(so renaming a test never moves it between tiers).
"""

import os

from tests import xla_options

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_user_flags = os.environ.get("XLA_FLAGS")
os.environ["XLA_FLAGS"] = xla_options.with_options(_user_flags,
                                                   xla_options.IN_PROCESS)

import jax  # noqa: E402  (after XLA_FLAGS, which the backend reads once)

import zoo  # noqa: E402, F401  (its own XLA flags join before the backend starts)

jax.devices()  # Start the CPU backend with the flags above, then set the
os.environ["XLA_FLAGS"] = xla_options.with_options(  # subprocesses' ones.
    _user_flags, xla_options.SUBPROCESS)

if os.environ.get("ARNN_ZOO_TEST_CACHE", "0") == "1":
  jax.config.update("jax_compilation_cache_dir",
                    os.path.join(_ROOT, ".pytest_cache", "jax-compilation"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

