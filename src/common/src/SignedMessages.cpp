#include "tessera/common/SignedMessages.h"

namespace tessera::common {

std::string updateSignatureMessage(const UpdateSignatureFields& f) {
  return "tessera-update-signature-v1\ntask=" + f.task + "\nsite=" + f.site +
         "\nbase_generation=" + std::to_string(f.baseGeneration) + "\nnonce=" + f.nonce +
         "\nupdate_sha256=" + f.updateSha256 + "\n";
}

std::string generationSignatureMessage(const GenerationSignatureFields& f) {
  return "tessera-generation-signature-v1\ntask=" + f.task + "\ngeneration=" + std::to_string(f.generation) +
         "\nparent=" + (f.parent ? std::to_string(*f.parent) : std::string("none")) + "\nweights_sha256=" + f.weightsSha256 +
         "\n";
}

}  // namespace tessera::common
