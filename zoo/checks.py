"""Checks of argument and config values, with one error format.

Every validation in the zoo goes through here, so a bad value reads the same
wherever it is caught:

  n_samples=0: must be a positive integer

`FieldError` carries the field, the value and what was expected. A builder
that reads a config section wraps the library call in `in_section`, which
puts the section in front of the field (`vmc.n_samples=0: ...`), so the
library checks its arguments once and the config path still appears.
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any, Iterable, Iterator

import numpy as np


class FieldError(ValueError):
  """A value that does not fit its field.

  Attributes:
    field: the argument or config path, e.g. "n_samples", "vmc.n_samples",
      "features[1]".
    value: the offending value.
    expected: what the field takes, e.g. "must be a positive integer".
  """

  def __init__(self, field: str, value: Any, expected: str):
    self.field, self.value, self.expected = field, value, expected
    super().__init__(f"{field}={value!r}: {expected}")

  def within(self, section: str) -> FieldError:
    """The same error with `section.` in front of the field."""
    return FieldError(f"{section}.{self.field}", self.value, self.expected)


@contextlib.contextmanager
def in_section(section: str) -> Iterator[None]:
  """Re-raises a FieldError from the block with `section.` before its field."""
  try:
    yield
  except FieldError as e:
    raise e.within(section) from None


def is_int(value) -> bool:
  """An integer, not a bool."""
  return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value) -> bool:
  """A real number, not a bool."""
  return isinstance(value, (int, float, np.integer, np.floating)) and not (
      isinstance(value, bool))


def positive_int(field: str, value) -> int:
  """An int >= 1."""
  if not is_int(value) or value < 1:
    raise FieldError(field, value, "must be a positive integer")
  return int(value)


def non_negative_int(field: str, value) -> int:
  """An int >= 0."""
  if not is_int(value) or value < 0:
    raise FieldError(field, value, "must be an integer >= 0")
  return int(value)


def optional_positive_int(field: str, value) -> int | None:
  """None or an int >= 1."""
  if value is None:
    return None
  if not is_int(value) or value < 1:
    raise FieldError(field, value, "must be a positive integer or None")
  return int(value)


def positive_number(field: str, value) -> float:
  """A finite real number > 0."""
  if not is_number(value) or not (math.isfinite(value) and value > 0):
    raise FieldError(field, value, "must be a positive finite number")
  return float(value)


def non_negative_number(field: str, value) -> float:
  """A finite real number >= 0."""
  if not is_number(value) or not (math.isfinite(value) and value >= 0):
    raise FieldError(field, value, "must be a finite number >= 0")
  return float(value)


def finite_number(field: str, value) -> float:
  """A finite real number."""
  if not is_number(value) or not math.isfinite(value):
    raise FieldError(field, value, "must be a finite real number")
  return float(value)


def fraction(field: str, value) -> float:
  """A real number in [0, 1]."""
  if not is_number(value) or not 0 <= value <= 1:
    raise FieldError(field, value, "must be a number in [0, 1]")
  return float(value)


def boolean(field: str, value) -> bool:
  """True or False (numpy bools too)."""
  if not isinstance(value, (bool, np.bool_)):
    raise FieldError(field, value, "must be True or False")
  return bool(value)


def one_of(field: str, value, choices: Iterable) -> Any:
  """One of `choices` (a table's keys, say)."""
  choices = tuple(choices)
  # (True == 1, but a bool is no answer to a choice of numbers.)
  if not any(isinstance(value, bool) == isinstance(choice, bool)
             and value == choice for choice in choices):
    raise FieldError(field, value,
                     f"must be one of {', '.join(map(repr, choices))}")
  return value


def known_fields(section, known: Iterable[str]) -> None:
  """Every field of a config section (a mapping) is one of `known`."""
  known = tuple(known)
  unknown = sorted(set(section) - set(known))
  if unknown:
    raise FieldError(unknown[0], section[unknown[0]],
                     f"is not a known field; known: {', '.join(known)}")


_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?)h)?(?:(\d+(?:\.\d*)?)m)?"
                       r"(?:(\d+(?:\.\d*)?)s)?")


def duration(field: str, value) -> float | None:
  """A wall-clock duration in seconds: "90s", "30m", "2h", "1h30m" (hours,
  minutes, seconds, each optional and in that order); "" or None for
  none."""
  if value is None or value == "":
    return None
  match = isinstance(value, str) and _DURATION.fullmatch(value.strip())
  if not match or not any(match.groups()):
    raise FieldError(field, value,
                     'must be a duration like "90s", "30m", "2h" or "1h30m", '
                     'or "" for none')
  hours, minutes, seconds = (float(g or 0) for g in match.groups())
  total = 3600 * hours + 60 * minutes + seconds
  if not total > 0:
    raise FieldError(field, value, "must be a positive duration")
  return total
