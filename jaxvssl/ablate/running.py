"""Runs tasks as subprocesses, `jobs` at a time, in order as their dependencies allow; SIGINT and
SIGTERM stop the scheduling and reach every child, which saves and exits."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from jaxvssl import errors
from jaxvssl.ablate.tasks import Outcome, RunCommand, Task

TAIL_LINES = 15  # lines of a failed subprocess's log kept in results.json / results.md
_children: set[subprocess.Popen] = set()
_children_lock = threading.RLock()  # re-entrant: the signal handler takes it too


def run_subprocess(argv: Sequence[str], log: str) -> int:
  """Runs `argv` with stdout and stderr appended to `log`; returns its exit status.

  The child gets a session of its own, so a Ctrl-C on the terminal reaches only this runner,
  which forwards exactly one signal to each child (a second one would stop a training at once).
  """
  os.makedirs(os.path.dirname(log), exist_ok=True)
  env = dict(os.environ)
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  env['PYTHONUNBUFFERED'] = '1'
  with open(log, 'a') as f:
    f.write(f'=== {now()} {shlex.join(argv)}\n')
    f.flush()
    child = subprocess.Popen(
      list(argv),
      stdout=f,
      stderr=subprocess.STDOUT,
      stdin=subprocess.DEVNULL,
      env=env,
      start_new_session=True,
    )
    with _children_lock:
      _children.add(child)
    try:
      return child.wait()
    except BaseException:  # e.g. KeyboardInterrupt outside `jaxvssl ablate`'s own handler
      child.terminate()  # SIGTERM: a training saves a checkpoint and stops
      raise
    finally:
      with _children_lock:
        _children.discard(child)


def _signal_children(signum: int) -> None:
  with _children_lock:
    for child in list(_children):
      try:
        child.send_signal(signum)
      except OSError:
        pass


def tail(path: str, lines: int = TAIL_LINES) -> tuple[str, ...]:
  try:
    with open(path, errors='replace') as f:
      return tuple(line.rstrip('\n') for line in f.readlines()[-lines:])
  except OSError:
    return ()


def now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


_print_lock = threading.RLock()  # re-entrant: the signal handler prints


def say(message: str) -> None:
  with _print_lock:
    print(f'[ablate {time.strftime("%H:%M:%S")}] {message}', flush=True)


def run_task(task: Task, run_command: RunCommand) -> Outcome:
  """Runs the task's phases in order; the first non-zero exit status stops it."""
  t0 = time.perf_counter()
  for phase in task.phases:
    code = run_command(phase.argv, phase.log)
    if code != 0:
      return Outcome(
        'failed' if code not in (130, 143) else 'interrupted',
        phase=phase.name,
        exit_code=code,
        log=phase.log,
        tail=tail(phase.log),
        seconds=time.perf_counter() - t0,
      )
  if task.summary and not os.path.exists(task.summary):
    last = task.phases[-1]
    return Outcome(
      'failed',
      phase=last.name,
      log=last.log,
      tail=tail(last.log),
      reason=f'{last.name} exited 0 but wrote no {task.summary}',
      seconds=time.perf_counter() - t0,
    )
  return Outcome('done', seconds=time.perf_counter() - t0)


@dataclasses.dataclass
class Stop:
  signum: int = 0


@contextlib.contextmanager
def handle_signals(stop: Stop) -> Iterator[None]:
  """While running: SIGINT / SIGTERM stop scheduling and are forwarded once to every child."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def handler(signum, frame):
    del frame
    first = not stop.signum
    stop.signum = stop.signum or signum
    say(
      f'{signal.Signals(signum).name}: no new pairs; the running ones save and stop'
      if first
      else f'{signal.Signals(signum).name} again: stopping the running pairs at once'
    )
    _signal_children(signum)

  previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield
  finally:
    for s, h in previous.items():
      signal.signal(s, h)


def _blocked(task: Task, outcomes: Mapping[tuple[str, str, int], Outcome]) -> Outcome | None:
  """Why `task` can never run (a dependency failed, a required file is missing), or None."""
  failed = [d for d in task.deps if d in outcomes and not outcomes[d].ok]
  if failed:
    kind, name, seed = failed[0]
    what = f'stage {name}' if kind == 'stage' else name
    return Outcome(
      'failed' if outcomes[failed[0]].status == 'failed' else 'not_run',
      reason=f'{what} seed {seed}: {outcomes[failed[0]].why()}',
    )
  ready = all(d in outcomes for d in task.after)
  if task.requires and ready and not os.path.exists(task.requires):
    return Outcome('not_run', reason=f'{task.requires} does not exist')
  return None


def execute(
  tasks: Sequence[Task],
  outcomes: dict[tuple[str, str, int], Outcome],
  *,
  jobs: int,
  run_command: RunCommand,
  on_update: Callable[[], None] = lambda: None,
  stop: Stop | None = None,
) -> None:
  """Runs every task without an outcome yet, `jobs` at a time, in order as dependencies allow.

  A task whose `deps` failed, or whose `requires` is missing when it could start, is not run;
  `outcomes` is filled in place and `on_update` is called after each change.
  """
  stop = stop or Stop()
  pending = [t for t in tasks if t.key not in outcomes]
  running: dict[concurrent.futures.Future, Task] = {}
  total, finished = len(pending), 0
  with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
    while pending or running:
      for task in list(pending):
        blocked = _blocked(task, outcomes)
        if blocked:
          outcomes[task.key] = blocked
          pending.remove(task)
          finished += 1
          say(f'not running {task.label()}: {blocked.reason}')
          on_update()
      if not stop.signum:
        for task in [t for t in pending if all(d in outcomes for d in t.deps + t.after)]:
          if len(running) >= jobs:
            break
          pending.remove(task)
          say(f'start {task.label()} (log: {task.phases[0].log})')
          running[pool.submit(run_task, task, run_command)] = task
      if not running:
        break
      done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
      for future in done:
        task = running.pop(future)
        try:
          outcome = future.result()
        except Exception as e:  # pylint: disable=broad-except
          outcome = Outcome('failed', reason=f'the runner failed: {errors.summary(e)}')
        if stop.signum and outcome.status == 'failed' and outcome.exit_code is not None:
          outcome.status = 'interrupted'  # stopped by the signal we forwarded
        outcomes[task.key] = outcome
        finished += 1
        if outcome.ok:
          say(f'done {task.label()} in {outcome.seconds / 60:.1f} min ({finished}/{total})')
        else:
          last = f'; last log line: {outcome.tail[-1]}' if outcome.tail else ''
          say(f'{outcome.status.upper()} {task.label()}: {outcome.why()} ({outcome.log}){last}')
        on_update()
  for task in pending:
    outcomes[task.key] = Outcome('not_run', reason='stopped before it started')
