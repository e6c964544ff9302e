// The `tessera` command: one binary for every role (site, server, researcher).

#include <iostream>
#include <map>

#include "Commands.h"
#include "tessera/common/Error.h"

int main(int argc, char** argv) {
  CLI::App app{"Tessera: federated, interactive medical image segmentation"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tessera 0.1.0");
  std::map<CLI::App*, tessera::cli::Action> actions;
  auto add = [&](const char* name, const char* description, auto addCommand) {
    auto* sub = app.add_subcommand(name, description);
    actions[sub] = addCommand(*sub);
  };
  add("info", "Print an image's size, spacing, origin, direction and value range",
      tessera::cli::addInfoCommand);
  add("train", "Train a segmentation model (or fine-tune one with --init)", tessera::cli::addTrainCommand);
  add("predict", "Segment an image with a model; the label map keeps the image's geometry",
      tessera::cli::addPredictCommand);
  add("evaluate", "Compare a label map with a reference: Dice, Jaccard, HD95, volumes",
      tessera::cli::addEvaluateCommand);
  add("server", "Run the federation server (or, with 'admin', manage its sites, models and policies)",
      tessera::cli::addServerCommand);
  add("learn", "Continual learning at the site: fine-tune on newly accepted cases with a replay buffer",
      tessera::cli::addLearnCommand);
  add("propagate", "Proxy 3D mask from a few drawn slices: register neighbouring slices, carry the contours through",
      tessera::cli::addPropagateCommand);
  add("interact", "Correct a segmentation: start, click, scribble, propagate, suggest, accept, undo (a session in a directory)",
      tessera::cli::addInteractCommand);
  add("client", "Site side: pull the latest generation, train on corrected cases, push the update, status",
      tessera::cli::addClientCommand);
  add("simulate", "Run a whole federation (server + site processes) on this machine and compare strategies",
      tessera::cli::addSimulateCommand);
  add("privacy", "Plan differential privacy: epsilon of a noise/sampling/rounds plan, or the noise for a target epsilon",
      tessera::cli::addPrivacyCommand);
  add("model", "Convert a model to a DICOM object for a PACS (to-dicom) and back (from-dicom)",
      tessera::cli::addModelCommand);
  add("pacs", "Models in a PACS: echo, push (C-STORE), find-models (C-FIND), pull-model (C-GET)",
      tessera::cli::addPacsCommand);
  add("bench", "Benchmarks on your own cases: 'interactive' runs the simulated-user protocol (NoC, effort, forgetting)",
      tessera::cli::addBenchCommand);
  add("demo", "Three simulated hospitals federate six-lobe brain segmentation on Colin27, each seeing only part of the head (simulate --task lobes with the demo's settings)",
      tessera::cli::addDemoCommand);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, action] : actions) {
      if (sub->parsed()) return action();
    }
  } catch (const tessera::Error& e) {
    std::cerr << "tessera: error: " << e.what() << "\n";
    return e.exitStatus();
  } catch (const std::exception& e) {
    // Not one of ours: a bug or a library's own failure.
    std::cerr << "tessera: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
