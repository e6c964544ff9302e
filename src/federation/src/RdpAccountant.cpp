#include "tessera/federation/RdpAccountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "tessera/common/Error.h"

namespace tessera::federation {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double logAdd(double x, double y) {
  const double a = std::min(x, y), b = std::max(x, y);
  if (a == -kInf) return b;
  return std::log1p(std::exp(a - b)) + b;
}

// log(e^x − e^y) for x ≥ y. The series' alternating terms can cancel below double precision;
// then the difference is 0 in the log domain (−∞), exactly as TF-Privacy's _log_sub.
double logSub(double x, double y) {
  if (y == -kInf) return x;
  if (x <= y) return -kInf;
  const double d = x - y;
  if (d > 700) return x;  // expm1 would overflow; log(e^x − e^y) = x to double precision
  return std::log(std::expm1(d)) + y;
}

// log(erfc(x)), also where erfc underflows (x ≳ 26): the asymptotic expansion TF-Privacy uses.
double logErfc(double x) {
  const double r = std::erfc(x);
  if (r > 0) return std::log(r);
  return -std::log(M_PI) / 2 - std::log(x) - x * x - 0.5 / (x * x) + 0.625 / std::pow(x, 4) -
         37.0 / 24.0 / std::pow(x, 6) + 353.0 / 64.0 / std::pow(x, 8);
}

double logBinomial(double n, double k) {
  return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1);
}

// log A_α for integer α: A = Σ_i C(α,i) q^i (1−q)^(α−i) exp((i²−i)/(2σ²)).
double logAInt(double q, double sigma, int alpha) {
  double logA = -kInf;
  const double lq = std::log(q), l1q = std::log1p(-q);
  for (int i = 0; i <= alpha; ++i) {
    const double term = logBinomial(alpha, i) + i * lq + (alpha - i) * l1q + (double(i) * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, term);
  }
  return logA;
}

// log A_α for fractional α: the two tails split at z0 (Mironov et al. 2019, section 3.3), summed
// until both terms fall below e^−30 relative to nothing: TF-Privacy's stopping rule, kept so the
// numbers agree with its tests.
double logAFrac(double q, double sigma, double alpha) {
  double logA0 = -kInf, logA1 = -kInf;
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  const double lq = std::log(q), l1q = std::log1p(-q);
  // C(α, i) for real α: |C| by lgamma magnitudes, its sign from the product (α−i+1)/i.
  double logCoef = 0;  // log|C(α,0)| = 0
  bool positive = true;
  for (int i = 0; i < 100000; ++i) {
    if (i > 0) {
      const double factor = alpha - i + 1;
      if (factor == 0) break;  // cannot happen for non-integer α; guards the log
      logCoef += std::log(std::fabs(factor)) - std::log(double(i));
      if (factor < 0) positive = !positive;
    }
    const double j = alpha - i;
    const double logT0 = logCoef + i * lq + j * l1q;
    const double logT1 = logCoef + j * lq + i * l1q;
    const double logE0 = std::log(0.5) + logErfc((i - z0) / (std::sqrt(2.0) * sigma));
    const double logE1 = std::log(0.5) + logErfc((z0 - j) / (std::sqrt(2.0) * sigma));
    const double logS0 = logT0 + (double(i) * i - i) / (2 * sigma * sigma) + logE0;
    const double logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (positive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (std::max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

void checkStep(double sigma, double q) {
  if (!(q >= 0 && q <= 1))
    throw Error(ErrorCode::BadRequest, "sampling rate q=" + std::to_string(q) + ": must be in [0, 1]");
  if (!(sigma > 0) || !std::isfinite(sigma))
    throw Error(ErrorCode::BadRequest, "noise multiplier sigma=" + std::to_string(sigma) + ": must be positive");
}

void checkOrders(const std::vector<double>& orders) {
  if (orders.empty()) throw Error(ErrorCode::BadRequest, "RDP orders: none given");
  for (double a : orders)
    if (!(a > 1) || !std::isfinite(a))
      throw Error(ErrorCode::BadRequest, "RDP order " + std::to_string(a) + ": must be a finite number above 1");
}

}  // namespace

std::vector<double> defaultRdpOrders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);
  for (int a = 12; a < 64; ++a) orders.push_back(a);
  return orders;
}

double rdpOfSubsampledGaussian(double q, double sigma, double alpha) {
  checkStep(sigma, q);
  checkOrders({alpha});
  if (q == 0) return 0;
  if (q == 1) return alpha / (2 * sigma * sigma);
  const double logA = alpha == std::floor(alpha) && alpha < 1e6 ? logAInt(q, sigma, int(alpha))
                                                                : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

PrivacySpent epsilonFromRdp(const std::vector<double>& orders, const std::vector<double>& rdp, double delta,
                            RdpConversion conversion) {
  checkOrders(orders);
  if (orders.size() != rdp.size()) throw Error(ErrorCode::Internal, "RDP: orders and values differ in number");
  if (!(delta > 0 && delta < 1))
    throw Error(ErrorCode::BadRequest, "delta=" + std::to_string(delta) + ": must be in (0, 1)");
  PrivacySpent best{kInf, orders.front()};
  for (size_t k = 0; k < orders.size(); ++k) {
    const double a = orders[k], r = rdp[k];
    double eps;
    if (conversion == RdpConversion::Classic) {
      eps = r - std::log(delta) / (a - 1);
    } else if (delta * delta + std::expm1(-r) >= 0) {
      eps = 0;  // Balle et al.: the RDP bound alone already gives δ at ε = 0
    } else if (a > 1.01) {
      eps = r + std::log1p(-1 / a) - std::log(delta * a) / (a - 1);
    } else {
      eps = kInf;  // the conversion is numerically unstable this close to 1 (TF-Privacy's rule)
    }
    if (eps < best.epsilon) best = {eps, a};
  }
  best.epsilon = std::max(0.0, best.epsilon);
  return best;
}

RdpAccountant::RdpAccountant(std::vector<double> orders) : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {
  checkOrders(orders_);
}

void RdpAccountant::addSteps(double sigma, double q, uint64_t steps) {
  checkStep(sigma, q);
  if (sigma != cachedSigma_ || q != cachedQ_) {
    cachedStepRdp_.resize(orders_.size());
    for (size_t k = 0; k < orders_.size(); ++k) cachedStepRdp_[k] = rdpOfSubsampledGaussian(q, sigma, orders_[k]);
    cachedSigma_ = sigma;
    cachedQ_ = q;
  }
  for (size_t k = 0; k < orders_.size(); ++k) rdp_[k] += double(steps) * cachedStepRdp_[k];
}

PrivacySpent RdpAccountant::spent(double delta, RdpConversion conversion) const {
  return epsilonFromRdp(orders_, rdp_, delta, conversion);
}

PrivacySpent RdpAccountant::spentAfter(double sigma, double q, uint64_t steps, double delta,
                                       RdpConversion conversion) const {
  RdpAccountant copy = *this;
  copy.addSteps(sigma, q, steps);
  return copy.spent(delta, conversion);
}

PrivacySpent epsilonOf(double sigma, double q, uint64_t steps, double delta, RdpConversion conversion,
                       const std::vector<double>& orders) {
  RdpAccountant accountant(orders);
  accountant.addSteps(sigma, q, steps);
  return accountant.spent(delta, conversion);
}

double noiseMultiplierFor(double targetEpsilon, double delta, double q, uint64_t steps, RdpConversion conversion,
                          const std::vector<double>& orders, double tolerance) {
  if (!(targetEpsilon > 0) || !std::isfinite(targetEpsilon))
    throw Error(ErrorCode::BadRequest, "target epsilon=" + std::to_string(targetEpsilon) + ": must be positive");
  auto eps = [&](double sigma) { return epsilonOf(sigma, q, steps, delta, conversion, orders).epsilon; };
  double low = 0, high = 1;
  while (eps(high) > targetEpsilon) {
    low = high;
    high *= 2;
    if (high > 1e4)
      throw Error(ErrorCode::BadRequest, "target epsilon=" + std::to_string(targetEpsilon) +
                                             ": not reached with a noise multiplier up to 1e4");
  }
  while (high - low > tolerance) {
    const double mid = (low + high) / 2;
    (eps(mid) > targetEpsilon ? low : high) = mid;
  }
  return high;
}

}  // namespace tessera::federation
