// `tessera client pull --from-pacs`: the generation comes out of the hospital's PACS (where
// `tessera server --publish-pacs` put it) instead of over the WAN from the server.
//
// What vouches for the weights:
//  - server reachable: its signed record of the latest generation (verifyGenerationRecord, the
//    same check as a plain pull) names the generation and its weights SHA-256; the PACS object
//    must be that generation with exactly those weights (Error(Checksum) otherwise).
//  - server unreachable: the PACS's newest generation, checked only against the SHA-256 in its
//    own private block (decodeModelDicom), which proves the object is intact, not who made it.
//    The log says so; a site that needs authenticity pulls while the server answers.

#include <nlohmann/json.hpp>

#include "ServerTrust.h"
#include "tessera/client/ApiClient.h"
#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteTrainer.h"
#include "tessera/common/Error.h"
#include "tessera/dicom/DicomWebClient.h"
#include "tessera/dicom/PacsClient.h"

namespace tessera::client {

namespace {

model::Model fetchFromPacs(const std::string& pacs, const std::string& callingAet, const std::string& task,
                           std::optional<int64_t> generation) {
  if (dicom::DicomWebClient::matches(pacs)) return dicom::DicomWebClient(pacs).pullModel(task, generation);
  dicom::PacsOptions options;
  options.callingAet = callingAet;
  return dicom::PacsClient(dicom::PacsAddress::parse(pacs, "--from-pacs"), options).pullModel(task, generation);
}

}  // namespace

PullResult pullFromPacs(const ClientConfig& config, const std::string& pacs, const std::string& callingAet, std::ostream& log) {
  ModelCache cache(config.home);
  cache.folder(config.task);
  std::optional<int64_t> generation;
  std::string announced;
  try {
    ApiClient api(config);
    const nlohmann::json latest = api.latestGeneration(config.task);
    if (!latest.contains("generation") || !latest["generation"].is_number_integer()) {
      throw Error(ErrorCode::Server, "the server at " + api.serverUrl() + " described the latest generation of " +
                                      config.task + " without an integer 'generation': " + latest.dump());
    }
    generation = latest["generation"].get<int64_t>();
    cache.storeSummary(config.task, api.model(config.task));
    verifyGenerationRecord(config, api, latest, log);
    const nlohmann::json sha = latest.value("weights_sha256", nlohmann::json(""));
    announced = sha.is_string() ? sha.get<std::string>() : "";
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Unreachable) throw;
    log << "tessera: warning: " << e.what() << "; taking the newest generation in the PACS, checked against its own "
        << "SHA-256 only (the server's signed record cannot vouch for it)\n";
  }

  log << "fetching " << config.task << " generation " << (generation ? std::to_string(*generation) : "newest") << " from the PACS "
      << pacs << "\n";
  const model::Model model = fetchFromPacs(pacs, callingAet, config.task, generation);
  const std::string what = "generation " + std::to_string(model.generation) + " of " + config.task + " in the PACS " + pacs;
  if (generation && model.generation != *generation) {
    throw Error(ErrorCode::Checksum, what + " is not the server's latest generation " + std::to_string(*generation));
  }
  if (!announced.empty() && model.weightsSha256() != announced) {
    throw Error(ErrorCode::Checksum, what + ": weights hash " + model.weightsSha256() + " differs from the server's signed record " +
                                          announced);
  }
  PullResult result;
  result.generation = model.generation;
  result.path = cache.store(config.task, model.generation, model::encodeModel(model));
  result.downloaded = true;
  return result;
}

}  // namespace tessera::client
