"""The fixed cost of a one-shot CLI run (issue 16): the median of 5 runs of
``featurevis render lite0 class:1 --steps 1``, whose one step is a small part of the wait.

Also shows what the start-up measures of ``featurevis.cli.startup`` save, in the same run: the
import of ``torch._dynamo`` that torch's optimizers make (``FV_BENCH_DYNAMO=1`` imports it on
purpose at start-up: what every run paid before), and the OpenMP wait policy, forced either way
(featurevis itself leaves libgomp's default on an idle machine and makes workers sleep on a busy
one). The variants alternate, so drifting load hits them alike.

    python benchmarks/cli_overhead.py [--runs 5] [--busy] [--steps 1] [--only now,spin]

``--busy`` runs one CPU-bound process beside it (a 2-core machine shared with one other job),
started a minute early so the load average has risen when the runs begin. ``--steps 192`` times
a whole default class render instead, where the wait policy matters more than the start-up;
``--only`` keeps some of the variants (``now``, ``before``, ``sleep``, ``spin``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time

CODE = (
    "import os, sys\n"
    "if os.environ.get('FV_BENCH_DYNAMO'):\n"
    "    import torch._dynamo\n"
    "from featurevis.cli.main import main\n"
    "sys.exit(main())\n"
)
VARIANTS = {  # short name: (what the table calls it, the environment it runs with)
    "now": ("now", {}),
    "before": (
        "before (torch._dynamo imported, libgomp's default wait)",
        {"FV_BENCH_DYNAMO": "1", "GOMP_SPINCOUNT": "300000"},
    ),
    "sleep": ("now, workers forced to sleep (OMP_WAIT_POLICY=PASSIVE)", {"OMP_WAIT_POLICY": "PASSIVE"}),
    "spin": ("now, workers forced to spin (OMP_WAIT_POLICY=ACTIVE)", {"OMP_WAIT_POLICY": "ACTIVE"}),
}


def _spin(stop: float) -> None:
    while time.time() < stop:
        sum(i * i for i in range(10_000))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--busy", action="store_true", help="one CPU-bound process beside the runs")
    ap.add_argument("--steps", type=int, default=1, help="steps of each render (1: the fixed cost)")
    ap.add_argument("--only", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    args = ap.parse_args()
    unknown = set(args.only.split(",")) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    own = ("OMP_WAIT_POLICY", "FV_BENCH_DYNAMO", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")
    base = {k: v for k, v in os.environ.items() if k not in own}
    busy = mp.Process(target=_spin, args=(time.time() + 3600,), daemon=True) if args.busy else None
    if busy:
        busy.start()
        time.sleep(60)  # the 1-minute load average catches up
    variants = {k: VARIANTS[k] for k in args.only.split(",")}
    times: dict[str, list[float]] = {name: [] for name in variants}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "c.png")
        argv = [sys.executable, "-c", CODE, "render", "lite0", "class:1", "--steps", str(args.steps), "-q", "-o", out]
        for _ in range(args.runs):
            for name, (_, env) in variants.items():
                loads.append(os.getloadavg()[0])
                t = time.perf_counter()
                subprocess.run(argv, env={**base, **env}, check=True, capture_output=True)
                times[name].append(time.perf_counter() - t)
    if busy:
        busy.terminate()
    beside = " (one busy process beside)" if busy else ""
    load = f"load {min(loads):.1f}-{max(loads):.1f} at the runs' starts"
    print(f"featurevis render lite0 class:1 --steps {args.steps}, median of {args.runs} runs{beside}, {load}:")
    print("| variant | median s | min s |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {VARIANTS[name][0]} | {statistics.median(ts):.2f} | {min(ts):.2f} |")


if __name__ == "__main__":
    main()
