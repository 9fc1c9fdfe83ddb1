"""The fixed cost of a one-shot CLI run (issue 16): the median of 5 runs of
``featurevis render lite0 class:1 --steps 1``, whose one step is a small part of the wait.

Also shows what the start-up measures of ``featurevis.cli.startup`` save, in the same run: the
import of ``torch._dynamo`` that torch's optimizers make (``FV_BENCH_DYNAMO=1`` imports it on
purpose at start-up: what every run paid before), and the OpenMP wait policy, forced either way
(featurevis itself leaves libgomp's default on an idle machine and makes workers sleep on a busy
one). The variants alternate, so drifting load hits them alike.

    python benchmarks/cli_overhead.py [--runs 5] [--busy]

``--busy`` runs one CPU-bound process beside it (a 2-core machine shared with one other job),
started a minute early so the load average has risen when the runs begin.
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
VARIANTS = {
    "now": {},
    "before (torch._dynamo imported, libgomp's default wait)": {"FV_BENCH_DYNAMO": "1", "GOMP_SPINCOUNT": "300000"},
    "now, workers forced to sleep (OMP_WAIT_POLICY=PASSIVE)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "now, workers forced to spin (OMP_WAIT_POLICY=ACTIVE)": {"OMP_WAIT_POLICY": "ACTIVE"},
}


def _spin(stop: float) -> None:
    while time.time() < stop:
        sum(i * i for i in range(10_000))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--busy", action="store_true", help="one CPU-bound process beside the runs")
    args = ap.parse_args()
    own = ("OMP_WAIT_POLICY", "FV_BENCH_DYNAMO", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")
    base = {k: v for k, v in os.environ.items() if k not in own}
    busy = mp.Process(target=_spin, args=(time.time() + 3600,), daemon=True) if args.busy else None
    if busy:
        busy.start()
        time.sleep(60)  # the 1-minute load average catches up
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "c.png")
        argv = [sys.executable, "-c", CODE, "render", "lite0", "class:1", "--steps", "1", "-q", "-o", out]
        for _ in range(args.runs):
            for name, env in VARIANTS.items():
                t = time.perf_counter()
                subprocess.run(argv, env={**base, **env}, check=True, capture_output=True)
                times[name].append(time.perf_counter() - t)
    if busy:
        busy.terminate()
    beside = " (one busy process beside)" if busy else ""
    load = os.getloadavg()[0]
    print(f"featurevis render lite0 class:1 --steps 1, median of {args.runs} runs{beside}, load {load:.1f}:")
    print("| variant | median s | min s |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.2f} | {min(ts):.2f} |")


if __name__ == "__main__":
    main()
