#!/usr/bin/env bash
# The GPU figures of issues #16, #17 and #18 (docs/gpu-session.md has the exact run call).
#
#   bash bench/gpu_session.sh prepare                  # HERE first (network): .gpu-carry/ = the shared photos,
#                                                      # the weights, wheels of shapely + tflite, the commit
#   bash bench/gpu_session.sh cv train                 # THERE, one run call (carry: [".gpu-carry"])
#   bash bench/gpu_session.sh labels click             # HERE afterwards, with the model.pt that came back
#   bash bench/gpu_session.sh --smoke cv train labels click   # HERE: a tiny budget on the CPU, every stage
#
# Results and gpu-session.log go to $OUT (var/gpu-session/out when $OUT is unset); bench/gpu_session.py has
# the stages. The GPU machine has no network and no project venv: its python3 holds torch, numpy, OpenCV,
# onnx and onnxruntime; shapely and tflite come as the carried wheels, installed into /tmp/site.
set -u -o pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu-carry

if [ "${1:-}" = prepare ]; then
    shared=../shared
    [ -d "$shared/data/nails-cc0" ] && [ -d "$shared/weights" ] || { echo "no $shared/data/nails-cc0 or $shared/weights" >&2; exit 2; }
    git check-ignore -q "$CARRY/commit.txt" || { echo "$CARRY is not ignored by git (.gitignore)" >&2; exit 2; }
    rm -rf "$CARRY" && mkdir -p "$CARRY/wheels" || exit 2
    cp -r "$shared/data/nails-cc0" "$CARRY/nails-cc0" && cp -r "$shared/weights" "$CARRY/weights" || exit 2
    # the versions the project pins; cp312 x86-64 wheels (the GPU machine's Python)
    pins=$(grep -E '^(shapely|tflite)==' requirements.txt)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$CARRY/wheels" $pins || exit 2
    { echo "$(git rev-parse --short HEAD)$(git status --porcelain -- ml bench dataset | grep -q . && echo ' with uncommitted changes to ml/, bench/ or dataset/')"
      date -u +%FT%TZ; } > "$CARRY/commit.txt"
    ls "$CARRY/wheels"; du -sh "$CARRY"
    exit 0
fi

smoke=0
[ "${1:-}" = --smoke ] && smoke=1
OUT=${OUT:-$PWD/var/gpu-session/out}
mkdir -p "$OUT"
LOG="$OUT/gpu-session.log"
export PYTHONUNBUFFERED=1
t0=$(date +%s)
{
    echo "[$(date -u +%T)] gpu_session.sh $*"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    PY=${PYTHON:-}
    if [ -z "$PY" ]; then
        if .venv/bin/python -c 'import torch' 2>/dev/null; then PY=.venv/bin/python; else PY=python3; fi
    fi
    if ! "$PY" -c 'import shapely, tflite' 2>/dev/null; then
        ls "$CARRY"/wheels/*.whl >/dev/null 2>&1 || { echo "no $CARRY/wheels: run 'bash bench/gpu_session.sh prepare' here and carry $CARRY"; exit 2; }
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$CARRY"/wheels/*.whl || exit 2
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    data=../shared/data/nails-cc0
    [ -d "$CARRY/nails-cc0" ] && data=$CARRY/nails-cc0
    [ -d "$CARRY/weights" ] && export NAILSET_PRETRAINED_DIR=$PWD/$CARRY/weights
    work=/tmp/gpu-session
    [ $smoke = 1 ] && work=${NAILSET_VAR_DIR:-/tmp}/gpu-session-smoke
    echo "[$(date -u +%T)] python: $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])')), set up in $(( $(date +%s) - t0 )) s; data $data"
    "$PY" bench/gpu_session.py --out "$OUT" --data "$data" --work "$work" "$@"
} 2>&1 | tee -a "$LOG"
