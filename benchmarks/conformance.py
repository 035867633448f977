"""umcl's metrics against reference implementations on fixed inputs: the largest absolute difference.

The cases and the references (scikit-learn, a transcription of open_clip's ``get_clip_metrics``,
CheXzero's pos/neg softmax zero-shot, brute-force P@K and report-level recall) are those of the
conformance suite, ``tests/conformance_refs.py``; this prints them as the Markdown table in
benchmarks/RESULTS.md. Needs the test extra (scikit-learn): ``pip install -e ".[test]"``.

    python benchmarks/conformance.py
"""

from __future__ import annotations

import sys
from pathlib import Path

# The references live beside the tests, which are not a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conformance_refs import all_cases


def main() -> None:
    print("| metric (fixed inputs) | reference | values compared | largest absolute difference |")
    print("|---|---|---|---|")
    for case in all_cases():
        print(f"| {case.metric} | {case.reference} | {len(case.umcl)} | {case.max_abs_diff:.1e} |")


if __name__ == "__main__":
    main()
