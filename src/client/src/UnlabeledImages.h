#pragma once
// The scans a site holds without labels, for semi-supervised training: every image file of a
// folder (or of its images/ subfolder, so a case folder's layout works too), sorted by name.

#include <filesystem>
#include <string>
#include <vector>

#include "tessera/image/Volume.h"
#include "tessera/model/Model.h"

namespace tessera::client {

struct UnlabeledImage {
  std::filesystem::path path;
  image::Volume volume;
};

// Reads .nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr and .hdr files (other files are skipped) and
// checks each against the network (an image too small for it is BadImage naming the file).
// Error(Config) when the folder is missing or holds none.
std::vector<UnlabeledImage> readUnlabeledImages(const std::filesystem::path& dir, const model::Model& model);

// Training samples they amount to, counted like labelled ones (client::countSamples).
double countUnlabeledSamples(const std::vector<UnlabeledImage>& images, const model::NetworkSpec& spec);

}  // namespace tessera::client
