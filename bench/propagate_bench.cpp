// Proxy-mask quality and speed on Colin27 (Debian's mricron-data): every 5th / 10th / 20th axial
// slice of the brain mask (ch2bet > 0) and of a 7-lobe map grouped from AAL is "drawn", the rest
// is propagated, and the proxy is compared with the truth and with the baseline of copying the
// nearest drawn slice. Usage: tessera_bench_propagate [TEMPLATES_DIR] [--axis A] [--steps 5,10,20]
// [--task brain|lobes|both] [--iterations 16,8,4] [--sigma 1.5] [--clamp 3] [--threads N]

#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tessera/image/ImageIO.h"
#include "tessera/image/Metrics.h"
#include "tessera/interactive/SlicePropagation.h"

namespace {

using tessera::image::Volume;

// AAL's 116 regions grouped by their index ranges: frontal (1-28), insula, cingulum and medial
// temporal (29-42), occipital (43-56), parietal (57-70), deep grey nuclei (71-78), temporal
// (79-90), cerebellum and vermis (91-116).
Volume aalLobes(const Volume& aal) {
  const int lastOfLobe[] = {28, 42, 56, 70, 78, 90, 116};
  Volume lobes(aal.geometry, 0.0f);
  for (size_t i = 0; i < aal.voxels.size(); ++i) {
    const int region = static_cast<int>(aal.voxels[i]);
    if (region <= 0) continue;
    for (int l = 0; l < 7; ++l)
      if (region <= lastOfLobe[l]) {
        lobes.voxels[i] = static_cast<float>(l + 1);
        break;
      }
  }
  return lobes;
}

double meanDice(const Volume& pred, const Volume& truth, int labels) {
  double sum = 0;
  for (int l = 1; l <= labels; ++l) sum += tessera::image::diceScore(pred, truth, l);
  return sum / labels;
}

tessera::interactive::PropagationOptions options;

void run(const char* name, const Volume& image, const Volume& truth, int labels, int axis, int step) {
  const int64_t n = image.geometry.size[axis];
  std::vector<int64_t> slices;
  for (int64_t k = step / 2; k < n; k += step) slices.push_back(k);
  // CPU time as well as wall time: on a shared machine the wall time says more about the neighbours.
  const std::clock_t cpuStart = std::clock();
  const auto proxy = tessera::interactive::propagateSlices(image, truth, axis, slices, options);
  const double cpuSeconds = static_cast<double>(std::clock() - cpuStart) / CLOCKS_PER_SEC;
  const auto copy = tessera::interactive::copyNearestSlice(truth, axis, slices);
  const double proxyDice = meanDice(proxy.labels, truth, labels), copyDice = meanDice(copy, truth, labels);
  std::printf("%-6s every %2dth slice (%3zu drawn, %3lld propagated): Dice proxy %.4f  nearest-slice copy %.4f  "
              "(%+.4f)  time %.2f s (registration %.2f s, CPU %.2f s)\n",
              name, step, slices.size(), static_cast<long long>(proxy.propagatedSlices), proxyDice, copyDice,
              proxyDice - copyDice, proxy.totalSeconds, proxy.registrationSeconds, cpuSeconds);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path dir = "/usr/share/mricron/templates";
  int axis = 2;
  std::vector<int> steps{5, 10, 20};
  std::string task = "both";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--axis") && i + 1 < argc) {
      axis = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) {
      steps.clear();
      std::stringstream s(argv[++i]);
      for (std::string item; std::getline(s, item, ',');) steps.push_back(std::stoi(item));
    } else if (!std::strcmp(argv[i], "--task") && i + 1 < argc) {
      task = argv[++i];
    } else if (!std::strcmp(argv[i], "--iterations") && i + 1 < argc) {
      options.iterations.clear();
      std::stringstream s(argv[++i]);
      for (std::string item; std::getline(s, item, ',');) options.iterations.push_back(std::stoul(item));
    } else if (!std::strcmp(argv[i], "--sigma") && i + 1 < argc) {
      options.fieldSigma = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--clamp") && i + 1 < argc) {
      options.distanceClamp = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      options.threads = std::atoi(argv[++i]);
    } else {
      dir = argv[i];
    }
  }
  try {
    const auto t1 = tessera::image::readImage(dir / "ch2.nii.gz");
    auto brain = tessera::image::readImage(dir / "ch2bet.nii.gz");
    for (auto& v : brain.voxels) v = v > 0.0f ? 1.0f : 0.0f;
    brain.geometry = t1.geometry;
    auto lobes = aalLobes(tessera::image::readImage(dir / "aal.nii.gz"));
    lobes.geometry = t1.geometry;
    std::printf("Colin27 %s, axis %d\n", t1.geometry.describe().c_str(), axis);
    if (task != "lobes")
      for (int step : steps) run("brain", t1, brain, 1, axis, step);
    if (task != "brain")
      for (int step : steps) run("lobes", t1, lobes, 7, axis, step);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "propagate_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
