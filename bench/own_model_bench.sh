#!/usr/bin/env bash
# A researcher's own TorchScript module trained by mixcal (mixcal-train, the
# worker's training core) against the same module in plain PyTorch eager
# (bench/own_model_bench.py), same data, threads and batch, in this run:
# training samples per second, the median of epochs 2..N (epoch 1 holds
# TorchScript's profiling runs). Prints the figures and their ratio.
#
#   bash bench/own_model_bench.sh [BUILD_DIR] [THREADS] [EPOCHS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
threads=${2:-1}
epochs=${3:-4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
py=/usr/bin/python3
$py "$here/../examples/own-model/make_model.py" --kind cnn --channels 1 --classes 10 \
  --out "$work/cnn.pt" >/dev/null
$py "$here/../examples/own-model/make_data.py" --from-fashion-mnist 6000 \
  --out "$work/fmnist.npz" >/dev/null
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mixcal=$(OMP_NUM_THREADS=$threads "$build/worker/mixcal-train" --model-file "$work/cnn.pt" \
  --data-file "$work/fmnist.npz" --method mixup:0.4 --epochs "$epochs" --batch-size 128 \
  --threads "$threads" --val-fraction 0 --no-temperature-scaling --test-limit 1000 \
  --predictions none 2>/dev/null |
  $py -c 'import sys, json
for l in sys.stdin:
    r = json.loads(l)
    if r.get("split") == "test" and r["epoch"] > 1: print(r["samples_per_sec"])' | median)
eager=$(OMP_NUM_THREADS=$threads $py "$here/own_model_bench.py" --data "$work/fmnist.npz" \
  --epochs "$epochs" --threads "$threads" |
  $py -c 'import sys, json
for l in sys.stdin:
    r = json.loads(l)
    if r["epoch"] > 1: print(r["samples_per_sec"])' | median)
# The same script with glibc keeping freed memory as mixcal does
# (base/program.h KeepFreedMemory): where the difference comes from.
eager_kept=$(OMP_NUM_THREADS=$threads MALLOC_MMAP_THRESHOLD_=33554432 \
  MALLOC_TRIM_THRESHOLD_=67108864 $py "$here/own_model_bench.py" \
  --data "$work/fmnist.npz" --epochs "$epochs" --threads "$threads" |
  $py -c 'import sys, json
for l in sys.stdin:
    r = json.loads(l)
    if r["epoch"] > 1: print(r["samples_per_sec"])' | median)
$py -c "print(f'own TorchScript SmallCnn, Fashion-MNIST 6000 images, mixup, batch 128, $threads thread(s):')
print(f'  mixcal (LibTorch, TorchScript)  {$mixcal:8.0f} samples/s')
print(f'  PyTorch eager                   {$eager:8.0f} samples/s')
print(f'  ratio                           {$mixcal / $eager:8.2f}x')
print(f'  PyTorch eager, malloc as mixcal {$eager_kept:8.0f} samples/s')
print(f'  ratio to that                   {$mixcal / $eager_kept:8.2f}x')"
