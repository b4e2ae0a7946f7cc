"""Launchers: absl programs; the only place with flags, printing and files.

`define_config_flag` gives a launcher a config flag that takes a registered
name as well as a config file:

  --config=fast_arnn_conv2d_dilated              a registered name
  --config=fast_arnn_conv1d:L=64,features=32     a name with arguments
  --config=configs/arnn_conv2d.py:fast=True,L=8  a file (absl convention)
  --config.model.features=32                     then any field override

Overrides come after the config they change and are typed by the field
(`--config.vmc.steps=100`); the fields of `zoo.config_tools.ANY_TYPE_SECTIONS`
(`lattice`, `hilbert`, `model`) take a Python literal of any type
(`--config.model.features='(32, 16)'`, `--config.lattice.shape='(4, 6)'`,
`--config.model.kernel_dilation=wavenet`).

`clean_errors` turns the errors a user can fix (a bad config value, a
workdir of another run) into one line on stderr and a non-zero exit;
`--traceback` (`define_traceback_flag`) shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from absl import flags
from ml_collections import config_flags


class _SpecParser(flags.ArgumentParser):
  """Reads a config spec through `zoo.registry.get_config`."""

  def __init__(self, lock_config: bool):
    self._lock_config = lock_config

  def flag_type(self) -> str:
    return "config spec"

  def parse(self, spec):
    from zoo import registry  # pylint: disable=g-import-not-at-top

    config = registry.get_config(spec)
    if self._lock_config:
      config.lock()
    return config


def define_config_flag(name: str = "config", default: str | None = None,
                       help_string: str | None = None,
                       flag_values: flags.FlagValues = flags.FLAGS,
                       lock_config: bool = True) -> flags.FlagHolder:
  """Defines `--<name>=SPEC` and its `--<name>.field=value` overrides.

  SPEC is anything `zoo.registry.get_config` reads: a registered name,
  `name:arg`, `path.py` or `path.py:arg`.
  """
  help_string = help_string or (
      "config: a registered name (python -m experiments.zoo list), name:arg, "
      "or path.py[:arg]; override fields with --%s.field=value" % name)
  holder = config_flags.DEFINE_config_file(
      name, None, help_string, flag_values=flag_values, lock_config=lock_config)
  # DEFINE_config_file reads files only; the same flag machinery (overrides
  # included) runs with a parser that also knows registered names.
  flag_values[name].parser = _SpecParser(lock_config)
  if default is not None:
    flag_values.set_default(name, default)
  return holder


def config_spec(flag) -> str:
  """The spec a config flag was given (`name:arg` or `path.py:arg`)."""
  return config_flags.get_config_filename(flag)


def define_traceback_flag(flag_values: flags.FlagValues = flags.FLAGS):
  flags.DEFINE_bool("traceback", False,
                    "show the Python traceback of a bad config value or "
                    "workdir instead of one line", flag_values=flag_values)


@contextlib.contextmanager
def clean_errors(*errors: type[BaseException],
                 traceback: bool = False) -> Iterator[None]:
  """Ends the program with `error: <message>` (exit status 1) on `errors`,
  or lets them through with their traceback when `traceback` is set."""
  try:
    yield
  except errors as e:
    if traceback:
      raise
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
