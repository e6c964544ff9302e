#include "LobeAtlas.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include "tessera/common/Error.h"
#include "tessera/image/ImageIO.h"

namespace tessera::simulation {

std::map<int, std::string> lobeNames() {
  return {{0, "background"}, {Frontal, "frontal"},       {Temporal, "temporal"},
          {Parietal, "parietal"}, {Occipital, "occipital"}, {Cerebellum, "cerebellum"},
          {DeepGrey, "deep grey / limbic"}};
}

int lobeOfAalCode(int code) {
  switch (code / 1000) {
    case 2: return Frontal;
    case 8: return Temporal;
    case 6: return Parietal;
    case 5: return Occipital;
    case 9: return Cerebellum;
    case 3: case 4: case 7: return DeepGrey;
    default: return 0;
  }
}

image::Volume readLobeAtlas(const std::filesystem::path& dataDir) {
  const auto listPath = dataDir / "aal.nii.txt";
  std::ifstream list(listPath);
  if (!list) throw Error(ErrorCode::BadImage, listPath.string() + ": cannot open (install it with: apt-get install mricron-data)");
  std::vector<int> lobeOfRegion(256, 0);
  std::string line;
  while (std::getline(list, line)) {
    std::istringstream fields(line);
    int index = 0, code = 0;
    std::string name;
    if (!(fields >> index >> name >> code)) continue;
    if (index < 1 || index > 255) throw Error(ErrorCode::BadImage, listPath.string() + ": region index " + std::to_string(index) + " out of 1..255");
    lobeOfRegion[static_cast<size_t>(index)] = lobeOfAalCode(code);
  }
  image::Volume atlas;
  try {
    atlas = image::readImage(dataDir / "aal.nii.gz");
  } catch (const Error& e) {
    throw Error(ErrorCode::BadImage, std::string(e.what()) + " (install it with: apt-get install mricron-data)");
  }
  for (float& v : atlas.voxels) {
    const long region = std::lround(v);
    v = region > 0 && region < 256 ? static_cast<float>(lobeOfRegion[static_cast<size_t>(region)]) : 0.0f;
  }
  return atlas;
}

}  // namespace tessera::simulation
