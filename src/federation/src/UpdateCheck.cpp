#include "tessera/federation/UpdateCheck.h"

#include <cmath>
#include <vector>

#include "tessera/common/Sha256.h"
#include "tessera/common/Error.h"
#include "tessera/federation/GaussianMechanism.h"

namespace tessera::federation {

UpdateCheckResult checkUpdateFile(const std::filesystem::path& updateFile, const std::string& expectedTask,
                                  const common::WeightsLocation& baseWeights, const MergePolicy& policy) {
  UpdateCheckResult result;
  result.info = readUpdateFileInfo(updateFile, "update");
  const auto& h = result.info.header;
  if (h.task != expectedTask) {
    throw Error(ErrorCode::TaskMismatch, "update is for task '" + h.task + "', it was sent to model '" + expectedTask + "'");
  }
  common::WeightRecordReader update({updateFile, result.info.weightsOffset, result.info.weightsLength}, "update");
  common::WeightRecordReader base(baseWeights, "generation " + std::to_string(h.baseGeneration));
  if (update.tensorCount() != base.tensorCount()) {
    throw Error(ErrorCode::ShapeMismatch, "update holds " + std::to_string(update.tensorCount()) + " tensors, generation " +
                                            std::to_string(h.baseGeneration) + " has " + std::to_string(base.tensorCount()));
  }
  constexpr int64_t kChunk = int64_t{1} << 16;
  std::vector<float> u(kChunk), b(kChunk);
  double deltaSq = 0, baseSq = 0;
  int64_t parameters = 0;
  while (base.next()) {
    if (!update.next()) throw Error(ErrorCode::ShapeMismatch, "update ends before tensor '" + base.tensor().name + "'");
    const auto& bt = base.tensor();
    const auto& ut = update.tensor();
    if (ut.name != bt.name || ut.shape != bt.shape) {
      auto dims = [](const std::vector<int64_t>& s) {
        std::string out;
        for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
        return out;
      };
      throw Error(ErrorCode::ShapeMismatch, "update tensor '" + ut.name + "' [" + dims(ut.shape) + "] does not match the model's '" +
                                              bt.name + "' [" + dims(bt.shape) + "]");
    }
    parameters += bt.elements;
    // Running statistics are not weights: num_batches_tracked alone (a counter that grows by the
    // batches a site trained) made ‖Δ‖ 25–50 times the learnable change, so the norm bound and
    // the clip C derived from recorded norms never touched a scaled or flipped update.
    const bool measured = !isRunningStatistic(bt.name);
    for (int64_t done = 0; done < bt.elements; done += kChunk) {
      const int64_t n = std::min(kChunk, bt.elements - done);
      update.read(u.data(), n, true);
      base.read(b.data(), n);
      for (int64_t j = 0; j < n; ++j) {
        const double d = h.kind == UpdateKind::Delta ? double(u[j]) : double(u[j]) - b[j];
        if (!measured) continue;
        deltaSq += d * d;
        baseSq += double(b[j]) * b[j];
      }
    }
  }
  if (update.next()) throw Error(ErrorCode::ShapeMismatch, "update holds more tensors than the model");
  if (parameters != h.parameters) throw Error(ErrorCode::BadUpdate, "update header field 'parameters' does not match its weights");
  // The checksum guards against corruption in transit; it is checked after the structure so that
  // a truncated or foreign body gets the more useful message.
  {
    common::Sha256 hash;
    std::FILE* f = std::fopen(updateFile.c_str(), "rb");
    if (!f) throw Error(ErrorCode::Io, "cannot reopen the update");
    std::fseek(f, static_cast<long>(result.info.weightsOffset), SEEK_SET);
    std::vector<char> buf(1 << 20);
    uint64_t left = result.info.weightsLength;
    while (left > 0) {
      const size_t n = std::fread(buf.data(), 1, std::min<uint64_t>(buf.size(), left), f);
      if (n == 0) break;
      hash.update(std::string_view(buf.data(), n));
      left -= n;
    }
    std::fclose(f);
    if (hash.finishHex() != h.weightsSha256) throw Error(ErrorCode::BadUpdate, "update weights SHA-256 does not match its header");
  }
  result.deltaNorm = std::sqrt(deltaSq);
  result.baseNorm = std::sqrt(baseSq);
  if (result.deltaNorm > policy.maxDeltaNormRatio * std::max(result.baseNorm, 1e-12)) {
    char text[200];
    std::snprintf(text, sizeof text, "update norm %.4g is %.3g times the model's norm %.4g; the policy allows at most %.3g",
                  result.deltaNorm, result.deltaNorm / std::max(result.baseNorm, 1e-12), result.baseNorm,
                  policy.maxDeltaNormRatio);
    throw Error(ErrorCode::NormTooLarge, text);
  }
  return result;
}

}  // namespace tessera::federation
