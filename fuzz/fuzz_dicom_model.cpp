// Fuzz target for DICOM model objects: DCMTK's parser on hostile bytes, then Tessera's reading
// of the private block (creator search, JSON, SHA-256, weight records). Any exception other
// than tessera::Error, or a crash, is a finding.
#include <string_view>

#include "FuzzTarget.h"
#include "tessera/common/Error.h"
#include "tessera/dicom/DicomModelCodec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    (void)tessera::dicom::decodeModelDicom(bytes, "fuzz.dcm");
  } catch (const tessera::Error&) {
  }
  return 0;
}

std::vector<std::string> tesseraFuzzSeeds() {
  tessera::model::NetworkSpec spec;
  spec.baseFeatures = 2;
  spec.depth = 2;
  tessera::model::TaskInfo task;
  task.name = "brain";
  task.modality = "MR";
  task.anatomy = "BRAIN";
  task.disease = "glioma";
  task.diseaseCode = {"SCT", "393563007", "Glioma"};
  auto model = tessera::model::initialModel(spec, {}, task, 3);
  model.generation = 2;
  model.parentGeneration = 1;
  return {tessera::dicom::encodeModelDicom(model, {"20260101120000"})};
}
