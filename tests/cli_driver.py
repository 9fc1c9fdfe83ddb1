"""Run many ``featurevis`` command lines, each in its own forked process, sharing one start-up.

Usage: ``python cli_driver.py CASES.json RESULTS.json``. CASES is ``{"timeout": s, "jobs": n,
"memory_limit": bytes, "cases": [{"id", "argv", "cwd", "env"}]}``; RESULTS maps each id to
``{"rc", "stdout", "stderr", "seconds"}``.

Why: a fresh ``python -m featurevis.cli`` spends 1-2 s importing torch before it looks at its
arguments, so hundreds of bad-input cases would take minutes. Here the imports happen once;
each case is then a real child process (``os.fork``) with its own working folder, environment,
stdout/stderr files and exit status, running exactly what ``python -m featurevis.cli`` runs
(``sys.exit(main(argv))``), under a strict UTF-8 stdout as a strict terminal would have. An
address-space limit turns a memory blow-up into an error in the child, never the machine's OOM
killer; a case still running after ``timeout`` is killed and reported with ``rc`` ``"timeout"``.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import resource
import signal
import sys
import time
import traceback


def _preload() -> None:
    """Import every command's module (torch, PIL, the recipes) before forking."""
    cli_main = importlib.import_module("featurevis.cli.main")

    for command in cli_main.COMMANDS:
        cli_main.command_parser(command)


def _child(case: dict, out: str, err: str, memory_limit: int) -> None:
    """Runs in the forked process; never returns."""
    rc = 1
    try:
        os.chdir(case["cwd"])
        os.environ.update(case.get("env", {}))
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd, path in ((1, out), (2, err)):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="strict")
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
        )
        sys.argv = ["featurevis", *case["argv"]]
        main = importlib.import_module("featurevis.cli.main").main
        try:
            rc = main(case["argv"])
        except SystemExit as e:  # what the interpreter does with sys.exit(code)
            if e.code is None:
                rc = 0
            elif isinstance(e.code, int):
                rc = e.code
            else:
                print(e.code, file=sys.stderr)
                rc = 1
    except BaseException:  # an uncaught exception: the interpreter prints it and exits 1
        traceback.print_exc()
        rc = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # a stdout that cannot encode what is left: the exit is still 1
                traceback.print_exc(file=sys.__stderr__)
                rc = 1
        os._exit(rc if isinstance(rc, int) else 1)


def main(cases_path: str, results_path: str) -> None:
    with open(cases_path, encoding="utf-8") as f:
        spec = json.load(f)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _preload()
    import torch

    torch.set_num_threads(1)
    timeout, jobs, limit = spec.get("timeout", 60), spec.get("jobs", 1), spec.get("memory_limit", 0)
    pending = list(spec["cases"])
    running: dict[int, tuple[dict, str, str, float]] = {}
    results: dict[str, dict] = {}
    logs = os.path.dirname(os.path.abspath(results_path))
    while pending or running:
        while pending and len(running) < jobs:
            case = pending.pop(0)
            out = os.path.join(logs, f"{len(results) + len(running)}.{os.getpid()}.out")
            err = out[:-4] + ".err"
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(case, out, err, limit)
            running[pid] = (case, out, err, time.monotonic())
        time.sleep(0.005)
        for pid, (case, out, err, start) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            elapsed = time.monotonic() - start
            if done == 0 and elapsed < timeout:
                continue
            if done == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                rc: int | str = "timeout"
            else:
                rc = os.waitstatus_to_exitcode(status)
            del running[pid]
            texts = []
            for path in (out, err):
                with open(path, encoding="utf-8", errors="backslashreplace") as f:
                    texts.append(f.read())
                os.unlink(path)
            results[case["id"]] = {"rc": rc, "stdout": texts[0], "stderr": texts[1], "seconds": elapsed}
    with open(results_path, "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:3])
