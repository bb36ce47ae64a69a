"""The documentation: README.md and docs/**/*.md.

Checks, on the real files:
  1. every relative markdown link `[text](target)` resolves to an existing file or directory,
     relative to the file that holds it (http(s)://, mailto: and pure `#anchor` links are skipped;
     a `#fragment` is stripped from a relative target);
  2. README.md stays an index: under 20,000 bytes;
  3. no page refers to files outside the repository.
A failure names the file, the line and the offending link or string.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).parents[1]
README = REPO_ROOT / 'README.md'
DOCS = REPO_ROOT / 'docs'
README_MAX_BYTES = 20_000
# Strings that point outside the repository (or at names it does not use).
FORBIDDEN = ('METHODS.md', 'seed 00', '/work/', 'shared/seeds')

# `[text](target)` or `[text](target "title")`; `![alt](src)` images match too. The text may hold
# nested brackets one level deep (`[`code[0]`](x)`).
LINK = re.compile(r'\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)')
FENCE = re.compile(r'^\s*(```|~~~)')
INLINE_CODE = re.compile(r'(`+)(?:(?!\1).)+\1')
SKIPPED_SCHEMES = ('http://', 'https://', 'mailto:')


def doc_files() -> list[Path]:
  """README.md and every markdown file under docs/, sorted."""
  return [README, *sorted(DOCS.rglob('*.md'))]


def _name(path: Path, root: Path = REPO_ROOT) -> str:
  return path.relative_to(root).as_posix()


def markdown_links(text: str) -> list[tuple[int, str]]:
  """(line number, target) of every markdown link outside code blocks and inline code."""
  links = []
  in_fence = False
  for number, line in enumerate(text.splitlines(), 1):
    if FENCE.match(line):
      in_fence = not in_fence
      continue
    if in_fence:
      continue
    for match in LINK.finditer(INLINE_CODE.sub('', line)):
      links.append((number, match.group(1)))
  return links


def broken_links(path: Path, root: Path = REPO_ROOT) -> list[str]:
  """`file:line: broken link (target)` for each relative link of `path` that resolves to nothing.

  Targets are resolved against the directory of `path`; `root` only shortens the file name.
  """
  problems = []
  for number, target in markdown_links(path.read_text(encoding='utf-8')):
    if not target or target.startswith(SKIPPED_SCHEMES) or target.startswith('#'):
      continue
    relative = target.split('#', 1)[0]
    if not (path.parent / relative).exists():
      problems.append(f'{_name(path, root)}:{number}: broken link ({target})')
  return problems


def test_there_are_docs_to_check():
  assert README.is_file()
  assert len(doc_files()) > 1, 'no markdown files under docs/'


@pytest.mark.parametrize('path', doc_files(), ids=_name)
def test_relative_links_resolve(path):
  problems = broken_links(path)
  assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('path', doc_files(), ids=_name)
def test_no_references_outside_the_repository(path):
  problems = [
    f'{_name(path)}:{number}: contains {text!r}'
    for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1)
    for text in FORBIDDEN
    if text in line
  ]
  assert not problems, '\n'.join(problems)


def test_readme_is_an_index():
  size = README.stat().st_size
  assert size < README_MAX_BYTES, (
    f'README.md is {size} bytes (limit {README_MAX_BYTES}): move reference material to docs/'
  )


# --- the checker, on fake pages ---------------------------------------------------------------


def test_link_parser_finds_links_and_skips_code():
  text = '\n'.join(
    [
      'See [design](docs/design.md#layers) and [site](https://example.com).',
      '`[not a link](nowhere.md)` but ![img](pic.png "title")',
      '```',
      '[inside a fence](ignored.md)',
      '```',
      '[`code` text](a/b.md) [anchor](#top) [[nested]](c.md)',
    ]
  )
  assert markdown_links(text) == [
    (1, 'docs/design.md#layers'),
    (1, 'https://example.com'),
    (2, 'pic.png'),
    (6, 'a/b.md'),
    (6, '#top'),
    (6, 'c.md'),
  ]


def test_broken_links_are_reported_with_file_and_line(tmp_path):
  (tmp_path / 'docs' / 'methods').mkdir(parents=True)
  (tmp_path / 'docs' / 'design.md').write_text('# Design\n', encoding='utf-8')
  page = tmp_path / 'docs' / 'methods' / 'x.md'
  page.write_text(
    '\n'.join(
      [
        '[ok](../design.md#layers) [dir](../) [web](https://x.org) [mail](mailto:a@b.c)',
        '[self](#here)',
        '[missing](../missing.md#part)',
        '[wrong base](docs/design.md)',
      ]
    ),
    encoding='utf-8',
  )
  assert broken_links(page, tmp_path) == [
    'docs/methods/x.md:3: broken link (../missing.md#part)',
    'docs/methods/x.md:4: broken link (docs/design.md)',
  ]
