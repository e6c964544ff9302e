// Fuzz target for the two parsers of untrusted model bytes: the `.tsm` container and the
// weights section inside it (which a corrupted SHA-256 check would otherwise hide from the
// fuzzer). Any exception other than ModelError, or a crash, is a finding.
#include <string_view>

#include "FuzzTarget.h"
#include "tessera/nn/Model.h"
#include "tessera/nn/ModelError.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    (void)tessera::nn::decodeModel(bytes, "fuzz.tsm");
  } catch (const tessera::nn::ModelError&) {
  }
  try {
    (void)tessera::nn::decodeWeights(bytes, "fuzz-weights");
  } catch (const tessera::nn::ModelError&) {
  }
  return 0;
}

std::vector<std::string> tesseraFuzzSeeds() {
  tessera::nn::NetworkSpec spec;
  spec.baseFeatures = 2;
  spec.depth = 2;
  const auto model = tessera::nn::initialModel(spec, {}, {}, 3);
  return {tessera::nn::encodeModel(model), tessera::nn::encodeWeights(model.weights)};
}
