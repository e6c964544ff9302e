#include "OptimizerMoments.h"

#include <system_error>

namespace tessera::server {

namespace fs = std::filesystem;

OptimizerMoments::OptimizerMoments(const fs::path& dataDir, int64_t modelId)
    : dir_(dataDir / "optimizer-moments" / std::to_string(modelId)) {
  fs::create_directories(dir_);
}

fs::path OptimizerMoments::pathFor(const std::string& weightsSha256) const { return dir_ / (weightsSha256 + ".tswt"); }

std::optional<common::WeightsLocation> OptimizerMoments::of(const std::string& weightsSha256) const {
  std::error_code ec;
  const fs::path path = pathFor(weightsSha256);
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  return common::WeightsLocation{path, 0, 0};
}

void OptimizerMoments::keepOnly(const std::string& weightsSha256) const {
  const fs::path keep = pathFor(weightsSha256);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.path() != keep) fs::remove(entry.path(), ec);  // best effort: a leftover costs disk, not correctness
  }
}

}  // namespace tessera::server
