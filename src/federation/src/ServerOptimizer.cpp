#include "tessera/federation/ServerOptimizer.h"

#include <cmath>
#include <vector>

#include "tessera/common/Error.h"
#include "tessera/federation/GaussianMechanism.h"

namespace tessera::federation {

namespace {

std::vector<float> readTensor(common::WeightRecordReader& r) {
  std::vector<float> values(static_cast<size_t>(r.tensor().elements));
  r.read(values.data(), r.tensor().elements);
  return values;
}

// The next tensor of a moments file, which must be `prefix` + the model tensor's name.
std::vector<float> readMoment(common::WeightRecordReader& r, const std::string& prefix, const common::TensorInfo& model) {
  if (!r.next()) throw Error(ErrorCode::Corrupt, r.source() + ": ends before '" + prefix + model.name + "'");
  if (r.tensor().name != prefix + model.name || r.tensor().shape != model.shape) {
    throw Error(ErrorCode::Corrupt, r.source() + ": holds '" + r.tensor().name + "' where '" + prefix + model.name + "' belongs");
  }
  return readTensor(r);
}

}  // namespace

bool usesServerOptimizer(Strategy strategy) { return strategy == Strategy::FedAdam || strategy == Strategy::FedYogi; }

uint32_t momentTensorCount(const common::WeightsLocation& current) {
  common::WeightRecordReader r(current, "current");
  uint32_t stepped = 0;
  while (r.next()) stepped += isRunningStatistic(r.tensor().name) ? 0 : 1;
  return 2 * stepped;
}

MergeOutput mergeWithServerOptimizer(const MergeInput& input, const std::optional<common::WeightsLocation>& moments,
                                     const std::filesystem::path& scratch, common::WeightRecordWriter& out,
                                     common::WeightRecordWriter& momentsOut) {
  const MergePolicy& policy = input.policy;
  if (!usesServerOptimizer(policy.strategy)) throw std::invalid_argument("mergeWithServerOptimizer: strategy " + toString(policy.strategy));
  const bool yogi = policy.strategy == Strategy::FedYogi;
  const double eta = policy.serverLearningRate, b1 = policy.beta1, b2 = policy.beta2, tau = policy.tau;

  // The round's mean as fedavg computes it (staleness, stale bases and sample shares included):
  // Δ = mean − current.
  MergeInput averaging = input;
  averaging.policy.strategy = Strategy::FedAvg;
  averaging.policy.serverStep = 1.0;
  common::WeightRecordReader counter(input.current, "current");
  common::WeightFileWriter mean(scratch, counter.tensorCount());
  MergeOutput result = mergeUpdates(averaging, mean);

  common::WeightRecordReader current(input.current, "generation " + std::to_string(input.currentGeneration));
  common::WeightRecordReader averaged({mean.file().temporaryPath(), 0, 0}, "round mean");
  std::optional<common::WeightRecordReader> state;
  if (moments) {
    state.emplace(*moments, "server optimizer moments " + moments->path.filename().string(), ErrorCode::Corrupt);
    const uint32_t expected = momentTensorCount(input.current);
    if (state->tensorCount() != expected) {
      throw Error(ErrorCode::Corrupt, state->source() + ": holds " + std::to_string(state->tensorCount()) +
                                          " tensors, the model needs " + std::to_string(expected));
    }
  }

  while (current.next()) {
    const common::TensorInfo info = current.tensor();
    averaged.next();
    const std::vector<float> x = readTensor(current);
    const std::vector<float> avg = readTensor(averaged);
    out.beginTensor(info.name, info.shape);
    if (isRunningStatistic(info.name)) {
      out.write(avg.data(), info.elements);
      continue;
    }
    const size_t n = x.size();
    std::vector<float> m(n, 0.0f), v(n, static_cast<float>(tau * tau));
    if (moments) {
      m = readMoment(*state, "m:", info);
      v = readMoment(*state, "v:", info);
    }
    std::vector<float> stepped(n);
    for (size_t j = 0; j < n; ++j) {
      const double d = double(avg[j]) - x[j];
      const double d2 = d * d;
      const double mj = b1 * m[j] + (1 - b1) * d;
      double vj = v[j];
      if (yogi) {
        const double diff = vj - d2;
        vj -= (1 - b2) * d2 * (diff > 0 ? 1.0 : diff < 0 ? -1.0 : 0.0);
      } else {
        vj = b2 * vj + (1 - b2) * d2;
      }
      m[j] = static_cast<float>(mj);
      v[j] = static_cast<float>(vj);
      stepped[j] = static_cast<float>(x[j] + eta * mj / (std::sqrt(std::max(vj, 0.0)) + tau));
    }
    out.write(stepped.data(), info.elements);
    momentsOut.beginTensor("m:" + info.name, info.shape);
    momentsOut.write(m.data(), info.elements);
    momentsOut.beginTensor("v:" + info.name, info.shape);
    momentsOut.write(v.data(), info.elements);
  }
  if (state && state->next()) throw Error(ErrorCode::Corrupt, state->source() + ": holds more tensors than the model");
  result.weightsSha256 = out.finishHash();
  result.weightsBytes = out.bytesWritten();
  momentsOut.finishHash();
  return result;
}

}  // namespace tessera::federation
