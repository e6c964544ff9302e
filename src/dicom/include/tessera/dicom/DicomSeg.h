#pragma once
// Label maps as DICOM Segmentation objects (binary SEG, DCMTK's dcmseg) that reference the DICOM
// series they were computed from: patient, study and frame of reference taken over from it,
// each frame pointing at its source instance (Derivation Image), positioned with Image Position
// (Patient) and the series' orientation, listed in the Referenced Series Sequence. One segment
// per foreground label, named from the model's task; category Anatomical Structure with the
// anatomy's SNOMED CT code as type where Tessera's table knows it (label name, then the task's
// anatomy), else Tissue.

#include <filesystem>
#include <string>

#include "tessera/image/Volume.h"
#include "tessera/model/TaskInfo.h"

namespace tessera::dicom {

struct SegOptions {
  std::string seriesDescription = "Tessera segmentation";
  std::string algorithmName = "Tessera";
};

// `labels` must lie on the grid of the series at `source` as image::readImage read it (a
// folder holding the series, or one of its files). Throws Error(BadImage) when `source` is not
// a DICOM series or a slice of `labels` has no source instance at its position.
void writeDicomSeg(const image::Volume& labels, const model::TaskInfo& task, const std::filesystem::path& source,
                   const std::filesystem::path& out, const SegOptions& options = {});

// Whether `path` is a DICOM Segmentation object (by its SOP class; false for anything else).
bool isDicomSeg(const std::filesystem::path& path);

// A SEG's frames as a label map on `grid` (the image it was made from): each frame lands on the
// slice at its Image Position, voxels of segment N get label N (later segments win where they
// overlap). Error(BadImage, "<file>: …") when it is not a binary SEG or a frame is off the grid.
image::Volume readDicomSeg(const std::filesystem::path& path, const image::Geometry& grid);

}  // namespace tessera::dicom
