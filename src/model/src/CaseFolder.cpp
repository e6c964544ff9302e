#include "tessera/model/CaseFolder.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "tessera/image/ImageIO.h"
#include "tessera/model/Dataset.h"

namespace tessera::model {

namespace fs = std::filesystem;

// Every layout readDataset knows (Tessera, nnU-Net v2, Decathlon), so every caller accepts them all.
std::vector<NamedCase> readCaseFolder(const fs::path& directory) { return readDataset(directory).cases; }

void writeCase(const fs::path& directory, const std::string& name, const TrainingCase& c) {
  fs::create_directories(directory / "images");
  fs::create_directories(directory / "labels");
  image::writeImage(c.image, directory / "images" / (name + ".nii.gz"), image::PixelType::Float32);
  image::writeImage(c.labels, directory / "labels" / (name + ".nii.gz"), image::PixelType::UInt8);
  const fs::path annotated = directory / "labels" / (name + ".annotated.json");
  if (c.annotatedLabels.empty()) {
    fs::remove(annotated);
  } else {
    std::ofstream(annotated) << nlohmann::json(c.annotatedLabels).dump() << "\n";
  }
}

}  // namespace tessera::model
