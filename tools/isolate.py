"""Run conformance cases in worker subprocesses, so that a case that crashes the process
(a segfault in generated code, an abort in the runtime) or hangs costs only itself.

A worker is `python -m tools.isolate MODULE`: it reads case ids (one JSON list on stdin),
calls `MODULE.run_case(id) -> tools.outcome.Outcome` for each, and reports on stdout with
marked lines. The parent restarts a worker that died or overran a case's time budget and
goes on with the next case."""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from tools.outcome import CRASH, Outcome

_MARK = "@@tt-conformance@@ "


def _worker(module_name: str) -> None:
    import importlib
    import traceback

    from tools.outcome import classify_error

    mod = importlib.import_module(module_name)
    ids = json.loads(sys.stdin.read())
    out = sys.__stdout__
    for cid in ids:
        print(_MARK + json.dumps({"start": cid}), file=out, flush=True)
        try:
            res = mod.run_case(cid)
        except Exception as e:  # noqa: BLE001 - run_case should classify; this is its own bug
            res = classify_error(e)
            res.detail += " | harness: " + traceback.format_exc(limit=2).splitlines()[-1]
        print(_MARK + json.dumps({"id": cid, **res.as_dict()}), file=out, flush=True)


def run_isolated(module_name: str, ids: list, *, timeout: float, chunk: int = 200,
                 on_result: Callable[[object, Outcome], None] | None = None) -> dict:
    """Run every id through `module_name`'s run_case in workers; returns {id: Outcome}.
    A case that takes longer than `timeout` seconds (compile included) or kills its worker is
    a CRASH with the reason as detail."""
    results: dict = {}
    todo = list(ids)
    while todo:
        batch, todo = todo[:chunk], todo[chunk:]
        left = _run_batch(module_name, batch, timeout, results, on_result)
        todo = left + todo
    return results


def _run_batch(module_name: str, batch: list, timeout: float, results: dict,
               on_result: Callable | None) -> list:
    """Run one worker over `batch`; returns the ids it did not get to (after a crash)."""
    with tempfile.TemporaryFile("w+") as err:
        # The worker resolves modules as this process does (same tt_xla, same tools): its path
        # is ours (after PYTHONPATH), and -P keeps `-m` from putting the working directory (a source tree) first.
        path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) + sys.path if p]
        env = {**os.environ, "PYTHONFAULTHANDLER": "1", "PYTHONPATH": os.pathsep.join(path)}
        safe = ["-P"] if sys.version_info >= (3, 11) else []
        proc = subprocess.Popen(
            [sys.executable, *safe, "-m", "tools.isolate", module_name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            start_new_session=True, env=env)
        assert proc.stdin and proc.stdout
        proc.stdin.write(json.dumps(batch))
        proc.stdin.close()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        current = None
        # The first case also pays for importing jax and the worker's start-up.
        deadline = time.monotonic() + timeout + 60
        done: set = set()
        buf = ""
        try:
            while True:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    _kill(proc)
                    reason = f"timeout: no result within {timeout:g} s"
                    break
                if not sel.select(timeout=min(wait, 1.0)):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536).decode(errors="replace")
                if not chunk:  # worker exited
                    proc.wait()
                    err.seek(0)
                    tail = " ".join(err.read().strip().splitlines()[-3:])[-300:]
                    reason = f"worker died (exit {proc.returncode}): {tail}"
                    break
                buf += chunk
                *lines, buf = buf.split("\n")
                for line in lines:
                    if not line.startswith(_MARK):
                        continue
                    msg = json.loads(line[len(_MARK):])
                    if "start" in msg:
                        current = msg["start"]
                        deadline = time.monotonic() + timeout
                        continue
                    cid = msg.pop("id")
                    kind, detail, op = msg.pop("kind"), msg.pop("detail"), msg.pop("op")
                    res = Outcome(kind, detail, op, msg)
                    results[_key(cid)] = res
                    done.add(_key(cid))
                    current = None
                    if on_result:
                        on_result(cid, res)
        finally:
            sel.close()
            if proc.poll() is None:
                _kill(proc)
        remaining = [c for c in batch if _key(c) not in done]
        if current is not None or remaining:
            bad = current if current is not None else remaining[0]
            res = Outcome(CRASH, reason)
            results[_key(bad)] = res
            if on_result:
                on_result(bad, res)
            return [c for c in remaining if _key(c) != _key(bad)]
        return []


def _key(cid: object) -> object:
    return tuple(cid) if isinstance(cid, list) else cid


def _kill(proc: subprocess.Popen) -> None:
    """Kill the worker we started and whatever it spawned (a C compiler), by its group id."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


if __name__ == "__main__":
    _worker(sys.argv[1])
