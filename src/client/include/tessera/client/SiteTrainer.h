#pragma once
// A site's round trip: pull the latest generation, fine-tune it on the site's own cases, push
// the difference, and see where things stand. Progress and warnings go to `log`; results are
// returned for the caller to print.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/client/ClientConfig.h"
#include "tessera/interactive/ContinualLearning.h"
#include "tessera/nn/SemiSupervised.h"
#include "tessera/nn/Training.h"

namespace tessera::client {

struct PullResult {
  std::filesystem::path path;
  int64_t generation = 0;
  bool downloaded = false;  // false: it was already in the cache (and still verifies)
};

// Downloads the latest published generation of config.task unless the cache already holds it.
PullResult pull(const ClientConfig& config, std::ostream& log);
// The same from a PACS ("AET@HOST:PORT" or "dicomweb+http(s)://…") that `tessera server
// --publish-pacs` fills: the server's latest generation, its weights checked against the server's
// signed record; with the server unreachable, the PACS's newest, checked against its own SHA-256
// only (logged). `callingAet` is our AE title.
PullResult pullFromPacs(const ClientConfig& config, const std::string& pacs, const std::string& callingAet, std::ostream& log);

struct SiteTrainOptions {
  std::filesystem::path casesDir;  // images/NAME.nii.gz + labels/NAME.nii.gz (model::readCaseFolder); may be empty with unlabeledDir
  // Scans without labels (every image file of the folder or its images/ subfolder): with them
  // training is semi-supervised (nn/SemiSupervised.h), so a site that labels nothing still
  // contributes. Not with `replay`.
  std::filesystem::path unlabeledDir;
  nn::SemiSupervisedOptions semiSupervised;
  int epochs = 10;
  uint64_t seed = 1;
  int batchSize = 8;
  double learningRate = 2e-3;  // fine-tuning a trained generation often wants less
  // Continual learning (interactive/ContinualLearning.h) when set: only the cases accepted since
  // the last learning (not in CASEDIR/learned.json) are learned, with up to `replay` earlier
  // cases rehearsed and label smoothing. Unset: every case of the folder, as plain fine-tuning.
  // Either way the cases learned are recorded in learned.json, and those with an interactions
  // sidecar are reported to the server as "correct" usage events (clicks, seconds, Dice).
  std::optional<int> replay;
  interactive::ReplaySampling replaySampling = interactive::ReplaySampling::Uniform;
  double labelSmoothing = interactive::ContinualOptions{}.labelSmoothing;  // continual learning only
  std::function<void(const nn::TrainProgress&)> onEpoch;
};

struct TrainResult {
  std::filesystem::path modelPath;
  int64_t baseGeneration = 0;
  int cases = 0;
  double samples = 0;  // 2D networks: slices along the slice axis; 3D: cases; unlabelled ones times the pseudo-labelled share (at least 0.01 in all)
  double finalLoss = 0;
  double seconds = 0;
  std::string strategy;  // the model's merge strategy, as far as known
  bool keptLocalNormalization = false;  // FedBN: the previous local BN tensors were carried over
  // The cases learned for the first time (not yet in learned.json); with continual learning also
  // the earlier ones rehearsed and the model's Dice on each new case before and after learning.
  std::vector<std::string> learned, replayed;
  std::vector<interactive::CaseDice> dice;
  // Semi-supervised training: the unlabelled images used, and over the last epoch the voxels of
  // theirs the teacher saw and those it was confident enough to pseudo-label.
  int unlabeledImages = 0;
  int64_t unlabeledVoxels = 0, pseudoLabelledVoxels = 0;
};

// Fine-tunes the newest pulled generation on the site's cases (and unlabelled images) and records
// the result under home/sites-state/<task>/; the record's metrics, which travel in the update,
// name the unlabelled images used (unlabeled_images, unlabeled_samples, pseudo_labelled_fraction).
// Works without the server when the strategy is cached from pull.
TrainResult train(const ClientConfig& config, const SiteTrainOptions& options, std::ostream& log);

// Uploads trained − base as a delta update; returns the server's answer
// ({"update": id, "status": "queued"}). Refuses to push the same training twice.
nlohmann::json push(const ClientConfig& config, std::ostream& log);

// Never throws for server problems: they are reported inside the answer, so status works offline.
//   {"server": {"url", "reachable" (null: not asked), "name"?, "role"?, "error"?, "error_code"?},
//    "task", "latest_generation", "cache": {"folder", "generations", "latest", "up_to_date"},
//    "trained": null | {"path", "base_generation", "samples", "metrics", "cases", "trained_at",
//                       "pushed": null | {"update", "at", "server", "status"?}}}
nlohmann::json status(const ClientConfig& config);

// The number of training samples a site reports: slices along the slice axis for 2D networks,
// cases for 3D ones.
double countSamples(const std::vector<model::TrainingCase>& cases, const model::NetworkSpec& spec);

}  // namespace tessera::client
