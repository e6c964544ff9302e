"""Checks the federation demo's report.json against issue 13's bar (exit 1 if missed).

The demo's task is the one where pooling matters (six lobes, sites that differ in coverage,
labels and scanner). For the first strategy in the report:
  - mean Dice of the global model rises from generation 0 to the last round;
  - federated >= local-only + 0.05 mean Dice (every site alone on the same schedule);
  - federated within GAP of centralized (one model on all sites' data pooled).
Every other strategy is printed for comparison.
"""
import json
import sys

GAIN = 0.05
GAP = float(sys.argv[2]) if len(sys.argv) > 2 else 0.01

report = json.load(open(sys.argv[1]))
lines = report["three_lines"]
local = lines["local_only"][-1]
central = lines.get("centralized", [None])[-1]
print(f"local-only mean {local:.4f}" + (f", centralized mean {central:.4f}" if central is not None else ""))
ok = True
for k, run in enumerate(report["runs"]):
    first, last = run["rounds"][0]["mean"], run["rounds"][-1]["mean"]
    line = next(l for l in lines["federated"] if l["strategy"] == run["strategy"])
    gain = line["gain_over_local_only"]
    gap = line.get("gap_to_centralized")
    print(f"{run['strategy']}: mean Dice {first:.4f} -> {last:.4f}; {gain:+.4f} over local-only"
          + ("" if gap is None else f", {gap:.4f} below centralized" if gap >= 0 else f", {-gap:.4f} above centralized"))
    if k > 0:
        continue
    if not last > first:
        print(f"  FAIL: mean Dice does not rise under {run['strategy']}")
        ok = False
    if gain < GAIN:
        print(f"  FAIL: federated gains {gain:+.4f} over local-only, the bar is +{GAIN}")
        ok = False
    if gap is None:
        print("  FAIL: the report has no centralized line")
        ok = False
    elif gap > GAP:
        print(f"  FAIL: federated is {gap:.4f} below centralized, the bar is {GAP}")
        ok = False
sys.exit(0 if ok else 1)
