#pragma once
// "Where to correct next": slices ranked by expected error, as a pure function of the masks and
// the model's uncertainty so that it can be tested on synthetic volumes.
//
// Score of slice s across axis a (each term scaled to 0..1 among the slices of that axis):
//   score = residualWeight * R(s) / max R  +  entropyWeight * U(s) / max U
// R(s): voxels of slice s whose label differs between the previous and the current mask (the
//       residual: where the last correction or the last learning moved the prediction; where the
//       model just changed its mind it is likely still wrong nearby).
// U(s): mean normalised entropy of slice s (entropy / log(classes), 0 certain .. 1 uniform).
// A term whose maximum is 0 contributes 0 (no residual yet right after `start`: entropy alone
// ranks). With the default weights 0.5/0.5 scores lie in 0..1; drawn slices are never suggested
// (the person already fixed them). Ties go to the lower axis, then the lower slice.

#include <cstdint>
#include <vector>

#include "tessera/image/Volume.h"

namespace tessera::interactive {

struct SliceSuggestion {
  int axis = 2;
  int64_t slice = 0;
  double score = 0.0;
  double residualVoxels = 0.0;  // R(s)
  double meanEntropy = 0.0;     // U(s)
};

struct DrawnSlice {
  int axis = 2;
  int64_t slice = 0;
  bool operator==(const DrawnSlice&) const = default;
};

struct SuggestionOptions {
  std::vector<int> axes{2};  // axes to rank along (a 2D model's slice axis, or all three for 3D models)
  double residualWeight = 0.5;
  double entropyWeight = 0.5;
  int top = 1;  // how many to return (at most)
};

// `entropy` holds normalised entropy in 0..1 on the masks' grid; it may be empty (then U = 0).
// Throws Error(BadRequest) when the grids differ or an axis is not 0..2.
std::vector<SliceSuggestion> rankSlices(const image::Volume& previousMask, const image::Volume& currentMask,
                                        const image::Volume& entropy, const std::vector<DrawnSlice>& drawn,
                                        const SuggestionOptions& options = {});

}  // namespace tessera::interactive
