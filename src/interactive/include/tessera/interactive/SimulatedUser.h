#pragma once
// The standard protocol's simulated user (as in DeepEdit/DeepGrow evaluations): each step it
// looks at the current mask and the truth, takes the LARGEST error region (a 6-connected
// component of false negatives or of false positives, whichever has more voxels) and clicks at
// its centre, i.e. the voxel farthest (in mm, spacing-aware exact Euclidean distance) from the
// region's border; positive for a miss, negative for a false positive. One click per step until
// Dice >= target or the click budget is spent.

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tessera/image/Volume.h"
#include "tessera/nn/Guidance.h"

namespace tessera::interactive {

class Session;

struct ErrorRegionClick {
  nn::Click click;
  int64_t regionVoxels = 0;     // size of the error region clicked into
  double borderDistanceMm = 0;  // the click's distance to that region's border (voxels outside count as border)
};

// The next click for foreground `label` (mask voxels == label against truth voxels == label);
// nullopt when the mask already equals the truth for that label. Equally large regions: the one
// found first in voxel order; equally deep voxels: the one nearest the region's centroid, then
// the first in voxel order. Deterministic.
// Throws Error(BadRequest) when the grids differ in size.
std::optional<ErrorRegionClick> nextClick(const image::Volume& mask, const image::Volume& truth, int label = 1);

struct ClickLoopOptions {
  double targetDice = 0.90;
  int maxClicks = 20;
  int label = 1;
};

// NoC@X is the number of clicks after which Dice first reached X (0: the initial mask already
// did). Never reached within maxClicks: noc = maxClicks + 1 and reached = false, so averages over
// cases stay finite but penalise failures (report the reached flags alongside).
struct ClickLoopResult {
  std::vector<double> dicePerClick;     // [0]: before any click; [n]: after click n
  std::vector<double> secondsPerClick;  // [n-1]: wall time of click n (the callback or session step)
  std::vector<nn::Click> clicks;
  int noc85 = 0;
  int noc90 = 0;
  bool reached85 = false;
  bool reached90 = false;
  int clicksUsed() const { return static_cast<int>(clicks.size()); }
};

// JSON with stable fields: noc85, noc90, reached85, reached90, clicks, dice_per_click,
// seconds_per_click.
nlohmann::json toJson(const ClickLoopResult& result);

// NoC@threshold over a Dice sequence as above (dicePerClick[0] = no click yet).
int clicksToReach(const std::vector<double>& dicePerClick, double threshold, int maxClicks, bool* reached = nullptr);

// Applies one click and returns the new mask (a session step, a model call, or an oracle in tests).
using ApplyClick = std::function<image::Volume(const nn::Click&)>;

ClickLoopResult runClickLoop(const image::Volume& initialMask, const image::Volume& truth, const ApplyClick& apply,
                             const ClickLoopOptions& options = {});

// The same loop driving a session's click step (the mask is re-inferred by the session's model).
ClickLoopResult runClickLoop(Session& session, const image::Volume& truth, const ClickLoopOptions& options = {});

}  // namespace tessera::interactive
