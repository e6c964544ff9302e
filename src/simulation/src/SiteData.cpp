#include "SiteData.h"

#include <algorithm>
#include <random>

#include "tessera/image/ImageIO.h"

namespace tessera::simulation {

namespace fs = std::filesystem;

FederationData prepareFederationData(const fs::path& dataDir, int sites, int rounds, int slicesPerRound, int testSlices,
                                     int validationSlices, int rootSlices, uint64_t seed) {
  image::Volume t1, brain;
  try {
    t1 = image::readImage(dataDir / "ch2.nii.gz");
    brain = image::readImage(dataDir / "ch2bet.nii.gz");
  } catch (const Error& e) {
    throw Error(ErrorCode::BadImage, std::string(e.what()) + " (install it with: apt-get install mricron-data)");
  }
  if (!t1.geometry.sameGrid(brain.geometry)) throw Error(ErrorCode::BadImage, "ch2.nii.gz and ch2bet.nii.gz are on different grids");
  for (float& v : brain.voxels) v = v > 0 ? 1.0f : 0.0f;

  // Axial slices where the brain covers at least 5% of the slice: the rest teach nothing.
  const auto& g = t1.geometry;
  std::vector<int64_t> usable;
  for (int64_t z = 0; z < g.size[2]; ++z) {
    int64_t count = 0;
    for (int64_t y = 0; y < g.size[1]; ++y)
      for (int64_t x = 0; x < g.size[0]; ++x) count += brain.at(x, y, z) > 0;
    if (count * 20 >= g.size[0] * g.size[1]) usable.push_back(z);
  }
  std::mt19937_64 rng(seed);
  std::shuffle(usable.begin(), usable.end(), rng);
  if (usable.size() < static_cast<size_t>(validationSlices + rootSlices + testSlices + slicesPerRound)) {
    throw std::runtime_error("Colin27 has only " + std::to_string(usable.size()) + " brain slices; ask for fewer");
  }
  size_t next = 0;
  auto take = [&](int n) {
    std::vector<int64_t> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(usable[next % usable.size()]);
      ++next;
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto slices = [&](const std::vector<int64_t>& idx, const DomainShift* shift, uint64_t noiseSeed) {
    model::TrainingCase c{image::extractSlices(t1, 2, idx), image::extractSlices(brain, 2, idx)};
    if (shift) c.image = applyShift(c.image, *shift, noiseSeed);
    return c;
  };

  FederationData data;
  data.validation = slices(take(validationSlices), nullptr, 0);
  data.root = slices(take(rootSlices), nullptr, 0);
  for (int s = 0; s < sites; ++s) {
    SiteData site;
    site.name = "site-" + std::to_string(s + 1);
    site.shift = siteShift(s);
    const uint64_t base = seed * 1000003 + static_cast<uint64_t>(s) * 1009;
    site.test = slices(take(testSlices), &site.shift, base);
    for (int r = 0; r < rounds; ++r) {
      site.rounds.push_back(slices(take(slicesPerRound), &site.shift, base + 1 + static_cast<uint64_t>(r)));
      site.trainSlices += slicesPerRound;
    }
    data.sites.push_back(std::move(site));
  }
  return data;
}

}  // namespace tessera::simulation
