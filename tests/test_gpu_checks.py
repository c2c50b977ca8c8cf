"""The GPU check script selects the CUDA tests it is meant to run (they only run on a lent GPU,
so a selection that finds nothing would go unnoticed until then)."""

import re
import subprocess
import sys

from conftest import ROOT


def test_the_gpu_script_selects_every_cuda_test():
    script = (ROOT / "benchmarks" / "gpu_checks.sh").read_text()
    assert "-m cuda" in script
    files = sorted(p for p in (ROOT / "tests").glob("test_*.py")
                   if re.search(r"^@cuda$", p.read_text(), re.M))
    decorated = sum(len(re.findall(r"^@cuda$", p.read_text(), re.M)) for p in files)
    assert decorated > 0
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "cuda",
         "-p", "no:cacheprovider", *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    selected = [line for line in out.stdout.splitlines() if "::" in line]
    # every decorated test is selected (parametrized ones count once per case)
    assert len(selected) >= decorated
