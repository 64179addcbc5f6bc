#!/usr/bin/env bash
# The tiny recipe's parallel stages (1 features, 2 GMM alignments, 5 decoding) with --cmd local and
# with --cmd dask://127.0.0.1:PORT against a scheduler and 2 single-threaded workers started here
# by hand; prints the wall time of each and compares the outputs byte for byte.
#   bench/cmd_dask_tiny.sh [ROOT=/tmp/cmd_dask_tiny] [PORT=8799]
set -euo pipefail
root=${1:-/tmp/cmd_dask_tiny}
port=${2:-8799}
R=$(cd "$(dirname "$0")/.." && pwd)
. "$R/path.sh"
rm -rf "$root"; mkdir -p "$root"
run() {  # run DIR STAGE [options]: one stage of egs/synth/run.sh (conf/tiny) into DIR
  local d=$1 s=$2; shift 2
  bash "$R/egs/synth/run.sh" --conf-dir conf/tiny --data "$d/data" --exp "$d/exp" --corpus "$d/corpus" \
    --nj 2 --stage "$s" --stop-stage "$s" "$@" > "$d/stage$s.log" 2>&1
}
timed() {  # timed NAME DIR STAGE [options]
  local name=$1 t0; shift; t0=$(date +%s.%N); run "$@"
  printf '%-28s %6.1f s\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" | tee -a "$root/times.txt"
}
L=$root/local D=$root/dask
mkdir -p "$L" "$D"
run "$L" 0
cp -a "$L/data" "$L/corpus" "$D/"          # the same stage-0 corpus for both
for s in 1 2 3 4 5; do timed "local stage $s" "$L" $s; done
dask scheduler --host 127.0.0.1 --port "$port" --no-dashboard > "$root/scheduler.log" 2>&1 &
sched=$!
sleep 3
(cd "$R" && PYTHONPATH=$R OMP_NUM_THREADS=1 dask worker "tcp://127.0.0.1:$port" --nworkers 2 --nthreads 1 \
  --host 127.0.0.1 --no-dashboard > "$root/workers.log" 2>&1) &
workers=$!
trap 'kill $workers $sched 2>/dev/null || true' EXIT
python -c "from distributed import Client; Client('tcp://127.0.0.1:$port', timeout=60).wait_for_workers(2, timeout=60)"
timed "dask stage 1" "$D" 1 --cmd "dask://127.0.0.1:$port"
timed "dask stage 2" "$D" 2 --cmd "dask://127.0.0.1:$port"
timed "(local) stage 3" "$D" 3
timed "(local) stage 4" "$D" 4
timed "dask stage 5" "$D" 5 --cmd "dask://127.0.0.1:$port"
# byte comparison (paths of one run inside the files read as the other's; gzip compared
# decompressed, torch checkpoints by their tensors: both embed their own paths)
python - "$L" "$D" <<'PY'
import gzip, sys
from pathlib import Path
L, D = map(Path, sys.argv[1:])
files = [p.relative_to(L) for p in sorted(L.rglob("*")) if p.is_file()
         and "/log/" not in f"/{p.relative_to(L)}" and p.suffix not in (".log", ".json", ".png", ".md", ".csv")
         and not p.name.startswith((".done", "stage_times", "curves", "report")) and "checkpoints" not in p.parts
         and (p.parent.name.endswith(("_mfcc", "_logmel", "data")) or "exp" in p.parts)]
same = diff = lats = lat_bytes = 0
for f in files:
    a, b = L / f, D / f
    if not b.exists():
        ok = False
    elif f.name == "lat.ark":  # the same lattices up to state numbering (Kaldi's raw lattice
        import numpy as np     # state order depends on the decoder's history in its process)
        from asr import lattice as Lat
        la, lb = (dict(Lat.read_lattices(x.parent / "lat.scp")) for x in (a, b))
        def canon(z):
            arcs = np.stack([z.arcs[k].astype(np.float64) for k in ("ilabel", "olabel", "graph", "acoustic")], 1)
            return (z.num_states, sorted(map(tuple, arcs.tolist())), sorted(map(tuple, z.final.tolist())))
        ok = list(la) == list(lb) and all(canon(la[u]) == canon(lb[u]) for u in la)
        lat_bytes += a.read_bytes() == b.read_bytes()
        lats += 1
    elif f.suffix == ".pt":
        import torch
        sa, sb = (torch.load(x, weights_only=False)["state_dict"] for x in (a, b))
        ok = sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    else:
        ra, rb = a.read_bytes(), b.read_bytes()
        if f.suffix == ".gz":
            ra, rb = gzip.decompress(ra), gzip.decompress(rb)
        ok = ra == rb or ra.replace(str(L).encode(), str(D).encode()) == rb
    same += ok
    diff += not ok
    if not ok:
        print("DIFFERS:", f)
print(f"{same} files identical, {diff} differ ({lats} lat.ark compared by their lattices, {lat_bytes} of them "
      "also byte for byte)")
PY
