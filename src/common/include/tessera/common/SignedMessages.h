#pragma once
// The exact byte strings that are signed. Each is a versioned text of "key=value" lines in a
// fixed order, so that signer and verifier never disagree about what a signature covers and no
// field can be moved into another (values hold no newline: tasks and site names cannot).

#include <cstdint>
#include <optional>
#include <string>

namespace tessera::common {

// A site's upload. `updateSha256` is the SHA-256 of the whole update file as sent (container
// prefix, JSON header with task, base generation, samples, metrics, DP declaration, idempotency
// key and weights SHA-256, and the weight records): changing any byte of it breaks the
// signature. The nonce (32 hex digits, fresh for every request) makes each signed request
// usable once.
struct UpdateSignatureFields {
  std::string task;
  std::string site;
  int64_t baseGeneration = 0;
  std::string nonce;
  std::string updateSha256;
};
//   tessera-update-signature-v1\ntask=T\nsite=S\nbase_generation=G\nnonce=N\nupdate_sha256=H\n
std::string updateSignatureMessage(const UpdateSignatureFields& fields);

// A published generation: the server signs what a client needs to trust a download.
struct GenerationSignatureFields {
  std::string task;
  int64_t generation = 0;
  std::optional<int64_t> parent;  // none for a seeded generation
  std::string weightsSha256;      // of the weights section, as in the model's header
};
//   tessera-generation-signature-v1\ntask=T\ngeneration=G\nparent=P|none\nweights_sha256=H\n
std::string generationSignatureMessage(const GenerationSignatureFields& fields);

}  // namespace tessera::common
