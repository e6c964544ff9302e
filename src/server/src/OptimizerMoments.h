#pragma once
// Where the server keeps a model's FedAdam/FedYogi moments (federation/ServerOptimizer.h):
// DATA/optimizer-moments/<model id>/<weights SHA-256 of the generation they produced>.tswt.
// Named by the generation's content, moments can never be applied to another generation: after a
// strategy switch, a held-back candidate or a restore they are simply absent and the optimizer
// starts again from m = 0. The merge loop commits the file (atomically) before the registry
// publishes its generation, so a published adaptive generation always has its moments.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "tessera/common/WeightRecords.h"

namespace tessera::server {

class OptimizerMoments {
 public:
  OptimizerMoments(const std::filesystem::path& dataDir, int64_t modelId);
  const std::filesystem::path& directory() const { return dir_; }  // created by the constructor
  std::filesystem::path pathFor(const std::string& weightsSha256) const;
  std::optional<common::WeightsLocation> of(const std::string& weightsSha256) const;
  // Removes every moments file but the one of `weightsSha256` (earlier generations, held-back
  // candidates, temporary files of an interrupted write).
  void keepOnly(const std::string& weightsSha256) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace tessera::server
