#include "tessera/federation/Merge.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "tessera/common/Error.h"
#include "tessera/federation/GaussianMechanism.h"

namespace tessera::federation {

namespace {

// Values per read: large enough for fast sequential I/O, small enough that K updates side by side
// (trimmed mean) stay far below one model's size. Every input stream holds a chunk, so the chunk
// shrinks as streams are added: all of them together stay near kChunkBudget values (a fixed
// 64 Ki-value chunk took 16 updates + their bases to 8 MiB, twice a 1 M-parameter model).
constexpr int64_t kMaxChunk = int64_t{1} << 16;
constexpr int64_t kMinChunk = int64_t{1} << 12;
constexpr int64_t kChunkBudget = int64_t{1} << 18;

struct Participant {
  const UpdateInput* input = nullptr;
  std::unique_ptr<common::WeightRecordReader> weights;
  std::unique_ptr<common::WeightRecordReader> base;  // only when its base generation's weights are needed
  double scale = 1;                          // staleness factor applied to its delta
  std::vector<float> chunk;
  std::vector<float> baseChunk;
};

void expectSameTensor(const common::TensorInfo& reference, common::WeightRecordReader& reader) {
  if (!reader.next()) {
    throw Error(ErrorCode::ShapeMismatch, reader.source() + ": ends before tensor '" + reference.name + "'");
  }
  const auto& t = reader.tensor();
  if (t.name != reference.name || t.shape != reference.shape) {
    throw Error(ErrorCode::ShapeMismatch, reader.source() + ": tensor '" + t.name + "' does not match the model's '" +
                                            reference.name + "'");
  }
}

}  // namespace

bool isNormalizationTensor(const std::string& name) {
  return name.find(".norm.") != std::string::npos || name.rfind("norm.", 0) == 0;
}

void keepLocalNormalization(common::WeightSet& global, const common::WeightSet& local) {
  for (auto& g : global) {
    if (!isNormalizationTensor(g.name)) continue;
    for (const auto& l : local) {
      if (l.name == g.name && l.shape == g.shape) {
        g.values = l.values;
        break;
      }
    }
  }
}

namespace {

// Opens every update (and, where needed, its base generation) for streaming, with its
// staleness scale; throws for updates that cannot be merged with the current generation.
std::vector<Participant> openParticipants(const MergeInput& input, const common::WeightRecordReader& current) {
  const MergePolicy& policy = input.policy;
  const bool dafne = policy.strategy == Strategy::Dafne;
  std::vector<Participant> parts(input.updates.size());
  for (size_t i = 0; i < input.updates.size(); ++i) {
    const auto& u = input.updates[i];
    auto& p = parts[i];
    p.input = &u;
    const std::string name = "update " + std::to_string(u.id);
    p.weights = std::make_unique<common::WeightRecordReader>(u.weights, name);
    if (p.weights->tensorCount() != current.tensorCount()) {
      throw Error(ErrorCode::ShapeMismatch, name + ": holds " + std::to_string(p.weights->tensorCount()) +
                                                " tensors, the model " + std::to_string(current.tensorCount()));
    }
    const int64_t age = input.currentGeneration - u.baseGeneration;
    if (age < 0) throw Error(ErrorCode::UnknownBase, name + ": base generation " + std::to_string(u.baseGeneration) + " is in the future");
    if (policy.staleness == StalenessMode::Downweight && !dafne) p.scale = std::pow(policy.stalenessDecay, static_cast<double>(age));
    // A full-weights upload needs its base to form the delta; Dafne needs a delta's base to form
    // the site's full weights. Either way the base is the update's own generation, not the current.
    const bool needsBase = (u.kind == UpdateKind::Weights) != dafne;
    if (needsBase) {
      if (!input.generationWeights) throw std::invalid_argument("mergeUpdates: no access to earlier generations");
      p.base = std::make_unique<common::WeightRecordReader>(input.generationWeights(u.baseGeneration),
                                                            "generation " + std::to_string(u.baseGeneration));
    }
  }
  return parts;
}

// Each update's share of a sample-weighted mean: nᵢ / Σn, times its staleness scale. The counts
// are divided by the largest before they are added, so the sum lies in [1, K] and cannot
// overflow whatever the counts (two updates claiming 1.7e308 samples made Σn infinite and every
// share 0: the round was recorded as merged and changed nothing). Counts that are not finite or
// negative are refused rather than guessed at.
std::vector<double> sampleShares(const std::vector<UpdateInput>& updates) {
  double largest = 0;
  for (const auto& u : updates) {
    if (!std::isfinite(u.samples) || u.samples < 0) {
      throw Error(ErrorCode::BadUpdate, "update " + std::to_string(u.id) + ": samples " + std::to_string(u.samples) +
                                            " is not a finite count >= 0");
    }
    largest = std::max(largest, u.samples);
  }
  if (!(largest > 0)) throw std::invalid_argument("mergeUpdates: updates carry no samples");
  std::vector<double> share(updates.size());
  double total = 0;
  for (size_t i = 0; i < updates.size(); ++i) total += share[i] = updates[i].samples / largest;
  for (auto& s : share) s /= total;
  return share;
}

// How much of each update ends up in the merged weights (reported with the generation).
std::vector<double> contributions(const MergePolicy& policy, const std::vector<Participant>& parts,
                                  const std::vector<double>& shares) {
  std::vector<double> c(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    if (policy.strategy == Strategy::Dafne) {
      c[i] = (1 - policy.dafneWeight) * std::pow(policy.dafneWeight, static_cast<double>(parts.size() - 1 - i));
    } else if (policy.strategy == Strategy::TrimmedMean || policy.strategy == Strategy::Median) {
      c[i] = parts[i].scale / static_cast<double>(parts.size());
    } else {
      c[i] = shares[i] * parts[i].scale;
    }
  }
  return c;
}

// Deltas (a full-weights upload minus its own base) are applied to the current weights.
double delta(const Participant& p, int64_t j) { return p.base ? double(p.chunk[j]) - p.baseChunk[j] : double(p.chunk[j]); }

// One chunk of `n` values: `cur` holds the current weights, each participant's chunk its
// upload; the result goes to `acc`.
void combineDafne(const MergePolicy& policy, const std::vector<Participant>& parts, const float* cur, int64_t n, double* acc) {
  // Dafne's server: each arriving model is averaged into the current one, whatever its base.
  const double w = policy.dafneWeight;
  for (int64_t j = 0; j < n; ++j) acc[j] = cur[j];
  for (const auto& p : parts) {
    for (int64_t j = 0; j < n; ++j) {
      const double uploaded = p.input->kind == UpdateKind::Weights ? p.chunk[j] : double(p.baseChunk[j]) + p.chunk[j];
      acc[j] = w * acc[j] + (1 - w) * uploaded;
    }
  }
}

void combineTrimmedMean(const MergePolicy& policy, const std::vector<Participant>& parts, const float* cur, int64_t n,
                        double* acc, std::vector<float>& column) {
  const size_t k = parts.size();
  const size_t trim = static_cast<size_t>(std::floor(policy.trimFraction * static_cast<double>(k)));
  for (int64_t j = 0; j < n; ++j) {
    for (size_t i = 0; i < k; ++i) column[i] = static_cast<float>(parts[i].scale * delta(parts[i], j));
    std::sort(column.begin(), column.end());
    double sum = 0;
    for (size_t i = trim; i < k - trim; ++i) sum += column[i];
    acc[j] = cur[j] + sum / static_cast<double>(k - 2 * trim);
  }
}

// The middle value of each coordinate: up to ⌈k/2⌉ − 1 arbitrary deltas cannot move it outside
// the range of the honest ones.
void combineMedian(const std::vector<Participant>& parts, const float* cur, int64_t n, double* acc, std::vector<float>& column) {
  const size_t k = parts.size();
  for (int64_t j = 0; j < n; ++j) {
    for (size_t i = 0; i < k; ++i) column[i] = static_cast<float>(parts[i].scale * delta(parts[i], j));
    const auto middle = column.begin() + static_cast<std::ptrdiff_t>(k / 2);
    std::nth_element(column.begin(), middle, column.end());
    double median = *middle;
    if (k % 2 == 0) median = (median + *std::max_element(column.begin(), middle)) / 2;
    acc[j] = cur[j] + median;
  }
}

// FedAvg and FedBN (whose normalisation tensors never reach a combine function).
// `weights` holds each participant's contribution (sample share × staleness scale).
// `step` scales the mean delta (the policy's server_step; 1 for running statistics).
void combineWeightedMean(const std::vector<Participant>& parts, const std::vector<double>& weights, const float* cur,
                         int64_t n, double* acc, double step) {
  for (int64_t j = 0; j < n; ++j) acc[j] = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const double c = weights[i];
    for (int64_t j = 0; j < n; ++j) acc[j] += c * delta(parts[i], j);
  }
  for (int64_t j = 0; j < n; ++j) acc[j] = cur[j] + step * acc[j];
}

}  // namespace

MergeOutput mergeUpdates(const MergeInput& input, common::WeightRecordWriter& out) {
  const MergePolicy& policy = input.policy;
  if (input.updates.empty()) throw std::invalid_argument("mergeUpdates: no updates to merge");
  common::WeightRecordReader current(input.current, "generation " + std::to_string(input.currentGeneration));
  std::vector<Participant> parts = openParticipants(input, current);
  const std::vector<double> shares = sampleShares(input.updates);

  MergeOutput result;
  result.contributions = contributions(policy, parts, shares);

  int64_t streams = 0;
  for (const auto& p : parts) streams += p.base ? 2 : 1;
  const int64_t kChunk = std::clamp(kChunkBudget / streams, kMinChunk, kMaxChunk);
  std::vector<float> cur(kChunk), merged(kChunk), column(parts.size());
  std::vector<double> acc(kChunk);
  for (auto& p : parts) {
    p.chunk.resize(kChunk);
    if (p.base) p.baseChunk.resize(kChunk);
  }

  while (current.next()) {
    const common::TensorInfo info = current.tensor();
    for (auto& p : parts) {
      expectSameTensor(info, *p.weights);
      if (p.base) expectSameTensor(info, *p.base);
    }
    out.beginTensor(info.name, info.shape);
    result.parameters += info.elements;
    const bool keepCurrent = policy.strategy == Strategy::FedBN && isNormalizationTensor(info.name);
    for (int64_t done = 0; done < info.elements; done += kChunk) {
      const int64_t n = std::min(kChunk, info.elements - done);
      current.read(cur.data(), n);
      for (auto& p : parts) {
        p.weights->read(p.chunk.data(), n, true);
        if (p.base) p.base->read(p.baseChunk.data(), n);
      }
      if (keepCurrent) {
        out.write(cur.data(), n);
        continue;
      }
      switch (policy.strategy) {
        case Strategy::Dafne: combineDafne(policy, parts, cur.data(), n, acc.data()); break;
        case Strategy::TrimmedMean: combineTrimmedMean(policy, parts, cur.data(), n, acc.data(), column); break;
        case Strategy::Median: combineMedian(parts, cur.data(), n, acc.data(), column); break;
        default:
          combineWeightedMean(parts, result.contributions, cur.data(), n, acc.data(),
                              isRunningStatistic(info.name) ? 1.0 : policy.serverStep);
          break;
      }
      for (int64_t j = 0; j < n; ++j) merged[j] = static_cast<float>(acc[j]);
      out.write(merged.data(), n);
    }
  }
  for (auto& p : parts) {
    if (p.weights->next()) throw Error(ErrorCode::ShapeMismatch, p.weights->source() + ": holds more tensors than the model");
  }
  result.weightsSha256 = out.finishHash();
  result.weightsBytes = out.bytesWritten();
  return result;
}

}  // namespace tessera::federation
