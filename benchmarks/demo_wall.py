"""Wall time and peak memory of `umcl demo` (the README's first command, installation excluded).

python benchmarks/demo_wall.py            # prints wall seconds, peak RSS and the demo's summary
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="umcl-demo-bench-"))
    umcl = shutil.which("umcl") or str(Path(sys.executable).with_name("umcl"))
    start = time.perf_counter()
    proc = subprocess.run([umcl, "demo", "--out", str(out / "demo"), *sys.argv[1:]], capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = proc.stdout[proc.stdout.rfind("umcl demo summary") - 60 :]
    print(summary)
    print(f"exit code {proc.returncode}; wall {wall:.1f} s; peak RSS {peak_mib:.0f} MiB")
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
        sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
