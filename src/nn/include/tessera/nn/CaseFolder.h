#pragma once
// A folder of image/label pairs, laid out like nnU-Net's imagesTr/labelsTr:
//   DIR/images/NAME.nii.gz  and  DIR/labels/NAME.nii.gz  (any format readImage accepts).
// Sites keep their corrected cases this way; the server keeps its validation set this way.

#include <filesystem>
#include <string>
#include <vector>

#include "tessera/nn/Training.h"

namespace tessera::nn {

struct NamedCase {
  std::string name;
  TrainingCase data;
};

// Sorted by name. Throws ModelError naming the folder when it has no images/ sub-folder or an
// image has no label; ImageError for unreadable files.
std::vector<NamedCase> readCaseFolder(const std::filesystem::path& directory);

// Writes one pair (image as float32, labels as uint8), creating images/ and labels/.
void writeCase(const std::filesystem::path& directory, const std::string& name, const TrainingCase& c);

}  // namespace tessera::nn
