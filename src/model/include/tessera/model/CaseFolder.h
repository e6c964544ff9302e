#pragma once
// A folder of image/label pairs, laid out like nnU-Net's imagesTr/labelsTr:
//   DIR/images/NAME.nii.gz  and  DIR/labels/NAME.nii.gz  (any format readImage accepts).
// Sites keep their corrected cases this way; the server keeps its validation set this way.

#include <filesystem>
#include <string>
#include <vector>

#include "tessera/image/Volume.h"

namespace tessera::model {

// One image and its label map on the same grid (integer values 0..classes-1).
struct TrainingCase {
  image::Volume image;
  image::Volume labels;
  // Optional per-voxel loss weights on the same grid (a proxy mask from a few drawn slices is
  // trusted less far from them); empty means weight 1 everywhere. Not stored by writeCase.
  image::Volume weights;
  // The foreground labels this case's annotators drew (partial labels: a site that draws only some
  // structures leaves the rest at 0); empty means every label. Stored by writeCase as
  // labels/NAME.annotated.json next to the label map.
  std::vector<int> annotatedLabels;
};

struct NamedCase {
  std::string name;
  TrainingCase data;
};

// Sorted by name. Reads any layout readDataset (Dataset.h) accepts: this one, nnU-Net v2 raw
// datasets and Medical Segmentation Decathlon folders. Throws Error(BadDataset) naming the folder
// when it is none of them or an image has no label; Error(BadImage) for unreadable files.
std::vector<NamedCase> readCaseFolder(const std::filesystem::path& directory);

// Writes one pair (image as float32, labels as uint8), creating images/ and labels/.
void writeCase(const std::filesystem::path& directory, const std::string& name, const TrainingCase& c);

}  // namespace tessera::model
