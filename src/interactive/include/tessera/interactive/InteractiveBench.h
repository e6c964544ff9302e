#pragma once
// `tessera bench interactive`: the standard interactive-segmentation protocol as a library
// function, so that a test can run it on a phantom and the command on real scans.
//
// The cases are split in two: the first `learnCases` form the SEQUENCE a site annotates one after
// the other, the rest are HELD OUT (never learned). For sequence case k the model that learned
// cases 0..k-1 (M_k) predicts, the simulated user (SimulatedUser.h) clicks through a Session until
// Dice >= target or the click budget is spent; if the target was not reached the person draws
// whole slices (across the session's default axis, the slice with the most wrong voxels first)
// until it is. The result is accepted, and M_k learns from it with continual learning (replay of
// the earlier accepted cases) to become M_{k+1}. The held-out cases are clicked (no drawing) with
// M_0, M_1, …, M_N: the learning curve.
//
// Annotation effort (documented definition, per sequence case, summed):
//   manual:      one interaction per slice (across the drawing axis) that contains the structure;
//                edited voxels = the structure's voxels (the person draws all of them);
//   interactive: clicks + slices drawn; edited voxels = the structure's voxels in the drawn slices
//                (what the person had to draw; a click edits none).
//   reduction % = 100 * (1 - interactive / manual), for interactions and for edited voxels.
// Proxy masks: for every case and every k in proxyEvery, the truth's slices first, first+k, …,
// last (first..last = the slices that contain the structure) are "drawn" and the rest propagated
// (SlicePropagation.h), against copying the nearest drawn slice; Dice to the truth.
// Forgetting: for each sequence case but the last, automatic (no-click) Dice of the model right
// after learning it against the final model's, with the options' replay and again (from M_0, on
// the same accepted masks) with no replay. drop = mean(before - after), in Dice points (x100).
//
// JSON (stable fields; Dice in 0..1, seconds):
//  {"format": "tessera-bench-interactive", "version": 1,
//   "protocol": {target, max_clicks, label, axis, learn_cases, held_out, replay, epochs, proxy_every},
//   "sequence": {"cases": [CASE + {learned_before, slices_drawn, drawn_voxels, dice_accepted,
//                                  interactions, manual_interactions, manual_voxels, learn_seconds}],
//                "mean": MEAN},
//   "learning_curve": [{"learned": k, "cases": [CASE], "mean": MEAN}, …]   (k = 0..N),
//   "summary": {"first_case": {noc85, noc90}, "held_out_before": {noc85, noc90},
//               "held_out_after": {learned, noc85, noc90}},
//   "effort": {cases, manual: {interactions, edited_voxels}, interactive: {interactions, clicks,
//              slices_drawn, edited_voxels}, reduction_interactions_percent,
//              reduction_voxels_percent, definition},
//   "proxy": {axis, "cases": [{case, slices, every: [{every, drawn, dice_propagated,
//             dice_nearest_copy, seconds}]}], "mean": [{every, dice_propagated, dice_nearest_copy}]},
//   "forgetting": {"with_replay"|"without_replay": {replay, "cases": [{case, dice_after_learning_it,
//             dice_at_end}], mean_before, mean_after, drop_points}},
//   "latency": {click: {size, median_seconds, median_compute_seconds, clicks},
//               learn: {mean_seconds, max_seconds, steps}, propagate: {slices, seconds, size}}}
//  CASE = {case, size, noc85, noc90, reached85, reached90, clicks, dice_per_click,
//          seconds_per_click, compute_seconds_per_click}
//  MEAN = {noc85, noc90, dice_per_click (cases that stopped early keep their last Dice),
//          seconds_per_click (mean over all clicks)}

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/image/Volume.h"
#include "tessera/interactive/ContinualLearning.h"
#include "tessera/interactive/SimulatedUser.h"
#include "tessera/interactive/SlicePropagation.h"

namespace tessera::interactive {

struct BenchCase {
  std::string name;
  image::Volume image;
  image::Volume truth;  // label map on the image's grid; the structure is truth == label
};

struct InteractiveBenchOptions {
  int learnCases = -1;  // the sequence: the first N cases (-1: all but the last); at least one is held out
  ClickLoopOptions clicks;
  ContinualOptions learning;
  std::vector<int> proxyEvery{5, 10, 20};
  PropagationOptions propagation;
  bool forgetting = true;        // also learn the sequence once without replay
  bool curveEveryStep = true;    // held-out cases after every learned case (false: M_0 and M_N only)
  std::filesystem::path workDir;  // sessions and model files (created; required)
  std::function<void(const std::string&)> say;  // progress lines
};

struct AnnotationEffort {
  int64_t interactions = 0;
  int64_t editedVoxels = 0;
};

// Drawing every slice across `axis` that contains truth == label, as defined above.
AnnotationEffort manualEffort(const image::Volume& truth, int axis, int label);

// The slice indices a person draws when drawing every `every`-th slice of the structure: first,
// first + every, … and the last slice that contains truth == label (so that the drawn slices
// bracket the structure and neither propagation nor the nearest-slice copy extrapolates past a
// drawn end). Empty for an empty structure.
std::vector<int64_t> everyNthStructureSlice(const image::Volume& truth, int axis, int label, int every);

// The case count and the options alone (before any file is read): Error(BadRequest) naming the
// option. The work directory is not checked here.
void checkBenchOptions(size_t caseCount, const InteractiveBenchOptions& options);

// checkBenchOptions, a work directory, and the cases (unique names, one grid per case, the
// structure present): Error(BadRequest) naming the case or option.
void checkBenchInput(const std::vector<BenchCase>& cases, const InteractiveBenchOptions& options);

// Runs the whole protocol with the model file at `modelPath` (guidance channels required: the
// simulated user clicks). Returns the JSON described above.
nlohmann::json runInteractiveBench(const std::filesystem::path& modelPath, const std::vector<BenchCase>& cases,
                                   const InteractiveBenchOptions& options);

// The figures as a few lines of text for a terminal.
std::string formatInteractiveBench(const nlohmann::json& report);

}  // namespace tessera::interactive
