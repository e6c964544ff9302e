#pragma once
// Continual learning at a site: the site model fine-tunes on each newly accepted (corrected) case,
// rehearsing a few earlier cases from a replay buffer so that it does not forget them.
//
// The case folder (model::writeCase's CASEDIR/images/NAME.nii.gz + CASEDIR/labels/NAME.nii.gz)
// carries three optional companions, keyed by the case name:
//   CASEDIR/weights/NAME.nii.gz       per-voxel loss weights on the image's grid, 0..1 (float).
//                                     A proxy mask propagated from a few drawn slices stores
//                                     w = 1/(1 + distance to the nearest drawn slice) here, so the
//                                     network trusts the drawn slices most. Absent: weight 1.
//   CASEDIR/interactions/NAME.json    how the person corrected the case, written by
//                                     Session::accept (Session.h); read here: "clicks" (a count),
//                                     "seconds" (interaction time) and "dice_initial_to_accepted"
//                                     (the model's first prediction against the accepted mask).
//   CASEDIR/learned.json              which cases a site model has learned, oldest first:
//                                     {"format": "tessera-learned", "version": 1, "cases":
//                                      [{"name", "model_sha256", "generation", "learned_at"}]}
//                                     Rewritten atomically after the learned model was saved, so
//                                     a case counts as learned only once a model holds it;
//                                     CASEDIR/.learned.lock serialises concurrent writers.
//
// "New" cases are those in the folder that learned.json does not list (or those named
// explicitly). The replay buffer holds every other case, oldest first: cases that predate the
// record (the site's initial data) first, then those of learned.json in the order learned.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tessera/interactive/ReplayBuffer.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/model/Model.h"
#include "tessera/nn/Training.h"

namespace tessera::interactive {

std::filesystem::path proxyWeightsPath(const std::filesystem::path& casesDir, const std::string& name);
std::filesystem::path interactionsPath(const std::filesystem::path& casesDir, const std::string& name);
std::filesystem::path learnedRecordPath(const std::filesystem::path& casesDir);

struct LearnedCase {
  std::string name;
  std::string modelSha256;  // weights SHA-256 of the model the case was learned into
  int64_t generation = 0;   // that model's generation
  std::string learnedAt;    // UTC, ISO 8601
};

// Oldest first; empty when the folder has no record yet. Error(Corrupt) naming the file when it
// is unreadable (it is never half-written, so that means someone edited it).
std::vector<LearnedCase> readLearnedRecord(const std::filesystem::path& casesDir);
// Appends the names (those already listed move to the end: learned again, by this model).
void recordLearned(const std::filesystem::path& casesDir, const std::vector<std::string>& names,
                   const model::Model& learnedInto);

// The figures of CASEDIR/interactions/NAME.json; nullopt when the file does not exist, a field
// left empty when absent. Error(Corrupt) naming the file when it is not a JSON object.
struct InteractionFigures {
  std::optional<int64_t> clicks;
  std::optional<double> seconds;
  std::optional<double> diceBefore;
};
std::optional<InteractionFigures> readInteractionFigures(const std::filesystem::path& casesDir, const std::string& name);

// Why these defaults (training from scratch: `tessera train`'s 30 epochs at 2e-3): a trained
// model needs a nudge, not a rebuild. A quarter of the learning rate and a third of the epochs
// move the weights far enough to fit one corrected case (its Dice after learning is printed)
// while staying close to the starting point, which is what keeps the old cases' accuracy;
// smoothing the one-hot targets by 0.1 stops the network from becoming over-confident on the
// newest case, which speeds forgetting. 8 replayed cases make the new case one in nine of the
// data each epoch.
struct ContinualOptions {
  int epochs = 10;
  double learningRate = 5e-4;
  double labelSmoothing = 0.1;
  int replay = 8;  // earlier cases rehearsed with the new ones (0: none)
  ReplaySampling sampling = ReplaySampling::Uniform;
  uint64_t seed = 1;  // replay sampling, shuffling, augmentation
  int batchSize = 8;
  bool augment = true;
  // The output is the site's next model in its LOCAL lineage: generation + 1, parent = the
  // input's generation. The federation numbers its own generations; a site pushing to a server
  // keeps the pulled generation as the base (client train sets this to false).
  bool advanceGeneration = true;
  std::function<void(const nn::TrainProgress&)> onEpoch;
  // The training step, nn::trainModel when empty (tests watch what reaches it).
  std::function<void(model::Model&, const std::vector<model::TrainingCase>&, const nn::TrainOptions&)> train;
};

struct CaseDice {
  std::string name;
  double before = 0.0;  // the input model's foreground Dice to the accepted labels
  double after = 0.0;   // the learned model's
};

struct ContinualResult {
  std::vector<std::string> learned;   // the new cases
  std::vector<std::string> replayed;  // the earlier cases rehearsed, oldest first
  std::vector<CaseDice> dice;         // one per new case
  double finalLoss = 0.0;
  double seconds = 0.0;  // training only
  // What a site reports for the update: slices along the slice axis of the cases trained on
  // (2D networks) or the number of those cases (3D).
  double samples = 0.0;
};

// Fine-tunes `model` in place on `fresh` plus a replay sample of `earlier` (oldest first).
// Error(BadRequest) when `fresh` is empty; cases are validated against the model (Error naming
// the case).
ContinualResult learnContinually(model::Model& model, const std::vector<model::NamedCase>& fresh,
                                 const std::vector<model::NamedCase>& earlier, const ContinualOptions& options);

// A case folder split into what to learn now and what may be replayed. Only the new cases are
// read: a site's folder of accepted cases grows without bound, and a learning step needs the
// new ones and the few it replays (learnFromCaseFolder reads those).
struct CaseSelection {
  std::filesystem::path casesDir;
  std::vector<model::NamedCase> fresh;  // to learn now, read and checked against the model
  std::vector<std::string> earlier;     // the replay buffer: the other cases' names, oldest first
  size_t recorded = 0;                  // cases of the folder that learned.json lists
};

// Splits the case folder into new and earlier cases (see the top of this file) and reads the new
// ones with their weights. `explicitNew` non-empty: exactly these are new (Error(NotFound) naming
// a name the folder lacks). Error(NotFound) for a missing folder, Error(BadDataset) for a folder
// that is no dataset or an image without labels; for a case read: Error(BadModel) naming
// CASEDIR/labels/NAME when its labels do not fit the model's classes, Error(BadImage) naming the
// weights file when it is not on the image's grid or not within 0..1. `fresh` may be empty.
CaseSelection selectCases(const std::filesystem::path& casesDir, const model::Model& model,
                          const std::vector<std::string>& explicitNew = {});

// Reads the named cases of the folder with their weights, checked as selectCases checks the new
// ones; in the order given.
std::vector<model::NamedCase> readCases(const std::filesystem::path& casesDir, const model::Model& model,
                                        const std::vector<std::string>& names);

// learnContinually on the selection: samples the replay from `selection.earlier`, reads only those.
ContinualResult learnFromCaseFolder(model::Model& model, const CaseSelection& selection, const ContinualOptions& options);

}  // namespace tessera::interactive
