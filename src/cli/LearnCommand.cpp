// `tessera learn`: the site model learns from the cases accepted since it last learned, with a
// replay buffer of earlier ones, and becomes the site's next generation.

#include <iomanip>
#include <iostream>
#include <sstream>

#include "Commands.h"
#include "ProgressReporter.h"
#include "tessera/common/Error.h"
#include "tessera/interactive/ContinualLearning.h"
#include "tessera/nn/Runtime.h"

namespace tessera::cli {

namespace {

struct LearnArgs {
  std::string model, cases, out, sampling = "uniform";
  std::vector<std::string> fresh;
  interactive::ContinualOptions options;
  int threads = 0;
  bool noAugment = false;
};

std::string joined(const std::vector<std::string>& names, size_t most = 8) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < most; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > most) s += ", … (" + std::to_string(names.size()) + " in all)";
  return s;
}

}  // namespace

Action addLearnCommand(CLI::App& app) {
  auto a = std::make_shared<LearnArgs>();
  app.add_option("--model", a->model, "The current site model (.tsm)")->required();
  app.add_option("--cases", a->cases,
                 "Case folder (images/NAME.nii.gz + labels/NAME.nii.gz, as `interact accept` writes); its "
                 "learned.json records what was learned")
      ->required();
  app.add_option("--out", a->out, "Where to write the learned model (.tsm): generation + 1 of the site's lineage")->required();
  app.add_option("--replay", a->options.replay, "Earlier cases rehearsed with the new ones (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  app.add_option("--replay-sampling", a->sampling, "How earlier cases are chosen: uniform, recent or stratified (by time)")
      ->capture_default_str();
  app.add_option("--epochs", a->options.epochs, "Passes over the new and replayed cases")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--learning-rate", a->options.learningRate, "Adam's initial learning rate (a quarter of train's)")
      ->capture_default_str()
      ->check(CLI::Range(1e-7, 1.0));
  app.add_option("--label-smoothing", a->options.labelSmoothing, "Label smoothing of the training targets (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--new", a->fresh, "Learn exactly these cases (by name) instead of those not in learned.json")->expected(1, -1);
  app.add_option("--seed", a->options.seed, "Random seed (replay sampling, shuffling, augmentation)")->capture_default_str();
  app.add_option("--threads", a->threads, "Compute threads (default: all cores; 1 for bit-identical reruns)");
  app.add_flag("--no-augment", a->noAugment, "Disable intensity augmentation");

  return [a] {
    a->options.sampling = interactive::replaySamplingFromName(a->sampling);
    a->options.augment = !a->noAugment;
    nn::setThreadCount(a->threads);
    model::Model model = model::loadModel(a->model);
    interactive::CaseSelection selection = interactive::selectCases(a->cases, model, a->fresh);
    if (selection.fresh.empty()) {
      throw Error(ErrorCode::NotFound, a->cases + ": nothing new to learn: all " + std::to_string(selection.recorded) +
                                           " case(s) are listed in " + interactive::learnedRecordPath(a->cases).string() +
                                           " (accept a new case, or name cases with --new)");
    }
    std::cerr << "learning " << selection.fresh.size() << " new case(s) on " << model.task.name << " generation "
              << model.generation << ", replaying up to " << a->options.replay << " of " << selection.earlier.size()
              << " earlier (" << a->sampling << "), " << a->options.epochs << " epochs, " << nn::threadCount()
              << " thread(s)" << std::endl;
    interactive::ContinualResult r;
    {
      // Scoped so the progress line is finished before the summary is printed.
      ProgressReporter progress("learn");
      a->options.onEpoch = [&progress](const nn::TrainProgress& p) { progress(p); };
      r = interactive::learnFromCaseFolder(model, selection, a->options);
    }
    model::saveModel(model, a->out);
    // Only once the model that holds them exists: a failed run leaves the cases new.
    interactive::recordLearned(a->cases, r.learned, model);

    std::ostringstream out;
    out << std::fixed << std::setprecision(3);
    out << "learned " << r.learned.size() << " case(s) (" << joined(r.learned) << "), replayed " << r.replayed.size()
        << (r.replayed.empty() ? "" : " (" + joined(r.replayed) + ")") << ", final loss " << r.finalLoss << ", "
        << formatDuration(r.seconds) << "\n";
    for (const auto& d : r.dice) out << "  " << d.name << ": Dice " << d.before << " before, " << d.after << " after\n";
    out << "wrote " << a->out << " (site generation " << model.generation << ", parent " << *model.parentGeneration
        << ", weights sha256 " << model.weightsSha256().substr(0, 16) << "…)\n";
    std::cout << out.str();
    return 0;
  };
}

}  // namespace tessera::cli
