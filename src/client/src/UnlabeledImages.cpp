#include "UnlabeledImages.h"

#include <algorithm>

#include "tessera/common/Error.h"
#include "tessera/image/ImageIO.h"
#include "tessera/nn/Training.h"

namespace tessera::client {

namespace fs = std::filesystem;

namespace {

bool isImageFile(const fs::path& path) {
  const std::string name = path.filename().string();
  for (const char* ext : {".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr", ".hdr"}) {
    const std::string e = ext;
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

}  // namespace

std::vector<UnlabeledImage> readUnlabeledImages(const fs::path& dir, const model::Model& model) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(ErrorCode::Config, dir.string() + ": not a folder of unlabeled images");
  const fs::path folder = fs::is_directory(dir / "images", ec) ? dir / "images" : dir;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.is_regular_file() && isImageFile(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    throw Error(ErrorCode::Config, folder.string() + ": no images (expected NAME.nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr or .hdr)");
  }
  std::vector<UnlabeledImage> images;
  for (const auto& file : files) {
    UnlabeledImage image{file, image::readImage(file)};
    // The labelled cases' check (size for the network) on a blank label map of the image's grid.
    model::TrainingCase blank;
    blank.image = image.volume;
    blank.labels = image::Volume(image.volume.geometry);
    try {
      nn::validateTrainingCases({blank}, model.spec, model.preprocessing);
    } catch (const Error& e) {
      const std::string what = e.what();
      const auto colon = what.find(':');
      throw Error(e.code(), file.string() + (colon == std::string::npos ? ": " + what : what.substr(colon)));
    }
    images.push_back(std::move(image));
  }
  return images;
}

double countUnlabeledSamples(const std::vector<UnlabeledImage>& images, const model::NetworkSpec& spec) {
  if (spec.dims != 2) return static_cast<double>(images.size());
  double slices = 0;
  for (const auto& i : images) slices += static_cast<double>(i.volume.geometry.size[spec.axis]);
  return slices;
}

}  // namespace tessera::client
