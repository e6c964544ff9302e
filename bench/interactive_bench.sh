#!/bin/sh
# The interactive-correction figures (issue 10) on real scans, end to end on this machine:
#   1. cases from Debian's mricron-data, into a temporary folder (/usr/bin/python3 + nibabel):
#      Colin27 (ch2.nii.gz, brain = ch2bet.nii.gz > 0) through the simulation's scanners (the
#      parameters of src/simulation/src/DomainShift.cpp's siteShift: gamma, bias field, noise,
#      in-plane resolution, scale), cropped and rotated in-plane, at 2 mm; one held-out Colin27 at
#      its full 181x217x181 grid (the issue's click budget is for that size); the INIA19 macaque
#      (inia19-t1-brain.nii.gz, brain = NeuroMaps labels > 0) at 1 mm as a second species;
#   2. a root guidance model (`tessera train --guidance`) trained briefly on a slab of
#      reference-scanner slices, as an operator would seed a site;
#   3. `tessera bench interactive`: the first 4 cases are annotated and learned in sequence, the
#      other 3 are held out; JSON, plot and the figures on stdout.
# Usage: bench/interactive_bench.sh [OUT_DIR]   (default: interactive-bench-out; takes 15-30 min
# on 2 cores). TESSERA=path/to/tessera overrides the binary; ROOT_EPOCHS, LEARN_EPOCHS, THREADS.
# STRUCTURE=cerebellum segments Colin27's cerebellum and vermis (AAL 91-116) instead of the brain:
# a compact structure, where a click's reach is a larger share of the errors (no macaque case then:
# its NeuroMaps label table is not shipped).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
tessera=${TESSERA:-$here/build/tessera}
out=${1:-interactive-bench-out}
data=${MRICRON_DATA:-/usr/share/mricron/templates}
root_epochs=${ROOT_EPOCHS:-12}
learn_epochs=${LEARN_EPOCHS:-3}
threads=${THREADS:-0}
structure=${STRUCTURE:-brain}
case "$structure" in brain|cerebellum) ;; *) echo "interactive_bench: STRUCTURE=$structure: brain or cerebellum" >&2; exit 2 ;; esac
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-interactive-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

[ -x "$tessera" ] || { echo "interactive_bench: $tessera not built (ninja -C build tessera)" >&2; exit 1; }
for f in ch2.nii.gz ch2bet.nii.gz aal.nii.gz inia19-t1-brain.nii.gz inia19-NeuroMaps.nii.gz; do
  [ -f "$data/$f" ] || { echo "interactive_bench: $data/$f missing (apt-get install mricron-data)" >&2; exit 1; }
done

echo "== preparing cases in $work" >&2
/usr/bin/python3 - "$data" "$work" "$structure" <<'EOF'
import sys
import nibabel as nib
import numpy as np
from scipy import ndimage

data, work, structure = sys.argv[1], sys.argv[2], sys.argv[3]
ch2 = nib.load(f"{data}/ch2.nii.gz")
t1 = np.asanyarray(ch2.dataobj).astype(np.float32)
if structure == "brain":
    brain = (np.asanyarray(nib.load(f"{data}/ch2bet.nii.gz").dataobj) > 0).astype(np.float32)
else:
    aal = np.asanyarray(nib.load(f"{data}/aal.nii.gz").dataobj)
    brain = ((aal >= 91) & (aal <= 116)).astype(np.float32)

# siteShift(index) of src/simulation/src/DomainShift.cpp: (gamma, bias, noise, resolution, scale);
# index >= 3 is the same family with gamma * (1 + 0.1 round) and noise + 0.01 round.
SCANNERS = {"A": (0.7, 0.0, 0.02, 1.0, 1.0), "B": (1.5, 0.25, 0.04, 1.0, 2.5), "C": (1.0, 0.10, 0.07, 2.0, 0.6)}

def scanner(name, variant):
    g, bias, noise, res, scale = SCANNERS[name]
    return g * (1 + 0.1 * variant), bias, noise + 0.01 * variant, res, scale

def shift(img, params, seed):
    gamma, bias, noise, res, scale = params
    out = img.copy()
    if res > 1:  # coarser in-plane acquisition, back onto the grid
        small = ndimage.zoom(out, (1 / res, 1 / res, 1), order=1)
        out = ndimage.zoom(small, np.array(out.shape) / np.array(small.shape), order=1)
    lo, hi = float(out.min()), float(out.max())
    rng = max(hi - lo, 1e-6)
    v = np.clip((out - lo) / rng, 0, 1) ** gamma
    fx = np.linspace(0, 1, out.shape[0])[:, None, None]
    fy = np.linspace(0, 1, out.shape[1])[None, :, None]
    v = v * (1 + bias * ((fx - 0.5) + (fy - 0.5)))
    v = v + np.random.default_rng(seed).normal(0, noise, out.shape)
    return (np.maximum(v, 0) * rng * scale).astype(np.float32)

def half(vol, mask):  # 1 mm -> 2 mm by 2x2x2 block means (the mask: majority)
    s = [d - d % 2 for d in vol.shape]
    v = vol[: s[0], : s[1], : s[2]].reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2).mean(axis=(1, 3, 5))
    m = mask[: s[0], : s[1], : s[2]].reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2).mean(axis=(1, 3, 5)) >= 0.5
    return v, m.astype(np.float32)

def save(name, img, mask, spacing):
    affine = np.diag(list(spacing) + [1.0])
    affine[:3, 3] = ch2.affine[:3, 3]
    nib.save(nib.Nifti1Image(img.astype(np.float32), affine), f"{work}/{name}.nii.gz")
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), f"{work}/{name}-brain.nii.gz")

def posed(img, mask, degrees, crop):  # rotated in-plane about the grid's centre, then cropped
    r = ndimage.rotate(img, degrees, axes=(0, 1), reshape=False, order=1, mode="constant", cval=float(img.min()))
    m = ndimage.rotate(mask, degrees, axes=(0, 1), reshape=False, order=1, mode="constant") >= 0.5
    (x0, x1), (y0, y1), (z0, z1) = crop
    return r[x0 : r.shape[0] - x1, y0 : r.shape[1] - y1, z0 : r.shape[2] - z1], m[x0 : m.shape[0] - x1, y0 : m.shape[1] - y1, z0 : m.shape[2] - z1]

t1h, brainh = half(t1, brain)
# The root model's data: the reference scanner (no shift), a slab of 36 axial slices (for the
# cerebellum, which spans 2 mm slices 5-39, a slab holding its upper half).
slab = slice(30, 66) if structure == "brain" else slice(22, 58)
save("root", t1h[:, :, slab], brainh[:, :, slab], (2, 2, 2))
# Sequence and held-out Colin27 cases: (name, scanner, variant, degrees, crop, seed).
cases = [
    ("s1-scannerB", "B", 0, 8, ((4, 6), (6, 2), (3, 5)), 11),
    ("s2-scannerC", "C", 0, -6, ((2, 8), (3, 7), (6, 2)), 12),
    ("s3-scannerB2", "B", 1, 4, ((7, 3), (5, 5), (2, 4)), 13),
    ("s4-scannerC2", "C", 1, -10, ((5, 5), (8, 2), (4, 4)), 14),
    ("h1-scannerB3", "B", 2, -4, ((3, 7), (2, 8), (5, 3)), 21),
]
for name, sc, variant, deg, crop, seed in cases:
    img, m = posed(shift(t1h, scanner(sc, variant), seed), brainh, deg, crop)
    save(name, img, m, (2, 2, 2))
# Full size, as scanned: the click-latency case.
save("h2-colin-full-scannerA", shift(t1, scanner("A", 1), 22), brain, (1, 1, 1))
if structure != "brain":
    sys.exit(0)
# A second species: the INIA19 macaque template (brain-extracted T1; brain = labelled voxels), 1 mm.
mac = nib.load(f"{data}/inia19-t1-brain.nii.gz")
mimg = np.asanyarray(mac.dataobj).astype(np.float32)
mlab = (np.asanyarray(nib.load(f"{data}/inia19-NeuroMaps.nii.gz").dataobj) > 0).astype(np.float32)
mimg, mlab = half(mimg, mlab)
save("h3-macaque-inia19", mimg, mlab, (1, 1, 1))
EOF

cat >"$work/spec.json" <<'EOF'
{"network": {"dims": 2, "axis": 2, "base_features": 16, "depth": 4, "norm": "batch", "guidance_channels": 2},
 "preprocessing": {"target_spacing": [2.0, 2.0, 0.0]}}
EOF
guidance=""
"$tessera" train --help 2>/dev/null | grep -q -- "--guidance" && guidance="--guidance"
echo "== training the root guidance model ($root_epochs epochs)" >&2
start=$(date +%s)
"$tessera" train --images "$work/root.nii.gz" --labels "$work/root-brain.nii.gz" --spec "$work/spec.json" \
  $guidance --epochs "$root_epochs" --task brain --modality MR --out "$work/root.tsm" --threads "$threads" >&2
echo "root model: $(($(date +%s) - start)) s" >&2

cases="s1-scannerB s2-scannerC s3-scannerB2 s4-scannerC2 h1-scannerB3 h2-colin-full-scannerA"
[ "$structure" = brain ] && cases="$cases h3-macaque-inia19"
images="" labels=""
for c in $cases; do
  images="$images $work/$c.nii.gz"
  labels="$labels $work/$c-brain.nii.gz"
done
echo "== tessera bench interactive" >&2
# shellcheck disable=SC2086
"$tessera" bench interactive --model "$work/root.tsm" --images $images --labels $labels --learn-cases 4 \
  --epochs "$learn_epochs" --json "$out/interactive.json" --plot "$out/interactive.png" --threads "$threads"
