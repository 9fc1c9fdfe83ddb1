"""The fixed cost of a one-shot CLI run (issue 16): the median of 5 runs of
``featurevis render lite0 class:1 --steps 1``, whose one step is a small part of the wait.

Also shows what the two start-up measures of ``featurevis.cli.startup`` save, by switching each
off in turn in the same run: the import of ``torch._dynamo`` that torch's optimizers make
(``FV_BENCH_DYNAMO=1`` imports it on purpose at start-up, the cost a run paid before) and
sleeping OpenMP workers (``OMP_WAIT_POLICY=ACTIVE``, libgomp's default spinning). The variants
alternate, so drifting load hits them alike.

    python benchmarks/cli_overhead.py [--runs 5] [--busy]

``--busy`` runs one CPU-bound process beside it (a 2-core machine shared with one other job).
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
    "now (passive threads, no dynamo import)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "with the torch._dynamo import": {"OMP_WAIT_POLICY": "PASSIVE", "FV_BENCH_DYNAMO": "1"},
    "with spinning threads": {"OMP_WAIT_POLICY": "ACTIVE"},
    "before (both)": {"OMP_WAIT_POLICY": "ACTIVE", "FV_BENCH_DYNAMO": "1"},
}


def _spin(stop: float) -> None:
    while time.time() < stop:
        sum(i * i for i in range(10_000))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--busy", action="store_true", help="one CPU-bound process beside the runs")
    args = ap.parse_args()
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "FV_BENCH_DYNAMO", "OMP_NUM_THREADS")}
    busy = mp.Process(target=_spin, args=(time.time() + 3600,), daemon=True) if args.busy else None
    if busy:
        busy.start()
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
    print(f"featurevis render lite0 class:1 --steps 1, median of {args.runs} runs{beside}:")
    print("| variant | median s | min s |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.2f} | {min(ts):.2f} |")


if __name__ == "__main__":
    main()
