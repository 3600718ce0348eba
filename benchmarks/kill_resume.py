"""Kill a real run after every checkpoint write, resume it, and count identical results.

    python benchmarks/kill_resume.py [--json PATH]

The run is ``packages/aac-pruning/tests/kill_resume_worker.py`` (the adaptive loop with filter pruning
on digits, probes and early rejection on). A reference run goes to the end; then, for every checkpoint
write n, a fresh run is killed with SIGKILL right after write n and resumed in the same folder. A
resume counts as identical when its rate, metric, epochs and weights hash equal the reference's. The CI
test samples four of these points; this sweeps them all. Exit status 1 if any resume differs.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = Path(__file__).resolve().parents[1] / "packages" / "aac-pruning" / "tests" / "kill_resume_worker.py"
KEYS = ("rate", "metric", "epochs", "weights")


def run(log_dir: Path, result: Path, kill_at: int | None = None) -> int:
    args = [sys.executable, str(WORKER), str(log_dir), str(result), *([] if kill_at is None else [str(kill_at)])]
    return subprocess.run(args, capture_output=True, timeout=600).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path("runs") / "bench" / "kill_resume.json", help="where to write the results")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if run(folder / "reference", folder / "reference.json") != 0:
            sys.exit("the reference run failed")
        reference = json.loads((folder / "reference.json").read_text())
        points = []
        for kill_at in range(1, reference["writes"] + 1):
            log_dir, result = folder / f"killed-{kill_at}", folder / f"resumed-{kill_at}.json"
            killed = run(log_dir, result, kill_at) == -signal.SIGKILL
            resumed = run(log_dir, result) == 0 and result.exists()
            got = json.loads(result.read_text()) if resumed else {}
            differs = [k for k in KEYS if got.get(k) != reference[k]]
            points.append({"kill_after_write": kill_at, "killed": killed, "resumed": resumed, "differs": differs})
            print(
                f"kill after write {kill_at:2d}: {'identical' if killed and resumed and not differs else f'DIFFERS {differs}'}", flush=True
            )
    identical = sum(p["killed"] and p["resumed"] and not p["differs"] for p in points)
    report = {
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
