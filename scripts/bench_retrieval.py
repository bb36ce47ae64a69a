"""Time and peak memory of jaxvssl.evaluation.retrieval.retrieve for large galleries.

Each gallery size runs in a fresh child process so that its peak RSS (getrusage ru_maxrss) is its
own. Reported per size:
  features_mib  : memory of the random query + gallery features themselves (input, not overhead)
  time_s        : wall time of one `retrieve` call (normalisation, chunked top-k, R@k)
  cpu_s         : CPU time (user + system, all threads) of that call: on a shared machine this
                  is the load-independent figure
  traced_peak_mib: tracemalloc peak of numpy allocations made inside `retrieve` (the
                   retrieval's own working memory, excluding the input features)
  maxrss_mib    : peak resident set size of the whole child process (Python, numpy, BLAS, features)

Usage:
  .venv/bin/python scripts/bench_retrieval.py                    # 10k and 100k galleries
  .venv/bin/python scripts/bench_retrieval.py --gallery 10000 100000 --queries 3700 --dim 512
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

DEFAULT_GALLERIES = (10_000, 100_000)
DEFAULT_QUERIES = 3_700
DEFAULT_DIM = 512
DEFAULT_CLASSES = 101
KS = (1, 5, 10, 20, 50)


def run_one(
  gallery: int,
  queries: int,
  dim: int,
  classes: int,
  query_chunk: int,
  gallery_chunk: int,
  seed: int,
) -> dict:
  from jaxvssl.evaluation import retrieval

  rng = np.random.default_rng(seed)
  g = rng.standard_normal((gallery, dim), dtype=np.float32)
  q = rng.standard_normal((queries, dim), dtype=np.float32)
  gl = rng.integers(0, classes, gallery)
  ql = rng.integers(0, classes, queries)
  tracemalloc.start()
  r0 = resource.getrusage(resource.RUSAGE_SELF)
  t0 = time.perf_counter()
  res = retrieval.retrieve(
    q, ql, g, gl, ks=KS, query_chunk=query_chunk, gallery_chunk=gallery_chunk
  )
  elapsed = time.perf_counter() - t0
  r1 = resource.getrusage(resource.RUSAGE_SELF)
  cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
  _, traced_peak = tracemalloc.get_traced_memory()
  tracemalloc.stop()
  maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
  return {
    'gallery': gallery,
    'queries': queries,
    'dim': dim,
    'features_mib': (g.nbytes + q.nbytes) / 2**20,
    'time_s': elapsed,
    'cpu_s': cpu,
    'traced_peak_mib': traced_peak / 2**20,
    'maxrss_mib': maxrss_kib / 1024,
    'R@1': res.recall[1],
    'R@50': res.recall[50],
  }


def main() -> None:
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument('--gallery', type=int, nargs='+', default=list(DEFAULT_GALLERIES))
  p.add_argument('--queries', type=int, default=DEFAULT_QUERIES)
  p.add_argument('--dim', type=int, default=DEFAULT_DIM)
  p.add_argument('--classes', type=int, default=DEFAULT_CLASSES)
  p.add_argument('--query-chunk', type=int, default=None)
  p.add_argument('--gallery-chunk', type=int, default=None)
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  args = p.parse_args()
  from jaxvssl.evaluation import retrieval

  qc = args.query_chunk or retrieval.DEFAULT_QUERY_CHUNK
  gc = args.gallery_chunk or retrieval.DEFAULT_GALLERY_CHUNK
  if args.child:
    print(
      json.dumps(run_one(args.gallery[0], args.queries, args.dim, args.classes, qc, gc, args.seed))
    )
    return
  load_before = os.getloadavg()[0]
  rows = []
  for gsize in args.gallery:
    cmd = [
      sys.executable,
      __file__,
      '--child',
      '--gallery',
      str(gsize),
      '--queries',
      str(args.queries),
      '--dim',
      str(args.dim),
      '--classes',
      str(args.classes),
      '--query-chunk',
      str(qc),
      '--gallery-chunk',
      str(gc),
      '--seed',
      str(args.seed),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows.append(json.loads(out.strip().splitlines()[-1]))
  print(
    f'query_chunk={qc} gallery_chunk={gc} queries={args.queries} dim={args.dim} '
    f'load average before={load_before:.1f} after={os.getloadavg()[0]:.1f}'
  )
  print(
    '| gallery | queries | dim | features MiB | wall s | CPU s | traced peak MiB | max RSS MiB |'
  )
  print('|---|---|---|---|---|---|---|---|')
  for r in rows:
    print(
      f'| {r["gallery"]} | {r["queries"]} | {r["dim"]} | {r["features_mib"]:.0f} | '
      f'{r["time_s"]:.2f} | {r["cpu_s"]:.2f} | {r["traced_peak_mib"]:.0f} | {r["maxrss_mib"]:.0f} |'
    )


if __name__ == '__main__':
  main()
