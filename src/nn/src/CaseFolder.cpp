#include "tessera/nn/CaseFolder.h"

#include <algorithm>

#include "tessera/image/ImageIO.h"
#include "tessera/nn/ModelError.h"

namespace tessera::nn {

namespace fs = std::filesystem;

namespace {

// "case1.nii.gz" → "case1": the stem without any of the image extensions readImage knows.
std::string caseName(const fs::path& file) {
  std::string name = file.filename().string();
  for (const char* ext : {".nii.gz", ".nii", ".mha", ".nrrd"}) {
    const std::string e(ext);
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      return name.substr(0, name.size() - e.size());
    }
  }
  return {};
}

}  // namespace

std::vector<NamedCase> readCaseFolder(const fs::path& directory) {
  const fs::path images = directory / "images";
  const fs::path labels = directory / "labels";
  std::error_code ec;
  if (!fs::is_directory(images, ec)) {
    throw ModelError(directory.string() + ": no images/ folder (expected images/NAME.nii.gz and labels/NAME.nii.gz)");
  }
  std::vector<std::pair<std::string, fs::path>> found;
  for (const auto& entry : fs::directory_iterator(images)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = caseName(entry.path());
    if (!name.empty()) found.emplace_back(name, entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<NamedCase> cases;
  for (const auto& [name, imagePath] : found) {
    const fs::path labelPath = labels / imagePath.filename();
    if (!fs::exists(labelPath, ec)) {
      throw ModelError(imagePath.string() + ": has no label map " + labelPath.string());
    }
    NamedCase c;
    c.name = name;
    c.data.image = image::readImage(imagePath);
    c.data.labels = image::readImage(labelPath);
    cases.push_back(std::move(c));
  }
  return cases;
}

void writeCase(const fs::path& directory, const std::string& name, const TrainingCase& c) {
  fs::create_directories(directory / "images");
  fs::create_directories(directory / "labels");
  image::writeImage(c.image, directory / "images" / (name + ".nii.gz"), image::PixelType::Float32);
  image::writeImage(c.labels, directory / "labels" / (name + ".nii.gz"), image::PixelType::UInt8);
}

}  // namespace tessera::nn
