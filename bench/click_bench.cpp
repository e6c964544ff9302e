// Click latency on a Colin27-sized volume (181x217x181 at 1 mm): the whole-volume segmentation
// against re-inferring only the slices one click's guidance reaches (issue 10's 0.5 s budget).
// Random weights: timing only. Usage: tessera_bench_click [threads]
// With a trained guidance model, an image and its labels (tessera_bench_click THREADS MODEL IMAGE
// LABELS [CLICKS]): the simulated user's click loop with every click re-inferring the whole volume
// against the narrower re-inferences (slice range of 3 or 2 sigma, in-plane focus window), so the
// Dice cost of each narrowing is seen next to its time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <ctime>

#include "tessera/image/ImageIO.h"
#include "tessera/image/Metrics.h"
#include "tessera/interactive/SimulatedUser.h"
#include "tessera/model/Preprocessing.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Runtime.h"
#include "tessera/nn/Training.h"

using namespace tessera;

namespace {

double cpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// CPU seconds of the best of `repeats` runs, divided by the threads: the shared build machine's
// wall time varies with its neighbours, CPU time much less (last wall time in `wall`).
double seconds(const std::function<void()>& f, int repeats = 3, double* wall = nullptr) {
  double best = 1e9;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpuSeconds();
    f();
    best = std::min(best, (cpuSeconds() - c0) / nn::threadCount());
    if (wall) *wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return best;
}

// How a click is re-inferred: the slices within `sigmas` of the click's Gaussian (0: the whole
// volume), and with focusRadius > 0 only a window around the click in-plane.
struct Narrowing {
  const char* name;
  double sigmas;
  int focusRadius;
  int focusMargin;
};

nn::InferenceOptions optionsFor(const Narrowing& n, const model::Model& m, const image::Geometry& g,
                                const std::array<int64_t, 3>& voxel) {
  nn::InferenceOptions o;
  if (n.sigmas > 0) {
    const double reach = nn::clickReachSlices(m, g) * n.sigmas / 3.0;
    const auto axis = static_cast<size_t>(m.spec.axis);
    const auto k = static_cast<double>(voxel[axis]);
    o.firstSlice = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(k - reach)));
    o.lastSlice = std::min<int64_t>(g.size[axis] - 1, static_cast<int64_t>(std::floor(k + reach)));
  }
  if (n.focusRadius > 0) {
    o.focusVoxel = voxel;
    o.focusRadius = n.focusRadius;
    o.focusMargin = n.focusMargin;
  }
  return o;
}

const Narrowing kNarrowings[] = {{"whole volume", 0, 0, 0},
                                 {"3 sigma slices, whole slices", 3, 0, 0},
                                 {"3 sigma slices, focus r24 m16", 3, 24, 16},
                                 {"3 sigma slices, focus r16 m16", 3, 16, 16},
                                 {"2 sigma slices, focus r16 m16", 2, 16, 16},
                                 {"2 sigma slices, focus r16 m8", 2, 16, 8}};

int clickLoops(const char* modelPath, const char* imagePath, const char* labelsPath, int maxClicks) {
  const auto m = model::loadModel(modelPath);
  const auto img = image::readImage(imagePath);
  auto truth = image::readImage(labelsPath);
  for (float& v : truth.voxels) v = v > 0.5f ? 1.0f : 0.0f;
  std::printf("%s on %s (%s): %d clicks at most\n", modelPath, imagePath, img.geometry.describe().c_str(), maxClicks);
  const auto initial = nn::segmentDetailed(m, img, {}).labels;
  std::printf("automatic Dice %.4f\n", image::diceScore(initial, truth, 1));
  for (const auto& n : kNarrowings) {
    std::vector<nn::Click> clicks;
    image::Volume mask = initial;
    interactive::ClickLoopOptions loop;
    loop.maxClicks = maxClicks;
    loop.targetDice = 0.999;  // the same number of clicks for every narrowing
    const auto result = interactive::runClickLoop(
        initial, truth,
        [&](const nn::Click& click) {
          clicks.push_back(click);
          const auto s = nn::segmentDetailed(m, img, nn::Guidance{clicks}, optionsFor(n, m, img.geometry, click.voxel));
          const auto& b = s.computed;
          for (int64_t z = b[2]; z <= b[5]; ++z)
            for (int64_t y = b[1]; y <= b[4]; ++y)
              for (int64_t x = b[0]; x <= b[3]; ++x) mask.at(x, y, z) = s.labels.at(x, y, z);
          return mask;
        },
        loop);
    double seconds = 0;
    for (double t : result.secondsPerClick) seconds += t;
    std::printf("%-32s %.3f s per click; Dice per click:", n.name, seconds / std::max<size_t>(1, result.secondsPerClick.size()));
    for (double d : result.dicePerClick) std::printf(" %.4f", d);
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  nn::setThreadCount(argc > 1 ? std::atoi(argv[1]) : 2);
  if (argc > 4) return clickLoops(argv[2], argv[3], argv[4], argc > 5 ? std::atoi(argv[5]) : 8);
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
  std::printf("times: CPU seconds / threads (ideal wall time on an idle machine)\n");
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
  std::vector<std::pair<const Narrowing*, double>> narrowed;
  for (const auto& n : kNarrowings) {
    if (n.sigmas == 0) continue;
    const auto o = optionsFor(n, guided, c.image.geometry, {90, 108, 90});
    std::array<int64_t, 6> box{};
    narrowed.emplace_back(&n, seconds([&] { box = nn::segmentDetailed(guided, c.image, click, o).computed; }));
    std::printf("%s: input box %ld..%ld x %ld..%ld x %ld..%ld\n", n.name, static_cast<long>(box[0]), static_cast<long>(box[3]),
                static_cast<long>(box[1]), static_cast<long>(box[4]), static_cast<long>(box[2]), static_cast<long>(box[5]));
  }
  std::printf("segment (whole volume, automatic model): %.3f s\n", full);
  std::printf("segmentDetailed (whole volume, guidance model, entropy): %.3f s\n", detailed);
  const double prep = seconds([&] { model::preprocessImage(c.image, guided.preprocessing); });
  std::printf("of which preprocessing the whole volume (done for every click): %.3f s\n", prep);
  std::printf("click -> slices %ld..%ld (%ld slices) re-inferred: %.3f s\n", static_cast<long>(range.firstSlice),
              static_cast<long>(range.lastSlice), static_cast<long>(2 * reach + 1), clickTime);
  for (const auto& [n, t] : narrowed) {
    std::printf("click, %-32s %.3f s (%.2fx the whole-slice 3 sigma click)\n", n->name, t, t / narrowed.front().second);
  }
  return 0;
}
