#!/usr/bin/env bash
# Runs the papers' claims through mixcal, the way a lab would: a coordinator
# (its SQLite file in mixcal-work/reproduce/), one CPU worker with a job per
# core, every spec of examples/papers/ submitted (the class-overlap sweep once
# per number of classes and separation), followed to the end; then the
# summaries with paired comparisons against the baseline, the figures
# (docs/results/*.svg, drawn by `mixcal plot`) and docs/results.md with each
# claim's numbers and verdict (bench/write_results.py).
#
#   bench/reproduce.sh                 # everything, about 24 minutes on 2 cores (5 seeds: 1425 s measured)
#   ONLY=label-noise bench/reproduce.sh   # one claim's sweeps (name substring)
#   WRITE_ONLY=1 bench/reproduce.sh      # rewrite docs/results.md from the
#                                        # sweeps already in the database
#
# The sweeps carry request ids, so running it again after an interruption
# submits nothing twice: it resumes the sweeps in the same database.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="${MIXCAL_BUILD_DIR:-$root/build}"
WORK="${WORK:-$root/mixcal-work/reproduce}"
OUT="${OUT:-$root/docs}"
ONLY="${ONLY:-}"
WRITE_ONLY="${WRITE_ONLY:-0}"

bash deploy/setup.sh >/dev/null
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2 --target mixcal-coordinator mixcal-worker mixcal >/dev/null
mixcal() { "$build/client/mixcal" "$@"; }

mkdir -p "$OUT/results"
source deploy/lib/local.sh
start_coordinator "$build" "$WORK"
cores=$(nproc)
if [ "$WRITE_ONLY" != 1 ]; then
  OMP_NUM_THREADS=1 "$build/worker/mixcal-worker" --threads "$cores" --slots "$cores" \
    --checkpoint_dir "$WORK/checkpoints" --name reproduce 2>>"$WORK/worker.log" &
  pids+=($!)
fi

# The sweeps: name -> spec file (and overrides for the overlap grid).
declare -a names=() files=() edits=()
add() { names+=("$1"); files+=("$2"); edits+=("${3:-}"); }
add thulasidasan-fmnist examples/papers/thulasidasan-fmnist.json
add thulasidasan-unknown-classes examples/papers/thulasidasan-unknown-classes.json
add label-noise examples/papers/label-noise-fmnist.json
for k in 2 10; do
  for sep in 0.2 0.1 0.05 0.02; do
    add "overlap-k$k-sep$sep" examples/papers/chidambaram-overlap.json "$k $sep"
  done
done

start=$(date +%s)
if [ "$WRITE_ONLY" != 1 ]; then
: > "$WORK/sweeps.tsv.new"
for i in "${!names[@]}"; do
  name=${names[$i]} file=${files[$i]} edit=${edits[$i]}
  [[ -n "$ONLY" && "$name" != *"$ONLY"* ]] && continue
  spec="$WORK/spec-$name.json"
  if [[ -n "$edit" ]]; then
    # The overlap grid: one sweep per (classes, separation) of the template.
    /usr/bin/python3 - "$file" "$spec" $edit <<'PY'
import json, sys
src, dst, k, sep = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
s = json.load(open(src))
s["data"]["synthetic"]["classes"] = k
s["data"]["synthetic"]["separation"] = sep
s["name"] = f"chidambaram-overlap-k{k}-sep{sep:g}"
s["requestId"] = f"papers-chidambaram-overlap-k{k}-sep{sep:g}-v2"
json.dump(s, open(dst, "w"), indent=2)
PY
  else
    cp "$file" "$spec"
  fi
  id=$(mixcal submit "$spec" --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  printf '%s\t%s\t%s\n' "$name" "$id" "$file" >> "$WORK/sweeps.tsv.new"
  echo "submitted $name: sweep $id"
done
mv "$WORK/sweeps.tsv.new" "$WORK/sweeps.tsv"

# Follow each to its end (the worker drains them in fair turns).
while IFS=$'\t' read -r name id file; do
  mixcal watch "$id" --format json > "$WORK/watch-$id.jsonl" 2>&1 || true
  echo "sweep $id ($name) ended after $(( $(date +%s) - start )) s"
done < "$WORK/sweeps.tsv"
echo "all sweeps ended in $(( $(date +%s) - start )) s" | tee "$WORK/elapsed.txt"
fi

# Summaries (every split, paired against the baseline) and figures.
while IFS=$'\t' read -r name id file; do
  mixcal summary "$id" --vs baseline --format json > "$WORK/summary-$id.json"
  mixcal summary "$id" --vs baseline > "$WORK/summary-$id.txt"
  mixcal jobs "$id" --format json > "$WORK/jobs-$id.json"
done < "$WORK/sweeps.tsv"
mixcal sweeps --format json > "$WORK/sweeps.json"

/usr/bin/python3 bench/write_results.py --work "$WORK" --out "$OUT" \
  --mixcal "$build/client/mixcal"
echo "wrote $OUT/results.md and $OUT/results/*.svg"
