#pragma once
// A volume as a classic DICOM image series: one MR (or CT) Image Storage instance per slice
// along index axis 2, with the volume's real geometry (Image Position/Orientation (Patient),
// Pixel Spacing, one Frame of Reference), so a PACS, a viewer and Tessera's own series reader
// place every slice where the volume has it. For tests and benchmarks that need a realistic
// series from a NIfTI (Colin27) and for sites that must hand a result volume to a PACS.

#include <cstddef>
#include <filesystem>
#include <string>

#include "tessera/image/Volume.h"

namespace tessera::dicom {

struct DicomSeriesOptions {
  std::string patientName = "PHANTOM^COLIN27";
  std::string patientId = "COLIN27";
  std::string modality = "MR";  // MR or CT (the storage class follows)
  std::string bodyPart = "BRAIN";
  std::string seriesDescription = "Tessera series";
  std::string studyUid;   // empty: a new one
  std::string seriesUid;  // empty: a new one
};

struct DicomSeriesInfo {
  size_t instances = 0;
  std::string studyUid, seriesUid, frameOfReferenceUid;
};

// Writes DIR/slice-NNNN.dcm. Voxels that are integers in [0, 65535] are stored as they are;
// other values are mapped to 0..4095 with Rescale Slope/Intercept. Error(BadImage) for an empty
// volume, Error(Io) when a file cannot be written.
DicomSeriesInfo writeDicomSeries(const image::Volume& volume, const std::filesystem::path& dir,
                                 const DicomSeriesOptions& options = {});

}  // namespace tessera::dicom
