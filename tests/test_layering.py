"""Import layering of jaxvssl: no cycles between modules, and every import points down the layers.

The checker reads the source with `ast` and never imports it. It collects every import of a
module of the package, at module level and inside functions (and inside `if TYPE_CHECKING:`
blocks, which count like any other import). As in import-linter, importing `jaxvssl.a.b` is an
edge to the module `jaxvssl.a.b` only, not to the package `jaxvssl.a` that Python also runs;
otherwise every package whose `__init__` imports its submodules would look cyclic.

Rules, checked on the real tree:
  1. no import cycles between modules;
  2. a module imports modules of its own layer of `LAYERS` or lower only; the packages of the
     independent layer (layer 1) never import each other; the top package `jaxvssl` imports
     nothing from jaxvssl; every module is covered by an entry of `LAYERS`.
"""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

import pytest

# Lowest first. A module belongs to the entry that equals it or is a dotted prefix of it.
LAYERS: tuple[tuple[str, ...], ...] = (
  (
    'jaxvssl.errors',
    'jaxvssl.workdir',
    'jaxvssl.tf_setup',
    'jaxvssl.parallel',
    'jaxvssl.metrics',
    'jaxvssl.optim',
    'jaxvssl.checkpointing',
  ),
  # Independent siblings: none of these imports another.
  (
    'jaxvssl.models',
    'jaxvssl.objectives',
    'jaxvssl.inputs',
    'jaxvssl.datasets',
    'jaxvssl.evaluation',
  ),
  # Weight files and PyTorch conversion: checked against the models, read by the methods.
  ('jaxvssl.interop',),
  ('jaxvssl.methods',),
  ('jaxvssl.config',),
  ('jaxvssl.state', 'jaxvssl.runs', 'jaxvssl.hub'),
  ('jaxvssl.train', 'jaxvssl.evaluate', 'jaxvssl.ablate'),
  ('jaxvssl.demo', 'jaxvssl.cli', 'jaxvssl.main', 'jaxvssl.__main__'),
)
# Layers whose entries may not import each other.
INDEPENDENT_LAYERS: tuple[int, ...] = (1,)

JAXVSSL_ROOT = Path(__file__).parents[1] / 'jaxvssl'


# --- the checker ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, order=True)
class Edge:
  """One import: `importer` imports `imported` at `path:line` (path relative to the root's parent)."""

  importer: str
  imported: str
  path: str
  line: int

  def __str__(self) -> str:
    return f'{self.importer} -> {self.imported} ({self.path}:{self.line})'


def find_modules(root: Path, package: str) -> dict[str, Path]:
  """Maps every module under `root` (the directory of `package`) to its file.

  A package's `__init__.py` is the module named after the package's directory.
  """
  modules = {}
  for path in sorted(root.rglob('*.py')):
    parts = list(path.relative_to(root).with_suffix('').parts)
    if parts[-1] == '__init__':
      parts.pop()
    modules['.'.join([package, *parts])] = path
  return modules


def _is_in_package(name: str, package: str) -> bool:
  return name == package or name.startswith(package + '.')


def _resolve(name: str, modules: Collection[str]) -> str:
  """The longest dotted prefix of `name` that is a module (`pkg.a.b.Class` -> `pkg.a.b`)."""
  while name not in modules and '.' in name:
    name = name.rpartition('.')[0]
  return name


def _imported_names(
  node: ast.Import | ast.ImportFrom, importer: str, is_package: bool
) -> list[str]:
  """Fully qualified candidate names that an import statement refers to.

  For `from base import x` both `base.x` (if x is a submodule) and `base` are candidates: the
  caller keeps `base.x` when it is a module and falls back to `base` otherwise.
  """
  if isinstance(node, ast.Import):
    return [alias.name for alias in node.names]
  if node.level:
    # Relative: `.` is the importing module's package, each further dot one package up.
    parts = importer.split('.') if is_package else importer.split('.')[:-1]
    up = node.level - 1
    if up >= len(parts):
      return []  # beyond the top-level package: not an import of this package
    base = '.'.join(parts[: len(parts) - up] + ([node.module] if node.module else []))
  else:
    base = node.module or ''
  return [base if alias.name == '*' else f'{base}.{alias.name}' for alias in node.names]


def collect_imports(root: Path, package: str) -> list[Edge]:
  """Every import of a module of `package` by a module under `root`, anywhere in the file."""
  modules = find_modules(root, package)
  edges = set()
  for importer, path in modules.items():
    tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
    is_package = path.name == '__init__.py'
    shown_path = path.relative_to(root.parent).as_posix()
    for node in ast.walk(tree):
      if not isinstance(node, (ast.Import, ast.ImportFrom)):
        continue
      for name in _imported_names(node, importer, is_package):
        if not _is_in_package(name, package):
          continue
        imported = _resolve(name, modules)
        if imported != importer:
          edges.add(Edge(importer, imported, shown_path, node.lineno))
  return sorted(edges)


def _strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[set[str]]:
  """Tarjan's strongly connected components, iteratively (no recursion limit)."""
  index: dict[str, int] = {}
  low: dict[str, int] = {}
  stack: list[str] = []
  on_stack: set[str] = set()
  components: list[set[str]] = []

  def visit(node: str) -> tuple[str, Iterable[str]]:
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    return node, iter(sorted(graph.get(node, ())))

  nodes = sorted(set(graph) | {w for successors in graph.values() for w in successors})
  for start in nodes:
    if start in index:
      continue
    work = [visit(start)]
    while work:
      node, successors = work[-1]
      for succ in successors:
        if succ not in index:
          work.append(visit(succ))
          break
        if succ in on_stack:
          low[node] = min(low[node], index[succ])
      else:
        work.pop()
        if work:
          parent = work[-1][0]
          low[parent] = min(low[parent], low[node])
        if low[node] == index[node]:
          component = set()
          while True:
            member = stack.pop()
            on_stack.discard(member)
            component.add(member)
            if member == node:
              break
          components.append(component)
  return components


def find_cycles(edges: Iterable[Edge]) -> list[list[Edge]]:
  """One entry per import cycle (strongly connected component): the edges inside it, sorted."""
  edges = list(edges)
  graph: dict[str, set[str]] = defaultdict(set)
  for edge in edges:
    graph[edge.importer].add(edge.imported)
  cycles = []
  for component in _strongly_connected(graph):
    if len(component) > 1:
      cycles.append(sorted(e for e in edges if e.importer in component and e.imported in component))
  return sorted(cycles)


def layer_of(module: str, layers: Sequence[Sequence[str]]) -> tuple[int, str] | None:
  """(layer index, entry) of the most specific entry covering `module`, or None."""
  best = None
  for level, entries in enumerate(layers):
    for entry in entries:
      if _is_in_package(module, entry) and (best is None or len(entry) > len(best[1])):
        best = (level, entry)
  return best


def layer_violations(
  edges: Iterable[Edge],
  layers: Sequence[Sequence[str]],
  independent: Collection[int] = INDEPENDENT_LAYERS,
) -> list[Edge]:
  """Edges that point up the layers, between independent siblings, or out of the top package.

  The top package (the first dotted component of the table's names) must import nothing of
  itself, so every module may import it. Edges from or to a module that no entry covers are left
  to `uncovered_modules`.
  """
  top = layers[0][0].partition('.')[0]
  violations = []
  for edge in edges:
    if edge.importer == top:
      violations.append(edge)
      continue
    source, target = layer_of(edge.importer, layers), layer_of(edge.imported, layers)
    if edge.imported == top or source is None or target is None:
      continue
    upward = target[0] > source[0]
    sibling = source[0] == target[0] and source[0] in independent and source[1] != target[1]
    if upward or sibling:
      violations.append(edge)
  return sorted(violations)


def uncovered_modules(modules: Iterable[str], layers: Sequence[Sequence[str]]) -> list[str]:
  """Modules (other than the top package) that no entry of `layers` covers."""
  top = layers[0][0].partition('.')[0]
  return sorted(m for m in modules if m != top and layer_of(m, layers) is None)


def _failure(title: str, lines: Iterable[str]) -> str:
  return title + ':\n  ' + '\n  '.join(lines)


# --- the real tree ---------------------------------------------------------------------------


def test_jaxvssl_has_no_import_cycles():
  assert (JAXVSSL_ROOT / '__init__.py').is_file()
  edges = collect_imports(JAXVSSL_ROOT, 'jaxvssl')
  assert edges, 'found no jaxvssl imports at all: is the checker reading the right tree?'
  cycles = find_cycles(edges)
  if cycles:
    blocks = [_failure(f'cycle {i} ({len(c)} edges)', map(str, c)) for i, c in enumerate(cycles, 1)]
    pytest.fail('import cycles in jaxvssl:\n' + '\n'.join(blocks))


def test_jaxvssl_respects_layers():
  assert (JAXVSSL_ROOT / '__init__.py').is_file()
  modules = find_modules(JAXVSSL_ROOT, 'jaxvssl')
  edges = collect_imports(JAXVSSL_ROOT, 'jaxvssl')
  problems = []
  top_imports = [str(e) for e in edges if e.importer == 'jaxvssl']
  if top_imports:
    problems.append(_failure('jaxvssl/__init__.py must import nothing from jaxvssl', top_imports))
  violations = [str(e) for e in layer_violations(edges, LAYERS) if e.importer != 'jaxvssl']
  if violations:
    problems.append(_failure('imports up the layers or between layer-1 siblings', violations))
  uncovered = [f'{m} (add it to LAYERS)' for m in uncovered_modules(modules, LAYERS)]
  if uncovered:
    problems.append(_failure('modules no entry of LAYERS covers', uncovered))
  if problems:
    pytest.fail('\n'.join(problems))


# --- tests of the checker, on fake trees -----------------------------------------------------

FAKE_LAYERS = tuple(
  tuple(entry.replace('jaxvssl', 'pkg', 1) for entry in entries) for entries in LAYERS
)


def _make_tree(tmp_path: Path, files: Mapping[str, str]) -> Path:
  """Writes `files` (paths relative to `tmp_path`) and returns the root `tmp_path / 'pkg'`."""
  for relative, source in files.items():
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding='utf-8')
  return tmp_path / 'pkg'


def test_find_cycles_reports_a_cycle_through_a_function_level_import(tmp_path):
  root = _make_tree(
    tmp_path,
    {
      'pkg/__init__.py': '',
      'pkg/a.py': """\
        import os

        def f():
          import pkg.b
          return pkg.b
        """,
      'pkg/b.py': 'from pkg import a\n',
      'pkg/c.py': 'import pkg.a\n',
    },
  )
  edges = collect_imports(root, 'pkg')
  a_to_b = Edge('pkg.a', 'pkg.b', 'pkg/a.py', 4)
  b_to_a = Edge('pkg.b', 'pkg.a', 'pkg/b.py', 1)
  assert edges == [a_to_b, b_to_a, Edge('pkg.c', 'pkg.a', 'pkg/c.py', 1)]
  assert find_cycles(edges) == [[a_to_b, b_to_a]]
  assert str(a_to_b) == 'pkg.a -> pkg.b (pkg/a.py:4)'


def test_package_init_importing_its_submodules_is_not_a_cycle(tmp_path):
  root = _make_tree(
    tmp_path,
    {
      'pkg/__init__.py': '',
      'pkg/models/__init__.py': 'from pkg.models import x, y\n',
      'pkg/models/x.py': 'import pkg.models.y\n',
      'pkg/models/y.py': 'from pkg.models.norm import Norm\n',
      'pkg/models/norm.py': 'class Norm:\n  pass\n',
    },
  )
  edges = collect_imports(root, 'pkg')
  assert edges == [
    Edge('pkg.models', 'pkg.models.x', 'pkg/models/__init__.py', 1),
    Edge('pkg.models', 'pkg.models.y', 'pkg/models/__init__.py', 1),
    Edge('pkg.models.x', 'pkg.models.y', 'pkg/models/x.py', 1),
    Edge('pkg.models.y', 'pkg.models.norm', 'pkg/models/y.py', 1),
  ]
  assert find_cycles(edges) == []


def test_find_cycles_reports_every_edge_of_a_longer_cycle(tmp_path):
  root = _make_tree(
    tmp_path,
    {
      'pkg/__init__.py': '',
      'pkg/a.py': 'from pkg import b\n',
      'pkg/b.py': 'from pkg.c import thing\n',
      'pkg/c.py': 'thing = 1\nimport pkg.a as a\n',
      'pkg/d.py': 'import pkg.e\n',
      'pkg/e.py': 'import pkg.d\n',
    },
  )
  assert find_cycles(collect_imports(root, 'pkg')) == [
    [
      Edge('pkg.a', 'pkg.b', 'pkg/a.py', 1),
      Edge('pkg.b', 'pkg.c', 'pkg/b.py', 1),
      Edge('pkg.c', 'pkg.a', 'pkg/c.py', 2),
    ],
    [Edge('pkg.d', 'pkg.e', 'pkg/d.py', 1), Edge('pkg.e', 'pkg.d', 'pkg/e.py', 1)],
  ]


def test_relative_imports_resolve_against_the_importing_package(tmp_path):
  root = _make_tree(
    tmp_path,
    {
      'pkg/__init__.py': '',
      'pkg/errors.py': 'class Error(Exception):\n  pass\n',
      'pkg/models/__init__.py': 'from . import resnet\nfrom .resnet import ResNet\n',
      'pkg/models/norm.py': 'NORM = 1\n',
      'pkg/models/resnet.py': """\
        from . import norm, helper
        from .. import errors
        from ..errors import Error

        def f():
          from ..methods.base import Method
          return Method
        """,
      'pkg/methods/__init__.py': '',
      'pkg/methods/base.py': 'from ..models import *\n',
    },
  )
  edges = collect_imports(root, 'pkg')
  assert edges == [
    Edge('pkg.methods.base', 'pkg.models', 'pkg/methods/base.py', 1),
    Edge('pkg.models', 'pkg.models.resnet', 'pkg/models/__init__.py', 1),
    Edge('pkg.models', 'pkg.models.resnet', 'pkg/models/__init__.py', 2),
    Edge('pkg.models.resnet', 'pkg.errors', 'pkg/models/resnet.py', 2),
    Edge('pkg.models.resnet', 'pkg.errors', 'pkg/models/resnet.py', 3),
    Edge('pkg.models.resnet', 'pkg.methods.base', 'pkg/models/resnet.py', 6),
    # `helper` is not a module: `from . import helper` imports a name of the package itself.
    Edge('pkg.models.resnet', 'pkg.models', 'pkg/models/resnet.py', 1),
    Edge('pkg.models.resnet', 'pkg.models.norm', 'pkg/models/resnet.py', 1),
  ]
  assert layer_violations(edges, FAKE_LAYERS) == [
    Edge('pkg.models.resnet', 'pkg.methods.base', 'pkg/models/resnet.py', 6)
  ]


def test_imports_of_other_packages_with_a_similar_name_are_ignored(tmp_path):
  root = _make_tree(
    tmp_path,
    {
      'pkg/__init__.py': '',
      'pkg/a.py': 'import pkgextra\nfrom pkgextra import pkg\nimport os.path\nfrom os import sep\n',
    },
  )
  assert collect_imports(root, 'pkg') == []


def test_layer_violation_from_a_function_level_import_is_reported(tmp_path):
  root = _make_tree(
    tmp_path,
    {
      'pkg/__init__.py': '',
      'pkg/errors.py': '',
      'pkg/models/__init__.py': '',
      'pkg/models/x.py': """\
        from pkg import errors
        from pkg.models import norm

        def build():
          from pkg.methods import y
          return y
        """,
      'pkg/models/norm.py': '',
      'pkg/methods/__init__.py': '',
      'pkg/methods/y.py': 'from pkg.models import x\n',
    },
  )
  edges = collect_imports(root, 'pkg')
  upward = Edge('pkg.models.x', 'pkg.methods.y', 'pkg/models/x.py', 5)
  assert upward in edges
  assert layer_violations(edges, FAKE_LAYERS) == [upward]
  assert str(upward) == 'pkg.models.x -> pkg.methods.y (pkg/models/x.py:5)'


def test_layer_one_siblings_may_not_import_each_other(tmp_path):
  root = _make_tree(
    tmp_path,
    {
      'pkg/__init__.py': '',
      'pkg/parallel.py': '',
      'pkg/inputs/__init__.py': '',
      'pkg/inputs/a.py': 'import pkg.datasets.b\nimport pkg.parallel\nfrom pkg.inputs import c\n',
      'pkg/inputs/c.py': '',
      'pkg/datasets/__init__.py': '',
      'pkg/datasets/b.py': '',
      # Entries of the same non-independent layer may import each other.
      'pkg/state.py': 'from pkg import runs\n',
      'pkg/runs.py': '',
    },
  )
  edges = collect_imports(root, 'pkg')
  assert layer_violations(edges, FAKE_LAYERS) == [
    Edge('pkg.inputs.a', 'pkg.datasets.b', 'pkg/inputs/a.py', 1)
  ]
  assert layer_violations(edges, FAKE_LAYERS, independent=()) == []


def test_top_package_must_import_nothing_but_may_be_imported(tmp_path):
  root = _make_tree(
    tmp_path,
    {
      'pkg/__init__.py': 'from pkg import errors\n',
      'pkg/errors.py': 'import pkg\n',
      'pkg/cli.py': 'from pkg import __version__\n',
    },
  )
  edges = collect_imports(root, 'pkg')
  assert edges == [
    Edge('pkg', 'pkg.errors', 'pkg/__init__.py', 1),
    Edge('pkg.cli', 'pkg', 'pkg/cli.py', 1),
    Edge('pkg.errors', 'pkg', 'pkg/errors.py', 1),
  ]
  assert layer_violations(edges, FAKE_LAYERS) == [Edge('pkg', 'pkg.errors', 'pkg/__init__.py', 1)]


def test_uncovered_modules_are_reported_and_prefixes_match_whole_components(tmp_path):
  root = _make_tree(
    tmp_path,
    {
      'pkg/__init__.py': '',
      'pkg/extra.py': '',
      'pkg/evaluate.py': '',
      'pkg/evaluation/__init__.py': '',
      'pkg/evaluation/suite.py': '',
      'pkg/evaluate_more.py': '',
      'pkg/newpkg/__init__.py': '',
      'pkg/newpkg/mod.py': '',
    },
  )
  modules = find_modules(root, 'pkg')
  assert sorted(modules) == [
    'pkg',
    'pkg.evaluate',
    'pkg.evaluate_more',
    'pkg.evaluation',
    'pkg.evaluation.suite',
    'pkg.extra',
    'pkg.newpkg',
    'pkg.newpkg.mod',
  ]
  assert uncovered_modules(modules, FAKE_LAYERS) == [
    'pkg.evaluate_more',
    'pkg.extra',
    'pkg.newpkg',
    'pkg.newpkg.mod',
  ]
  assert layer_of('pkg.evaluation.suite', FAKE_LAYERS) == (1, 'pkg.evaluation')
  assert layer_of('pkg.evaluate', FAKE_LAYERS) == (6, 'pkg.evaluate')


def test_type_checking_imports_count(tmp_path):
  root = _make_tree(
    tmp_path,
    {
      'pkg/__init__.py': '',
      'pkg/config.py': '',
      'pkg/methods/__init__.py': '',
      'pkg/methods/base.py': """\
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
          from pkg.config import Config
        """,
    },
  )
  edges = collect_imports(root, 'pkg')
  assert layer_violations(edges, FAKE_LAYERS) == [
    Edge('pkg.methods.base', 'pkg.config', 'pkg/methods/base.py', 4)
  ]
