#pragma once
// Shared by the session tests: a scratch directory, a tiny model file, a phantom image, and a
// fingerprint of a whole directory (every path and its bytes) to prove a failed step changed nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "Phantom.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Sha256.h"
#include "tessera/image/ImageIO.h"
#include "tessera/model/Model.h"

namespace tessera::test {

inline std::map<std::string, std::string> fingerprint(const std::filesystem::path& directory) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(directory)) {
    const auto relative = std::filesystem::relative(entry.path(), directory).string();
    files[relative] = entry.is_regular_file() ? common::sha256OfFile(entry.path()) : std::string("(directory)");
  }
  return files;
}

class SessionFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("tessera-session-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    phantom_ = makePhantom(7);
    image::writeImage(phantom_.image, root_ / "image.nii.gz");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // An untrained 2D network across axis 2 that keeps the slice spacing (clicks re-infer slices).
  // With `guidanceGain` > 1 the first convolution's weights on the click channels are scaled up,
  // so that clicks visibly change an untrained network's labels near them (tests of which slices
  // a click may change need changes to look at).
  std::filesystem::path writeModel(const std::string& name, int guidanceChannels, uint64_t seed = 1,
                                   float guidanceGain = 1.0f) {
    auto spec = tinySpec(2);
    spec.guidanceChannels = guidanceChannels;
    model::Preprocessing prep;
    prep.targetSpacing = {1.0, 1.0, 0.0};
    auto m = model::initialModel(spec, prep, model::TaskInfo{}, seed);
    const int64_t inputs = spec.inChannels + spec.guidanceChannels;
    for (auto& tensor : m.weights) {
      if (tensor.shape.size() != 4 || tensor.shape[1] != inputs) continue;
      const int64_t perChannel = tensor.shape[2] * tensor.shape[3];
      for (int64_t out = 0; out < tensor.shape[0]; ++out)
        for (int64_t c = spec.inChannels; c < inputs; ++c)
          for (int64_t k = 0; k < perChannel; ++k) tensor.values[static_cast<size_t>((out * inputs + c) * perChannel + k)] *= guidanceGain;
      break;
    }
    const auto path = root_ / name;
    model::saveModel(m, path);
    return path;
  }

  std::filesystem::path root_;
  model::TrainingCase phantom_;
};

}  // namespace tessera::test
