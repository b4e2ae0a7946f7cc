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

A launcher starts with `experiments.run(main)` in place of `app.run(main)`:
a bad flag, an override of a field the config does not have, or a value
of the wrong type ends the command with one line on stderr that names the
field, the value and what is expected (`error: vmc.foo='1': is not a known
field; known: steps, ...`) and exit status 1, and the libraries' start-up
chatter (`quiet_libraries`) stays out of the log. `clean_errors` does the
same for the errors a user can fix later on (a bad config value, a workdir
of another run); `--traceback` (`define_traceback_flag`) shows the
traceback instead.
"""

from __future__ import annotations

import contextlib
import keyword
import logging
import re
import sys
from typing import Any, Callable, Iterator, Sequence

from absl import app
from absl import flags
from ml_collections import config_dict
from ml_collections import config_flags

from zoo import checks

# Loggers whose INFO lines tell a user nothing at start-up: JAX's search for
# backends that are not there ("Unable to initialize backend 'tpu'") and
# matplotlib's font cache ("generated new fontManager", and its warning that
# building the cache may take a moment). Their warnings of real trouble stay.
QUIET_LOGGERS = {"jax._src.xla_bridge": logging.WARNING,
                 "matplotlib.font_manager": logging.ERROR}


def overrides(name: str, argv: Sequence[str]) -> list[tuple[str, Any]]:
  """(field path, value as given) of each `--<name>.path=value` in `argv`;
  a bare `--<name>.path` gives True, `--no<name>.path` False."""
  found = []
  pattern = re.compile(r"--?(no)?%s\.([^=]+)(=(.*))?\Z" % re.escape(name))
  for arg in argv:
    match = pattern.match(arg)
    if match:
      value = match.group(4) if match.group(3) else not match.group(1)
      found.append((match.group(2), value))
  return found


def check_override(config: config_dict.ConfigDict, path: str,
                   value: Any) -> None:
  """Raises a `zoo.checks.FieldError` naming `path` unless it is a field of
  `config` that an override can set."""
  parts = path.split(".")
  section = config
  for depth, part in enumerate(parts):
    where = ".".join(parts[:depth])
    if not isinstance(section, config_dict.ConfigDict):
      raise checks.FieldError(
          path, value, f"{where} is a value, not a section of the config")
    if part not in section:
      known = ", ".join(sorted(section))
      if depth + 1 < len(parts):
        raise checks.FieldError(
            path, value, f"{'.'.join(parts[:depth + 1])} is not a known "
            f"section; known: {known}")
      raise checks.FieldError(path, value, f"is not a known field; known: "
                              f"{known}")
    if keyword.iskeyword(part):
      # ml_collections reads an override's path as a Python expression.
      raise checks.FieldError(
          path, value, f"cannot be set by a flag ({part!r} is a Python "
          "keyword); " + ("use the config's argument instead: "
                          "--config=NAME:init=VALUE" if path == "init.from"
                          else "set it in the config"))
    section = section[part]
  if isinstance(section, config_dict.ConfigDict) and not (
      isinstance(value, str) and value.lstrip().startswith("{")):
    raise checks.FieldError(path, value, f"is a section; set its fields "
                            f"({path}.FIELD=VALUE), one of: "
                            f"{', '.join(sorted(section))}")


class _SpecParser(flags.ArgumentParser):
  """Reads a config spec through `zoo.registry.get_config`, then checks the
  command line's overrides of it (`check_override`)."""

  def __init__(self, name: str, lock_config: bool):
    self._name = name
    self._lock_config = lock_config

  def flag_type(self) -> str:
    return "config spec"

  def parse(self, spec):
    from zoo import registry  # pylint: disable=g-import-not-at-top

    config = registry.get_config(spec)
    # ml_collections applies the overrides of sys.argv (and its flag files)
    # after this parser; a field it lacks would end in a KeyError there.
    argv = flags.FLAGS.read_flags_from_files(sys.argv, force_gnu=False)
    for path, value in overrides(self._name, argv[1:]):
      check_override(config, path, value)
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
      "config: a registered name (python -m experiments.catalog list), name:arg, "
      "or path.py[:arg]; override fields with --%s.field=value" % name)
  holder = config_flags.DEFINE_config_file(
      name, None, help_string, flag_values=flag_values, lock_config=lock_config)
  # DEFINE_config_file reads files only; the same flag machinery (overrides
  # included) runs with a parser that also knows registered names.
  flag_values[name].parser = _SpecParser(name, lock_config)
  if default is not None:
    # Without --<name> on the command line this parses the default, and
    # checks the overrides, here and now.
    try:
      flag_values.set_default(name, default)
    except flags.Error as e:
      fail(flag_error_message(e, flag_values))
  return holder


def config_spec(flag) -> str:
  """The spec a config flag was given (`name:arg` or `path.py:arg`)."""
  return config_flags.get_config_filename(flag)


def define_traceback_flag(flag_values: flags.FlagValues = flags.FLAGS):
  flags.DEFINE_bool("traceback", False,
                    "show the Python traceback of a bad config value or "
                    "workdir instead of one line", flag_values=flag_values)


def fail(message: str) -> None:
  """Ends the program with `error: <message>` on stderr and exit status 1."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(1)


# What an override's value must be, by the parser its field's type chose.
_EXPECTED = ((flags.BooleanParser, "must be True or False"),
             (flags.IntegerParser, "must be an integer"),
             (flags.FloatParser, "must be a number"))


def flag_error_message(error: flags.Error,
                       flag_values: flags.FlagValues = flags.FLAGS) -> str:
  """One line for a flag that did not parse: the `FieldError` behind it
  when there is one, else the field (or flag), the value and absl's
  reason."""
  cause = error
  while cause is not None:
    if isinstance(cause, checks.FieldError):
      return str(cause)
    cause = cause.__cause__ or cause.__context__
  message = " ".join(str(error).split())
  match = re.match(r"flag --([^=]+)=(.*?): (.*)\Z", message)
  if not match:
    return message
  name, value, reason = match.groups()
  field = name.partition(".")[2] if "." in name else None
  if field and name in flag_values:
    parser = flag_values[name].parser
    for kind, expected in _EXPECTED:
      if isinstance(parser, kind):
        return str(checks.FieldError(field, value, expected))
    return str(checks.FieldError(field, value, reason))
  return f"--{name}={value}: {reason}"


def parse_flags(argv: Sequence[str],
                flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """absl's flag parsing, ending a bad flag in one line (`fail`)."""
  try:
    return flag_values(argv)
  except flags.Error as e:
    fail(flag_error_message(e, flag_values))


def quiet_libraries() -> None:
  """Raises the level of `QUIET_LOGGERS`: their start-up lines say nothing
  a user needs."""
  for name, level in QUIET_LOGGERS.items():
    logging.getLogger(name).setLevel(level)


def run(main: Callable[[list[str]], Any]) -> None:
  """`absl.app.run(main)` with one-line flag errors (`parse_flags`), an
  unexpected argument (`app.UsageError`) as one line, and a quiet start."""
  quiet_libraries()

  def main_with_clean_usage(argv):
    try:
      return main(argv)
    except app.UsageError as e:
      message = str(e)
      if "\n" in message:  # a usage text of its own
        print(message, file=sys.stderr, flush=True)
        sys.exit(e.exitcode)
      fail(f"{message} (--helpshort lists the flags)")

  app.run(main_with_clean_usage, flags_parser=parse_flags)


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
    fail(str(e))
