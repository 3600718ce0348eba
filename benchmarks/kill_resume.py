"""Kill a real run after every checkpoint write, resume it, and count identical results.

    python benchmarks/kill_resume.py [--framework torch|tf] [--json PATH]

The run is ``packages/aac-pruning/tests/kill_resume_worker.py`` (the adaptive loop with filter pruning
on digits, probes and early rejection on), or with ``--framework tf`` its Keras twin
``benchmarks/kill_resume_tf_worker.py`` (``accuracy_aware_fit``). A reference run goes to the end; then, for every checkpoint
write n, a fresh run is killed with SIGKILL right after write n and resumed in the same folder. A
resume counts as identical when its rate, metric, epochs and weights hash equal the reference's. The CI
test samples four of the PyTorch points; this sweeps them all, ``--jobs`` at a time (each run is one
single-threaded process). Exit status 1 if any resume differs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKERS = {
    "torch": ROOT / "packages" / "aac-pruning" / "tests" / "kill_resume_worker.py",
    "tf": ROOT / "benchmarks" / "kill_resume_tf_worker.py",
}
KEYS = ("rate", "metric", "epochs", "weights")


def run(worker: Path, log_dir: Path, result: Path, kill_at: int | None = None) -> int:
    args = [sys.executable, str(worker), str(log_dir), str(result), *([] if kill_at is None else [str(kill_at)])]
    return subprocess.run(args, capture_output=True, timeout=600).returncode


def kill_and_resume(worker: Path, folder: Path, reference: dict[str, Any], kill_at: int) -> dict[str, Any]:
    """Kill a fresh run right after checkpoint write ``kill_at``, resume it in its folder, compare with the reference."""
    log_dir, result = folder / f"killed-{kill_at}", folder / f"resumed-{kill_at}.json"
    killed = run(worker, log_dir, result, kill_at) == -signal.SIGKILL
    resumed = run(worker, log_dir, result) == 0 and result.exists()
    got = json.loads(result.read_text()) if resumed else {}
    differs = [k for k in KEYS if got.get(k) != reference[k]]
    print(f"kill after write {kill_at:2d}: {'identical' if killed and resumed and not differs else f'DIFFERS {differs}'}", flush=True)
    return {"kill_after_write": kill_at, "killed": killed, "resumed": resumed, "differs": differs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=sorted(WORKERS), default="torch", help="which worker to kill (default torch)")
    parser.add_argument("--json", type=Path, help="where to write the results (default runs/bench/kill_resume[_tf].json)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="kill points run at once (default: one per CPU)")
    args = parser.parse_args(argv)
    worker = WORKERS[args.framework]
    if args.json is None:
        args.json = Path("runs") / "bench" / ("kill_resume.json" if args.framework == "torch" else f"kill_resume_{args.framework}.json")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if run(worker, folder / "reference", folder / "reference.json") != 0:
            sys.exit("the reference run failed")
        reference = json.loads((folder / "reference.json").read_text())
        kill_points = range(1, reference["writes"] + 1)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # each kill point is its own pair of processes
            points = list(pool.map(lambda kill_at: kill_and_resume(worker, folder, reference, kill_at), kill_points))
    identical = sum(p["killed"] and p["resumed"] and not p["differs"] for p in points)
    report = {
        "framework": args.framework,
        "reference": reference,
        "points": points,
        "identical": identical,
        "total": len(points),
        "seconds": time.perf_counter() - start,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{identical} of {len(points)} kill points resumed to the identical result ({report['seconds']:.0f}s); {args.json}")
    return 0 if identical == len(points) else 1


if __name__ == "__main__":
    sys.exit(main())
