#pragma once
// Rényi-DP accounting of the (Poisson-)subsampled Gaussian mechanism (Mironov, Talwar, Zhang
// 2019), as Opacus and TF-Privacy do it, so a study's ε can be compared with theirs. A step is one
// release with noise multiplier σ (noise std / clipping norm) on a fraction q of the records
// (q = 1: every record, no amplification by sampling). RDP composes by addition over steps and
// orders; (ε, δ) is the best over the orders.

#include <cstdint>
#include <vector>

namespace tessera::federation {

enum class RdpConversion {
  Classic,  // ε = RDP(α) − log δ / (α − 1) (Mironov 2017)
  Balle,    // ε = RDP(α) − (log δ + log α)/(α − 1) + log((α − 1)/α) (Balle et al. 2020; tighter)
};

// Opacus' default orders: 1.1, 1.2, …, 10.9, then 12, 13, …, 63.
std::vector<double> defaultRdpOrders();

// RDP of ONE step at order α > 1. q in [0, 1], σ > 0. Integer α exactly (binomial expansion in
// log space); fractional α by the convergent two-sided series of TF-Privacy's _compute_log_a_frac.
// Throws tessera::Error(BadRequest) for values out of range.
double rdpOfSubsampledGaussian(double q, double sigma, double alpha);

struct PrivacySpent {
  double epsilon = 0;
  double bestOrder = 0;  // the α at which ε was reached
};

// ε at δ from RDP values given per order (rdp[i] belongs to orders[i]).
PrivacySpent epsilonFromRdp(const std::vector<double>& orders, const std::vector<double>& rdp, double delta,
                            RdpConversion conversion = RdpConversion::Balle);

// Adds steps of possibly different (σ, q) and answers ε for a δ at any time. Cheap: one RDP
// evaluation per order for each distinct (σ, q), the rest is a multiply.
class RdpAccountant {
 public:
  explicit RdpAccountant(std::vector<double> orders = defaultRdpOrders());

  void addSteps(double sigma, double q, uint64_t steps = 1);
  PrivacySpent spent(double delta, RdpConversion conversion = RdpConversion::Balle) const;
  // ε after `steps` more steps of (σ, q), without recording them: "would this update exceed the
  // budget?".
  PrivacySpent spentAfter(double sigma, double q, uint64_t steps, double delta,
                          RdpConversion conversion = RdpConversion::Balle) const;

  const std::vector<double>& orders() const { return orders_; }
  const std::vector<double>& rdp() const { return rdp_; }

 private:
  std::vector<double> orders_;
  std::vector<double> rdp_;
  // A server adds one step per accepted update, nearly always with the same (σ, q): the per-order
  // RDP of the last pair is kept so that costs a multiply-add, not a fresh series per order.
  double cachedSigma_ = -1, cachedQ_ = -1;
  std::vector<double> cachedStepRdp_;
};

// ε of `steps` identical steps.
PrivacySpent epsilonOf(double sigma, double q, uint64_t steps, double delta,
                       RdpConversion conversion = RdpConversion::Balle,
                       const std::vector<double>& orders = defaultRdpOrders());

// The smallest σ (to `tolerance` in σ) whose ε after `steps` steps is at most targetEpsilon, by
// bisection (ε falls monotonically with σ). Throws BadRequest when no σ up to 1e4 reaches it.
double noiseMultiplierFor(double targetEpsilon, double delta, double q, uint64_t steps,
                          RdpConversion conversion = RdpConversion::Balle,
                          const std::vector<double>& orders = defaultRdpOrders(), double tolerance = 1e-6);

}  // namespace tessera::federation
