#pragma once
// Mean Teacher's teacher (Tarvainen & Valpola 2017): a copy of the network whose weights follow
// the student's as an exponential moving average, so its pseudo-labels change slowly and average
// out the noise of single optimisation steps.

#include <torch/torch.h>

#include "UNet.h"

namespace tessera::nn::detail {

class EmaTeacher {
 public:
  // The teacher starts as `start` (the generation training starts from).
  EmaTeacher(const NetworkSpec& spec, const WeightSet& start, double decay);
  // teacher ← decay·teacher + (1 − decay)·student over parameters and floating-point buffers
  // (batch-norm running statistics); integer buffers (step counters) are copied.
  void update(UNet& student);
  // Class probabilities [N, C, ...] for a batch, in evaluation mode (running statistics), as the
  // model would segment after training; no gradient.
  torch::Tensor probabilities(const torch::Tensor& x);
  torch::Tensor logits(const torch::Tensor& x);
  UNet& network() { return net_; }

 private:
  UNet net_;
  double decay_;
};

}  // namespace tessera::nn::detail
