#pragma once
// Overlap and surface-distance metrics between a predicted and a reference label map.

#include <map>

#include "tessera/image/Volume.h"

namespace tessera::image {

struct LabelMetrics {
  double dice = 0.0;
  double jaccard = 0.0;
  // 95th percentile Hausdorff distance in mm (spacing-aware): the larger of the two directed
  // 95th percentiles of surface-to-surface distances. 0 when both masks are empty, +infinity
  // when exactly one is empty. Surface voxels are foreground voxels with a 6-neighbour that is
  // background or outside the image (axes of size 1 have no neighbours: 2D masks use their
  // contour); the percentile is the nearest-rank one, sorted[ceil(0.95 n) - 1].
  double hd95Mm = 0.0;
  double volumePredMl = 0.0;
  double volumeTruthMl = 0.0;
};

// Dice and Jaccard are 1 when both masks are empty (nothing to find, nothing found).
double diceScore(const Volume& pred, const Volume& truth, int label);
double jaccardScore(const Volume& pred, const Volume& truth, int label);
double hausdorff95(const Volume& pred, const Volume& truth, int label);

// Metrics for every non-zero label present in either map. Throws Error when the two
// grids differ (no silent resampling).
std::map<int, LabelMetrics> evaluateLabels(const Volume& pred, const Volume& truth);

}  // namespace tessera::image
