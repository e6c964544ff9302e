#pragma once
// Training datasets in the layouts people already have, read as they are:
//   Tessera      DIR/images/NAME.nii.gz + DIR/labels/NAME.nii.gz (any format readImage accepts)
//   nnU-Net v2   DIR/dataset.json ("channel_names", "labels" name → value, "file_ending"),
//                DIR/imagesTr/CASE_0000.nii.gz (+ _0001 … per channel), DIR/labelsTr/CASE.nii.gz
//   Decathlon    DIR/dataset.json ("modality", "labels" value → name, "training" [{image, label}]),
//                DIR/imagesTr/NAME.nii.gz, DIR/labelsTr/NAME.nii.gz
// Tessera's networks take one image per case: datasets with more than one channel (modality) are
// refused with Error(BadDataset) naming the channel count and names.

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/model/CaseFolder.h"
#include "tessera/model/TaskInfo.h"

namespace tessera::model {

enum class DatasetLayout { Tessera, NnUNetV2, Decathlon };

// "Tessera", "nnU-Net v2", "Decathlon" — for messages.
std::string_view layoutName(DatasetLayout layout);

// Which layout the folder has. Throws Error(BadDataset) with one line naming what is missing when
// it is none of them, or when dataset.json is unreadable or of no known kind.
DatasetLayout detectDatasetLayout(const std::filesystem::path& directory);

struct Dataset {
  DatasetLayout layout = DatasetLayout::Tessera;
  std::vector<NamedCase> cases;  // sorted by name
  int channels = 1;
  std::map<int, std::string> labelNames;  // from dataset.json; empty for the Tessera layout
  std::vector<std::string> channelNames;  // from dataset.json ("T1", "CT", …); empty for Tessera
};

// Reads every case of the folder. nnU-Net v2 case names drop the channel suffix ("CASE", not
// "CASE_0000"); Decathlon names come from the "training" list. For the dataset.json layouts every
// label value must be an integer listed in dataset.json's labels. Throws Error(BadDataset) naming
// the file, case or field at fault, Error(BadImage) for unreadable images.
Dataset readDataset(const std::filesystem::path& directory);

// Sets task.labels to the dataset's label names when it has any; leaves the task as it is otherwise.
void applyLabelNames(TaskInfo& task, const Dataset& dataset);

}  // namespace tessera::model
