"""The README's two commands and CI stay in step."""

import ast
import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_commands():
  with open(os.path.join(ROOT, "README.md")) as f:
    text = f.read()
  block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
  return [line for line in block.splitlines() if line.strip()]


class RepoTest(unittest.TestCase):

  def test_readme_opens_with_two_commands(self):
    with open(os.path.join(ROOT, "README.md")) as f:
      head = f.read().split("```bash", 1)[0]
    self.assertEqual(head.strip().count("\n"), 0, "the commands come first")
    self.assertEqual(len(readme_commands()), 2)

  def test_ci_runs_the_readme_test_command(self):
    with open(os.path.join(ROOT, ".ci", "run")) as f:
      ci = [line.strip() for line in f]
    self.assertIn(readme_commands()[1], ci)


if __name__ == "__main__":
  unittest.main()


PACKAGES = ("zoo", "configs", "experiments")


def project_modules():
  """{module name: path} of every module of the three packages."""
  modules = {}
  for package in PACKAGES:
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
      for name in files:
        if name.endswith(".py"):
          path = os.path.join(folder, name)
          parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
          if parts[-1] == "__init__":
            parts = parts[:-1]
          modules[".".join(parts)] = path
  return modules


def imports_of(path, modules):
  """The project modules a module imports, wherever in the module: import
  statements, `import_module("name")`, and "module:attribute" strings,
  which the registry resolves with a computed `import_module` (its
  built-ins, "configs:register_configs")."""
  with open(path) as f:
    tree = ast.parse(f.read())
  found = set()

  def add(name):
    while name and name not in modules:
      name = name.rpartition(".")[0]
    if name:
      found.add(name)

  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        add(alias.name)
    elif isinstance(node, ast.ImportFrom) and node.module:
      for alias in node.names:
        full = f"{node.module}.{alias.name}"
        add(full if full in modules else node.module)
    elif (isinstance(node, ast.Call) and node.args
          and getattr(node.func, "attr", None) == "import_module"
          and isinstance(node.args[0], ast.Constant)):
      add(node.args[0].value)
    elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
          and re.fullmatch(r"[\w.]+:\w+", node.value)
          and node.value.partition(":")[0] in modules):
      add(node.value.partition(":")[0])
  return found


class ImportGraphTest(unittest.TestCase):

  def test_no_module_imports_another_that_imports_it_back(self):
    modules = project_modules()
    graph = {m: imports_of(p, modules) - {m} for m, p in modules.items()}
    # Sanity: the edges this test exists for are seen.
    self.assertIn("configs", graph["zoo.registry"])  # "configs:register_..."
    self.assertIn("zoo.config_tools", graph["configs.base"])
    cycles = []

    def visit(module, path, on_path, done):
      on_path.add(module)
      path.append(module)
      for other in sorted(graph[module]):
        if other in on_path:
          cycles.append(path[path.index(other):] + [other])
        elif other not in done:
          visit(other, path, on_path, done)
      path.pop()
      on_path.discard(module)
      done.add(module)

    done = set()
    for module in sorted(graph):
      if module not in done:
        visit(module, [], set(), done)
    self.assertEqual(cycles, [], "\n".join(" -> ".join(c) for c in cycles))

  def test_configs_import_no_registry(self):
    modules = project_modules()
    for module, path in modules.items():
      if module.split(".")[0] == "configs":
        zoo_imports = {m for m in imports_of(path, modules)
                       if m.split(".")[0] == "zoo"}
        self.assertLessEqual(zoo_imports, {"zoo.config_tools"}, module)
