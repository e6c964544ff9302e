#pragma once
// Tiny models, case folders and scratch folders for the client tests: small enough that a
// fine-tuning epoch takes a fraction of a second.

#include <atomic>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "tessera/model/CaseFolder.h"
#include "tessera/model/Model.h"

namespace tessera::test {

inline model::Model tinyModel(const std::string& task = "brain", int64_t generation = 3) {
  model::NetworkSpec spec;
  spec.dims = 2;
  spec.axis = 2;
  spec.baseFeatures = 2;
  spec.depth = 2;
  model::TaskInfo info;
  info.name = task;
  model::Model model = model::initialModel(spec, model::Preprocessing{}, info, 7);
  model.generation = generation;
  model.parentGeneration = generation - 1;
  return model;
}

// `count` cases of 16×16×`slices` voxels: a bright square labelled 1 on a dark background.
inline void writeCases(const std::filesystem::path& dir, int count, int64_t slices) {
  for (int i = 0; i < count; ++i) {
    image::Geometry g;
    g.size = {16, 16, slices};
    model::TrainingCase c{image::Volume(g, 0.0f), image::Volume(g, 0.0f)};
    for (int64_t z = 0; z < slices; ++z) {
      for (int64_t y = 4 + i; y < 11 + i; ++y) {
        for (int64_t x = 5; x < 12; ++x) {
          c.image.at(x, y, z) = 100.0f + static_cast<float>(x + z);
          c.labels.at(x, y, z) = 1.0f;
        }
      }
    }
    model::writeCase(dir, "case" + std::to_string(i), c);
  }
}

// A fresh folder removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("tessera-client-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace tessera::test
