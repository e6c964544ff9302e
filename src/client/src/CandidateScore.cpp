#include "tessera/client/CandidateScore.h"

#include "tessera/client/ApiClient.h"
#include "tessera/common/Error.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/model/Model.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/NormStatistics.h"

namespace tessera::client {

namespace {

double scoreOn(model::Model m, const std::vector<model::TrainingCase>& cases, bool ownStatistics) {
  if (ownStatistics) {
    std::vector<image::Volume> images;
    for (const auto& c : cases) images.push_back(c.image);
    nn::recomputeNormStatistics(m, images);
  }
  return nn::meanDice(m, cases);
}

}  // namespace

CandidateScore scoreCandidate(const ClientConfig& config, const std::filesystem::path& heldOutDir, std::ostream& log) {
  CandidateScore result;
  std::vector<model::TrainingCase> cases;
  for (auto& c : model::readCaseFolder(heldOutDir)) cases.push_back(std::move(c.data));
  if (cases.empty()) throw Error(ErrorCode::Config, (heldOutDir / "images").string() + ": no held-out cases to score a candidate on");
  ApiClient api(config);
  nlohmann::json pending;
  try {
    pending = api.candidate(config.task);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::NotFound) throw;
    return result;  // nothing waits for this site
  }
  result.pending = true;
  result.baseGeneration = pending.value("base_generation", int64_t{0});
  if (pending.value("reported", false)) {
    result.reported = true;
    return result;
  }
  const std::string sha = pending.value("weights_sha256", "");
  const model::Model candidate = model::decodeModel(api.downloadCandidate(config.task), "candidate of " + config.task);
  if (candidate.weightsSha256() != sha) {
    throw Error(ErrorCode::Checksum, "candidate of " + config.task + ": weights " + candidate.weightsSha256() + " are not the announced " + sha);
  }
  const model::Model current =
      model::decodeModel(api.downloadModel(config.task, result.baseGeneration), "generation " + std::to_string(result.baseGeneration));
  const bool ownStatistics = pending.value("strategy", "") == "fedbn";
  result.diceCurrent = scoreOn(current, cases, ownStatistics);
  result.diceCandidate = scoreOn(candidate, cases, ownStatistics);
  result.cases = static_cast<int>(cases.size());
  api.reportCandidateDice(config.task, {{"weights_sha256", sha},
                                        {"dice_current", result.diceCurrent},
                                        {"dice_candidate", result.diceCandidate},
                                        {"cases", result.cases}});
  result.reported = true;
  log << "candidate on generation " << result.baseGeneration << " of " << config.task << ": Dice " << result.diceCurrent << " -> "
      << result.diceCandidate << " on " << result.cases << " held-out case(s), reported\n";
  return result;
}

}  // namespace tessera::client
