#include "Ticks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tessera::plot {

namespace {

double niceStep(double raw, bool integerOnly) {
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  // 2.5 only for fractional steps: 25, 250 ... are fine, but on an integer axis 2.5 never is.
  const bool allowQuarter = !integerOnly || magnitude >= 10.0;
  double nice = 10.0;
  if (fraction <= 1.0) nice = 1.0;
  else if (fraction <= 2.0) nice = 2.0;
  else if (allowQuarter && fraction <= 2.5) nice = 2.5;
  else if (fraction <= 5.0) nice = 5.0;
  const double step = nice * magnitude;
  return integerOnly ? std::max(1.0, std::round(step)) : step;
}

// Fewest decimals that write `step` exactly, so that adjacent labels never print the same.
int decimalsFor(double step) {
  for (int d = 0; d <= 9; ++d) {
    const double scaled = step * std::pow(10.0, d);
    if (std::abs(scaled - std::round(scaled)) <= 1e-6 * scaled) return d;
  }
  return -1;
}

}  // namespace

Ticks niceTicks(double lo, double hi, int maxCount, bool integerOnly) {
  Ticks ticks;
  const double span = hi - lo;
  if (!std::isfinite(span) || span <= 0.0) return ticks;
  const double step = niceStep(span / std::max(1, maxCount), integerOnly);
  const double first = std::ceil(lo / step - 1e-9);
  const double last = std::floor(hi / step + 1e-9);
  // Far from zero relative to the step, lo + k*step stops being representable; label the ends only.
  if (!std::isfinite(first) || !std::isfinite(last) || std::abs(first) > 1e12 || std::abs(last) > 1e12 ||
      last - first > 1000) {
    ticks.values = {lo, hi};
    ticks.decimals = -1;
    return ticks;
  }
  for (double k = first; k <= last; k += 1.0) {
    double v = k * step;
    if (std::abs(v) < step * 1e-9) v = 0.0;  // no "-0.0" labels
    ticks.values.push_back(std::clamp(v, lo, hi));
  }
  const double largest = std::max(std::abs(lo), std::abs(hi));
  ticks.decimals = largest >= 1e7 ? -1 : decimalsFor(step);
  return ticks;
}

std::string formatTick(double value, const Ticks& ticks) {
  char buffer[64];
  if (ticks.decimals < 0) std::snprintf(buffer, sizeof buffer, "%.4g", value);
  else std::snprintf(buffer, sizeof buffer, "%.*f", ticks.decimals, value);
  return buffer;
}

}  // namespace tessera::plot
