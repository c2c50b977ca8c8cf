#!/usr/bin/env bash
# Every check that needs a CUDA device, as one command for a lent GPU machine: the CUDA tests,
# then the accelerator rows of the benchmarks (issues 3, 4 and 6). Each step writes one file
# under $OUT (six files); a failing step does not stop the next. At most 9.5 minutes (each step is time-boxed), within one device command.
#
#   OUT=some/dir bash benchmarks/gpu_checks.sh        # in the repository root, python3 with torch
#
# The test files are named (not the whole suite) so that the machine needs torch, scipy, numpy,
# tqdm, matplotlib and pytest only: the notebook runner's packages are not used by these tests.
set -uo pipefail
OUT=${OUT:-_build/gpu}
# the project's venv when there is one (`make` creates it), else the python3 on PATH
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; fi
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
} > "$OUT/gpu.txt" 2>&1

cuda_tests=$(grep -l "^@cuda" tests/test_*.py)
# shellcheck disable=SC2086
timeout 120 $PY -m pytest -q -rs -m cuda -p no:cacheprovider $cuda_tests \
  > "$OUT/pytest_cuda.txt" 2>&1
timeout 100 $PY benchmarks/bench_envelope.py --device cuda --ref-batch 16 \
  > "$OUT/envelope.txt" 2>&1
timeout 100 $PY benchmarks/bench_stable.py --device cuda --repeats 3 > "$OUT/stable.txt" 2>&1
timeout 240 $PY benchmarks/bench_paper.py --device cuda --train-sequences 2048 \
  --diag-sequences 1024 --json "$OUT/paper.json" > "$OUT/paper.txt" 2>&1
tail -n 3 "$OUT"/*.txt
