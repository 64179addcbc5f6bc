#!/usr/bin/env bash
# torchrun on one node or several (one agent per node, c10d rendezvous at --master).
#   local/torchrun.sh [--nnodes N] [--node-rank R] [--master ADDR:PORT] [--nproc-per-node P] \
#       [--rdzv-id ID] [--join-timeout S] -m asr.train --config ... --dir exp/am_x --resume
# --nnodes 1 (default): `torchrun --standalone` (today's single-node run).
# --nnodes N > 1: run this once per node, each with the same --master (a host of the job and a
# free port; the agent on that host serves the rendezvous store) and --rdzv-id; global ranks are
# assigned as the agents join (RANK 0 writes checkpoints and logs to the shared --dir).
# Under SLURM (`srun --ntasks-per-node=1 local/torchrun.sh ...`), unset options come from the
# job: N = SLURM_NNODES, R = SLURM_NODEID, master = first host of SLURM_JOB_NODELIST:29500,
# ID = SLURM_JOB_ID.
set -euo pipefail
nnodes=${SLURM_NNODES:-1}           # nodes, one agent each (1: torchrun --standalone)
node_rank=${SLURM_NODEID:-0}        # this node's rank, 0 .. nnodes-1
master=                             # ADDR:PORT of the c10d rendezvous (a host of the job, a free port)
nproc_per_node=1                    # worker processes (GPUs) per node
rdzv_id=${SLURM_JOB_ID:-bl-asr}     # rendezvous id, the same on every node
join_timeout=3600                   # s the first agents wait for the last (node 0 may still be preparing data)
# this script's options come first; the rest (-m asr.train ...) is torchrun's program and its arguments
declare -a opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nnodes|--node-rank|--master|--nproc-per-node|--rdzv-id|--join-timeout)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      opts+=("$1" "$2"); shift 2 ;;
    --help|-h) opts+=("$1"); shift ;;
    *) break ;;
  esac
done
declare -a rest=("$@")
set -- ${opts[@]+"${opts[@]}"}
. "$(dirname "$0")/parse_options.sh"
set -- ${rest[@]+"${rest[@]}"}
[ $# -gt 0 ] || { echo "$0: nothing to run (give e.g. -m asr.train ...)" >&2; exit 1; }
if [ "$nnodes" -le 1 ]; then
  exec torchrun --standalone --nnodes=1 --nproc_per_node="$nproc_per_node" "$@"
fi
if [ -z "$master" ]; then
  if [ -n "${SLURM_JOB_NODELIST:-}" ]; then
    master="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):29500"
  else
    echo "$0: --nnodes $nnodes needs --master ADDR:PORT (or run it under SLURM)" >&2; exit 1
  fi
fi
echo "$0: node $node_rank of $nnodes, $nproc_per_node process(es), rendezvous $master (id $rdzv_id)" >&2
exec torchrun --nnodes="$nnodes" --node_rank="$node_rank" --nproc_per_node="$nproc_per_node" \
  --rdzv_backend=c10d --rdzv_endpoint="$master" --rdzv_id="$rdzv_id" \
  --rdzv_conf="join_timeout=$join_timeout" --max_restarts=0 "$@"
