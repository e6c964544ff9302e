#pragma once
// Choosing one model series from what a PACS returned, shared by the DIMSE and DICOMweb clients.

#include <string>
#include <vector>

#include "tessera/dicom/PacsClient.h"

namespace tessera::dicom {

// The series of `task`'s generation `wanted` in `series` (all of that task). NotFound naming the
// generations there, Conflict when the generation is in several series or holds several objects.
ModelSeriesInfo pickGeneration(const std::vector<ModelSeriesInfo>& series, const std::string& task, int64_t wanted,
                               const std::string& where);

}  // namespace tessera::dicom
