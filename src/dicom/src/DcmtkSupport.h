#pragma once
// DCMTK glue shared by the codec and the PACS client (private: DCMTK headers stay here).

#include <memory>
#include <string>
#include <string_view>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"

#include "tessera/common/Error.h"

namespace tessera::dicom::detail {

// Registers Tessera's private attributes in DCMTK's dictionary once, so that objects received
// in Implicit VR (where VRs are not on the wire) still read the private block with its VRs.
void ensureTesseraDictionary();

// A Part 10 file of `file` in Explicit VR Little Endian.
std::string writePart10(DcmFileFormat& file);

// Parses DICOM Part 10 bytes; throws Error(code, "<source>: …") for data that is not one.
std::unique_ptr<DcmFileFormat> readPart10(std::string_view bytes, const std::string& source, ErrorCode code);

// The value of a string-valued element, as written (no normalisation beyond trailing padding).
std::string stringValue(DcmItem& item, const DcmTagKey& key);

}  // namespace tessera::dicom::detail

namespace tessera::model {
struct Model;
}
namespace tessera::dicom::detail {
// The model in a received or read dataset; Error(BadModel, "<source>: …") otherwise.
model::Model decodeModelDataset(DcmItem& dataset, const std::string& source);
}  // namespace tessera::dicom::detail
