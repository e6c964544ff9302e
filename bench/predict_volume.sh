#!/usr/bin/env bash
# Full-volume `tessera predict` time: read a 181x217x181 MR volume (Colin 27, ch2.nii.gz from
# Debian's mricron-data), segment it, write the label map. Prints the median over --runs of the
# whole command's wall time (read -> write, process start included) and of the segmentation
# alone (the seconds `tessera predict` reports).
#
# usage: bench/predict_volume.sh [--tessera BUILD/tessera] [--model M.tsm] [--in IMAGE]
#                                [--runs N] [--threads N]
#
# Without --model it first trains a model for one epoch on ch2.nii.gz with ch2bet.nii.gz (its
# brain mask) as labels; the network is the default `tessera train` picks for that image (2D,
# base 16, depth 4), so the time is the one a user's model of the default size takes. Its Dice is
# irrelevant here. The trained model is kept in $TMPDIR for later runs.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
tessera="$here/../build/tessera"
model=""
templates=/usr/share/mricron/templates  # `dpkg -L mricron-data | grep ch2`
in="$templates/ch2.nii.gz"
runs=3
threads=""
while (($#)); do
  case "$1" in
    --tessera) tessera="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --in) in="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "predict_volume.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

[[ -x "$tessera" ]] || { echo "predict_volume.sh: $tessera does not exist (build the tessera target)" >&2; exit 1; }
[[ -f "$in" ]] || { echo "predict_volume.sh: $in does not exist (apt-get install mricron-data)" >&2; exit 1; }
thread_args=()
[[ -n "$threads" ]] && thread_args=(--threads "$threads")

tmp="${TMPDIR:-/tmp}"
if [[ -z "$model" ]]; then
  model="$tmp/tessera_bench_ch2_brain.tsm"
  if [[ ! -f "$model" ]]; then
    mask="$templates/ch2bet.nii.gz"
    [[ -f "$mask" ]] || { echo "predict_volume.sh: $mask does not exist; pass --model" >&2; exit 1; }
    echo "training a model for one epoch on $in (labels: $mask > 0) ..." >&2
    "$tessera" train --images "$in" --labels "$mask" --binarize --epochs 1 --no-augment --out "$model" \
      "${thread_args[@]}" >&2
  fi
fi

out="$(mktemp "$tmp/tessera_predict_XXXXXX.nii.gz")"
trap 'rm -f "$out"' EXIT
walls=() segs=()
for ((i = 0; i < runs; ++i)); do
  t0=$(date +%s.%N)
  line="$("$tessera" predict --model "$model" --in "$in" --out "$out" "${thread_args[@]}")"
  t1=$(date +%s.%N)
  walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
  # "wrote OUT (GEOMETRY, S s)"
  segs+=("$(sed -n 's/.*, \([0-9.e+-]*\) s)$/\1/p' <<<"$line")")
  echo "run $((i + 1)): $line" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
printf 'predict %s: %.2f s wall (read, segment, write; median of %d), %.2f s segmentation; %s thread(s), load average %s\n' \
  "$(basename "$in")" "$(median "${walls[@]}")" "$runs" "$(median "${segs[@]}")" \
  "${threads:-all}" "$(cut -d' ' -f1 /proc/loadavg)"
