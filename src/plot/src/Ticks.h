#pragma once
// Axis tick positions at round steps (1, 2, 2.5 or 5 times a power of ten) and their labels.

#include <string>
#include <vector>

namespace tessera::plot {

struct Ticks {
  std::vector<double> values;  // ascending, all within [lo, hi]
  int decimals = 0;            // digits after the point in labels; -1 means use %g
};

// At most about maxCount ticks within [lo, hi]; integerOnly restricts steps to whole numbers
// (generation or epoch axes must not show 2.5).
Ticks niceTicks(double lo, double hi, int maxCount, bool integerOnly);

std::string formatTick(double value, const Ticks& ticks);

}  // namespace tessera::plot
