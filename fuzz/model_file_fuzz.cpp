// Fuzz target for the two parsers of untrusted model bytes: the `.tsm` container and the
// weights section inside it (which a corrupted SHA-256 check would otherwise hide from the
// fuzzer). Any exception other than tessera::Error, or a crash, is a finding.
#include <string_view>

#include "FuzzTarget.h"
#include "tessera/model/Model.h"
#include "tessera/common/Error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    (void)tessera::model::decodeModel(bytes, "fuzz.tsm");
  } catch (const tessera::Error&) {
  }
  try {
    (void)tessera::common::decodeWeights(bytes, "fuzz-weights");
  } catch (const tessera::Error&) {
  }
  return 0;
}

std::vector<std::string> tesseraFuzzSeeds() {
  tessera::model::NetworkSpec spec;
  spec.baseFeatures = 2;
  spec.depth = 2;
  const auto model = tessera::model::initialModel(spec, {}, {}, 3);
  return {tessera::model::encodeModel(model), tessera::common::encodeWeights(model.weights)};
}
