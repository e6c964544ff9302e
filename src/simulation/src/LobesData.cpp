#include <algorithm>
#include <random>
#include <set>

#include "LobeAtlas.h"
#include "SiteData.h"
#include "tessera/common/Error.h"
#include "tessera/image/ImageIO.h"

namespace tessera::simulation {

namespace {

// Which lobes site `index` draws under label skew. Every lobe is drawn by some site, and each
// site draws the lobes its slab holds most of (top: frontal/parietal/occipital; middle:
// frontal/temporal/deep grey; bottom: temporal/occipital/cerebellum), so under coverage skew too
// every lobe is drawn somewhere.
std::vector<int> annotatedBy(int index, int sites) {
  static const std::vector<int> kSets[] = {{Frontal, Parietal, Occipital},
                                           {Frontal, Temporal, DeepGrey},
                                           {Temporal, Occipital, Cerebellum}};
  if (sites == 1) return {};
  return kSets[index % 3];
}

// `count` entries spread evenly over `from` (removed from it).
std::vector<int64_t> takeSpread(std::vector<int64_t>& from, int count, double phase) {
  std::vector<int64_t> out;
  if (count <= 0 || from.empty()) return out;
  const double step = static_cast<double>(from.size()) / count;
  std::set<size_t> picked;
  for (int i = 0; i < count; ++i) picked.insert(std::min(from.size() - 1, static_cast<size_t>((i + phase) * step)));
  std::vector<int64_t> rest;
  for (size_t i = 0; i < from.size(); ++i) (picked.count(i) ? out : rest).push_back(from[i]);
  from = rest;
  return out;
}

}  // namespace

FederationData prepareLobesData(const std::filesystem::path& dataDir, int sites, int rounds, int slicesPerRound,
                                int testSlices, int validationSlices, int rootSlices, const SiteSkew& skew, uint64_t seed) {
  image::Volume t1;
  try {
    t1 = image::readImage(dataDir / "ch2bet.nii.gz");
  } catch (const Error& e) {
    throw Error(ErrorCode::BadImage, std::string(e.what()) + " (install it with: apt-get install mricron-data)");
  }
  const image::Volume lobes = readLobeAtlas(dataDir);
  if (!t1.geometry.sameGrid(lobes.geometry)) throw Error(ErrorCode::BadImage, "ch2bet.nii.gz and aal.nii.gz are on different grids");

  // Axial slices, bottom to top, where the lobes cover at least 2.5% of the slice.
  const auto& g = t1.geometry;
  std::vector<int64_t> usable;
  for (int64_t z = 0; z < g.size[2]; ++z) {
    int64_t count = 0;
    for (int64_t y = 0; y < g.size[1]; ++y)
      for (int64_t x = 0; x < g.size[0]; ++x) count += lobes.at(x, y, z) > 0;
    if (count * 40 >= g.size[0] * g.size[1]) usable.push_back(z);
  }
  if (usable.size() < static_cast<size_t>(testSlices + validationSlices + rootSlices + sites * slicesPerRound)) {
    throw std::runtime_error("Colin27 has only " + std::to_string(usable.size()) + " slices with lobes; ask for fewer");
  }
  // Held-out first, spread over the whole brain, so every site is tested on every lobe.
  const auto test = takeSpread(usable, testSlices, 0.5);
  const auto validation = takeSpread(usable, validationSlices, 0.25);
  const auto root = takeSpread(usable, rootSlices, 0.75);

  auto slices = [&](const std::vector<int64_t>& idx, const DomainShift* shift, uint64_t noiseSeed,
                    const std::vector<int>& annotated) {
    model::TrainingCase c{image::extractSlices(t1, 2, idx), image::extractSlices(lobes, 2, idx), {}, annotated};
    if (shift) c.image = applyShift(c.image, *shift, noiseSeed);
    if (!annotated.empty()) {
      // What a site that does not draw a lobe hands in: those voxels are left at 0.
      for (float& v : c.labels.voxels)
        if (v > 0 && std::find(annotated.begin(), annotated.end(), static_cast<int>(v)) == annotated.end()) v = 0;
    }
    return c;
  };

  FederationData data;
  data.validation = slices(validation, nullptr, 0, {});
  data.root = slices(root, nullptr, 0, {});
  std::mt19937_64 rng(seed);
  std::vector<int64_t> shuffled = usable;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  for (int s = 0; s < sites; ++s) {
    SiteData site;
    site.name = "site-" + std::to_string(s + 1);
    site.shift = skew.scanner ? siteShift(s) : DomainShift{"reference scanner"};
    if (skew.labels) site.annotatedLabels = annotatedBy(s, sites);
    // The slab: site 1 the top of the head, the last site the bottom (cerebellum).
    std::vector<int64_t> pool;
    if (skew.coverage) {
      const size_t n = usable.size();
      const size_t begin = n * static_cast<size_t>(sites - 1 - s) / static_cast<size_t>(sites);
      const size_t end = n * static_cast<size_t>(sites - s) / static_cast<size_t>(sites);
      pool.assign(usable.begin() + static_cast<std::ptrdiff_t>(begin), usable.begin() + static_cast<std::ptrdiff_t>(end));
      std::shuffle(pool.begin(), pool.end(), rng);
      site.coverage = "z " + std::to_string(usable[begin]) + ".." + std::to_string(usable[end - 1]) + " of " +
                      std::to_string(g.size[2]) + (s == 0 ? " (top)" : s == sites - 1 ? " (bottom, cerebellum)" : " (middle)");
    } else {
      for (size_t i = static_cast<size_t>(s); i < shuffled.size(); i += static_cast<size_t>(sites)) pool.push_back(shuffled[i]);
    }
    const uint64_t base = seed * 1000003 + static_cast<uint64_t>(s) * 1009;
    site.test = slices(test, site.shift.name == "reference scanner" ? nullptr : &site.shift, base, {});
    size_t next = 0;
    for (int r = 0; r < rounds; ++r) {
      std::vector<int64_t> idx;
      // A slab smaller than the rounds ask for is seen again (the site's next scans of it).
      for (int k = 0; k < slicesPerRound; ++k) idx.push_back(pool[next++ % pool.size()]);
      std::sort(idx.begin(), idx.end());
      site.rounds.push_back(slices(idx, skew.scanner ? &site.shift : nullptr, base + 1 + static_cast<uint64_t>(r),
                                   site.annotatedLabels));
      site.trainSlices += slicesPerRound;
    }
    data.sites.push_back(std::move(site));
  }
  return data;
}

}  // namespace tessera::simulation
