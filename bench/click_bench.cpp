// Click latency on a Colin27-sized volume (181x217x181 at 1 mm): the whole-volume segmentation
// against re-inferring only the slices one click's guidance reaches (issue 10's 0.5 s budget).
// Random weights: timing only. Usage: tessera_bench_click [threads]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>

#include "tessera/model/Preprocessing.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Runtime.h"
#include "tessera/nn/Training.h"

using namespace tessera;

namespace {

double seconds(const std::function<void()>& f, int repeats = 3) {
  double best = 1e9;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  nn::setThreadCount(argc > 1 ? std::atoi(argv[1]) : 2);
  image::Geometry g;
  g.size = {181, 217, 181};
  model::TrainingCase c{image::Volume(g), image::Volume(g), {}};
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, 5.0f);
  for (int64_t z = 0; z < g.size[2]; ++z)
    for (int64_t y = 0; y < g.size[1]; ++y)
      for (int64_t x = 0; x < g.size[0]; ++x) {
        const bool inside = std::hypot(x - 90.0, y - 108.0, z - 90.0) < 60.0;
        c.image.at(x, y, z) = (inside ? 100.0f : 30.0f) + noise(rng);
        c.labels.at(x, y, z) = inside ? 1.0f : 0.0f;
      }
  model::Model plain = nn::defaultModelFor({c}, {}, 1);
  model::Model guided = plain;
  guided.spec.guidanceChannels = 2;
  guided = model::initialModel(guided.spec, guided.preprocessing, guided.task, 1);
  std::printf("model: 2D across axis %d, in-plane %.3f mm, %d threads\n", plain.spec.axis,
              plain.preprocessing.targetSpacing[plain.spec.axis == 0 ? 1 : 0], nn::threadCount());

  const double full = seconds([&] { nn::segment(plain, c.image); }, 1);
  const double detailed = seconds([&] { nn::segmentDetailed(guided, c.image, {}); }, 1);
  nn::Guidance click;
  click.clicks.push_back({{90, 108, 90}, true});
  // A slice-keeping model of this spacing: sigma 3 voxels of the network's in-plane spacing,
  // the same in mm across slices, reaching 3 sigma.
  const double inPlane = plain.preprocessing.targetSpacing[plain.spec.axis == 0 ? 1 : 0];
  const auto reach = static_cast<int64_t>(std::floor(3.0 * 3.0 * inPlane / g.spacing[plain.spec.axis]));
  nn::InferenceOptions range;
  range.firstSlice = 90 - reach;
  range.lastSlice = 90 + reach;
  const double clickTime = seconds([&] { nn::segmentDetailed(guided, c.image, click, range); });
  std::printf("segment (whole volume, automatic model): %.3f s\n", full);
  std::printf("segmentDetailed (whole volume, guidance model, entropy): %.3f s\n", detailed);
  const double prep = seconds([&] { model::preprocessImage(c.image, guided.preprocessing); });
  std::printf("of which preprocessing the whole volume (done for every click): %.3f s\n", prep);
  std::printf("click -> slices %ld..%ld (%ld slices) re-inferred: %.3f s\n", static_cast<long>(range.firstSlice),
              static_cast<long>(range.lastSlice), static_cast<long>(2 * reach + 1), clickTime);
  return 0;
}
