"""The docs: their code runs, their site builds, and they keep to the product.

Every fenced block of README.md and docs/ in a language of `RUN` is
executed, in order, one test per file: Python blocks in one namespace per
file (in this process), shell blocks with bash (`set -euo pipefail`), both
in a scratch folder that links to the repository's packages, so that
`python -m experiments.vmc` and relative paths work there and workdirs do
not land in the checkout. Where a block would run long it shows its
shrinking itself (`:tiny=True`, `--config.vmc.steps=2`, `n_iter=2`).

A block that is not meant to run here follows a visible marker on the line
before its fence, `<!-- docs-test: skip: WHY -->` (a fresh virtualenv, a
pip install, several hosts, or a block that another test runs as written:
docs/netket.md's training, which tests/test_netket.py runs and checks).
A block that repeats one of another page
follows `<!-- docs-test: same as PAGE -->` and runs there only (the test
checks that PAGE holds it, character for character), so that each costly
example compiles once. The README's opening block, the two set-up
commands, is the one exception by rule: `.ci/run` runs them itself
(`tests/test_repo.py` keeps the two in step), and nothing may stand before
them. A file that needs an optional package says so once,
`<!-- docs-test: requires netket -->`, and is skipped without it.

`test_site_builds_in_strict_mode` builds the site with `mkdocs build
--strict` (broken links, anchors and API references fail) when the `docs`
extra is installed.
"""

import importlib.util
import os
import re
import subprocess
import sys
import tempfile

from absl.testing import absltest, parameterized
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
RUN = {"python": "python", "bash": "shell", "sh": "shell", "shell": "shell"}
# Fenced blocks that are shown, never run.
SHOWN = ("text", "toml", "yaml", "json")
# The scratch folder links to these, as a checkout of the repository would
# have them.
LINKED = ("configs", "experiments", "zoo", "tests", "docs",
          "pyproject.toml", "mkdocs.yml", "README.md")
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`\n]*)\n(?P<body>.*?)"
                   r"^(?P=indent)```[ \t]*$", re.M | re.S)
SKIP = re.compile(r"<!-- docs-test: skip: (?P<why>[^>]*?) -->\s*\Z")
SAME = re.compile(r"<!-- docs-test: same as (?P<page>\S+) -->\s*\Z")
REQUIRES = re.compile(r"<!-- docs-test: requires (?P<module>[\w.]+) -->")
SHELL_TIMEOUT_S = 600
README_MAX_LINES = 150
# Commit hashes and the project's history have no place in the docs.
HISTORY = re.compile(r"\bsession \d|\bsessions?\b|\b(?=[0-9a-f]*\d)"
                     r"(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b", re.I)


def doc_files() -> list[str]:
  """README.md and every page of docs/, relative to the root."""
  pages = [os.path.relpath(os.path.join(folder, name), ROOT)
           for folder, _, names in os.walk(DOCS) for name in names
           if name.endswith(".md")]
  return ["README.md"] + sorted(pages)


def blocks(path: str):
  """(line, language, code, skip reason or None) of each fenced block."""
  with open(os.path.join(ROOT, path)) as f:
    text = f.read()
  found = []
  for match in FENCE.finditer(text):
    line = text.count("\n", 0, match.start()) + 1
    language = match.group("info").strip().split(" ")[0]
    indent = len(match.group("indent"))
    code = "\n".join(l[indent:] for l in match.group("body").splitlines())
    before = text[:match.start()]
    skip, same = SKIP.search(before), SAME.search(before)
    why = skip.group("why") if skip else None
    if same:
      why = f"the same block runs in {same.group('page')}"
    if path == "README.md" and not found:
      why = "the set-up commands, which .ci/run runs itself"
    found.append((line, language, code + "\n", why))
  return found


def same_as(path: str) -> list[tuple[int, str, str]]:
  """(line, code, page) of each block marked as the same as one of
  another page (`<!-- docs-test: same as PAGE -->`)."""
  with open(os.path.join(ROOT, path)) as f:
    text = f.read()
  return [(text.count("\n", 0, match.start()) + 1, match.group("body"),
           same.group("page"))
          for match in FENCE.finditer(text)
          for same in [SAME.search(text[:match.start()])] if same]


def scratch_folder() -> str:
  """A folder that looks like the checkout: links to its packages."""
  folder = tempfile.mkdtemp(prefix="arnn-zoo-docs-")
  for name in LINKED:
    if os.path.exists(os.path.join(ROOT, name)):
      os.symlink(os.path.join(ROOT, name), os.path.join(folder, name))
  return folder


def shell_env() -> dict:
  """This interpreter first on PATH (`python` is the venv's); the CPU; and
  XLA's unoptimized backend, as the tests' own process compiles (see
  tests/conftest.py): the blocks check that commands work, not their
  speed."""
  env = dict(os.environ)
  env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
  env["JAX_PLATFORMS"] = "cpu"
  env["XLA_FLAGS"] = " ".join(filter(None, (
      env.get("XLA_FLAGS"), "--xla_backend_optimization_level=0")))
  env["MPLBACKEND"] = "Agg"
  env.pop("PYTHONPATH", None)
  return env


def _named(paths):
  return [(re.sub(r"\W", "_", p[:-3]), p) for p in paths]


@pytest.mark.slow  # every block in a subprocess
class CodeBlockTest(parameterized.TestCase):

  @parameterized.named_parameters(_named(doc_files()))
  def test_blocks_run(self, path):
    with open(os.path.join(ROOT, path)) as f:
      requires = REQUIRES.findall(f.read())
    for module in requires:
      if importlib.util.find_spec(module) is None:
        self.skipTest(f"{path} needs {module}")
    folder = scratch_folder()
    namespace = {"__name__": "__docs__"}
    for line, language, code, why in blocks(path):
      if why is not None or language not in RUN:
        continue
      where = f"{path}:{line}"
      if RUN[language] == "python":
        cwd = os.getcwd()
        os.chdir(folder)
        try:
          exec(compile(code, where, "exec"), namespace)  # pylint: disable=exec-used
        finally:
          os.chdir(cwd)
      else:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code], cwd=folder,
            env=shell_env(), capture_output=True, text=True,
            timeout=SHELL_TIMEOUT_S, stdin=subprocess.DEVNULL)
        self.assertEqual(done.returncode, 0,
                         f"{where} exited {done.returncode}:\n{code}\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


class DocsRulesTest(parameterized.TestCase):

  @parameterized.named_parameters(_named(doc_files()))
  def test_every_block_is_run_or_shown_or_skipped_by_name(self, path):
    for line, language, _, _ in blocks(path):
      self.assertIn(language, tuple(RUN) + SHOWN,
                    f"{path}:{line}: a fence needs a language: one that "
                    f"runs ({', '.join(RUN)}) or one that is shown "
                    f"({', '.join(SHOWN)})")

  @parameterized.named_parameters(_named(doc_files() + ["BENCHMARKS.md"]))
  def test_no_history(self, path):
    with open(os.path.join(ROOT, path)) as f:
      for number, line in enumerate(f, 1):
        self.assertIsNone(HISTORY.search(line), f"{path}:{number}: {line}")

  @parameterized.named_parameters(_named(doc_files()))
  def test_a_block_run_elsewhere_is_the_same_there(self, path):
    for line, code, page in same_as(path):
      with open(os.path.join(ROOT, page)) as f:
        self.assertIn(code, [m.group("body") for m in FENCE.finditer(f.read())],
                      f"{path}:{line} is marked as the same as a block of "
                      f"{page}, which holds no such block")

  def test_readme_is_short(self):
    with open(os.path.join(ROOT, "README.md")) as f:
      self.assertLessEqual(len(f.readlines()), README_MAX_LINES)


@pytest.mark.slow  # MkDocs in a subprocess
class SiteTest(absltest.TestCase):

  def test_site_builds_in_strict_mode(self):
    if importlib.util.find_spec("mkdocs") is None:
      self.skipTest("the docs extra is not installed: pip install -e "
                    "'.[docs]'")
    site = tempfile.mkdtemp(prefix="arnn-zoo-site-")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         os.path.join(ROOT, "mkdocs.yml"), "--site-dir", site],
        cwd=ROOT, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        capture_output=True, text=True, timeout=600)
    self.assertEqual(done.returncode, 0, done.stdout[-3000:] +
                     done.stderr[-6000:])
    self.assertTrue(os.path.exists(os.path.join(site, "api", "index.html")))


if __name__ == "__main__":
  absltest.main()
