#pragma once
// 2D pieces of slice propagation, on plain row-major float buffers (index = u + width * v), in
// pixel units: displacement fields between neighbouring slices, warping, inverting, and signed
// distance maps. Only SlicePropagationRegistration.cpp sees ITK.

#include <cstdint>
#include <vector>

namespace tessera::interactive::detail {

// A displacement field on the fixed slice: pixel p of the fixed slice corresponds to point
// p + (dx[p], dy[p]) of the moving slice (ITK's convention for registration output).
struct SliceField {
  int width = 0, height = 0;
  std::vector<float> dx, dy;

  static SliceField identity(int width, int height);
};

struct DemonsSettings {
  std::vector<unsigned> iterations;  // per level, coarsest first
  double fieldSigma = 1.5;
};

// Registers `moving` onto `fixed` (both width x height, intensities already normalised alike) with
// ITK's fast symmetric-forces demons in a multi-resolution pyramid, single-threaded: callers run slice
// pairs in parallel instead, since one 2D slice is too small for ITK's per-filter threads to pay.
SliceField registerSlicePair(const float* fixed, const float* moving, int width, int height,
                             const DemonsSettings& settings);

// Workers for running slice pairs side by side: ITK's global default thread count, which follows
// ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS and the machine's cores.
int defaultWorkerCount();

// The field that maps the other way (moving → fixed), by fixed-point iteration
// v(y) = -u(y + v(y)); slice-to-slice fields are small and smooth, so a few rounds converge.
SliceField invertField(const SliceField& field);

// out(p) = in(p + field(p)), bilinear, clamped at the border.
void warpSlice(const float* in, const SliceField& field, float* out);

// Signed distance (pixels) to the boundary of `mask` (non-zero = inside): negative inside,
// positive outside, the boundary halfway between pixel centres (±0.5 on the pixels next to it).
// A mask with no background gets -(width + height) everywhere. The mask must not be empty.
void signedDistance(const uint8_t* mask, int width, int height, float* out);

}  // namespace tessera::interactive::detail
