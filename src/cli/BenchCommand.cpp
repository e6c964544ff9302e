// `tessera bench interactive`: the interactive-correction protocol (InteractiveBench.h) on the
// user's own cases, with the figures as text, JSON and a Dice-against-clicks plot.

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>
#include <unistd.h>

#include "Commands.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/interactive/InteractiveBench.h"
#include "tessera/nn/Runtime.h"
#include "tessera/plot/LinePlot.h"

namespace tessera::cli {

namespace {

namespace fs = std::filesystem;

struct InteractiveArgs {
  std::string model, json, plot, work;
  std::vector<std::string> images, labels;
  interactive::InteractiveBenchOptions options;
  int threads = 0;
  bool noForgetting = false, curveEnds = false, keepWork = false;
  ImageReadArgs read;
};

// "ch2-scannerB.nii.gz" → "ch2-scannerB"; a name given twice gets "-2", "-3", … appended.
std::vector<std::string> caseNames(const std::vector<std::string>& images) {
  std::vector<std::string> names;
  std::set<std::string> taken;
  for (const auto& image : images) {
    std::string stem = fs::path(image).filename().string();
    for (const char* ext : {".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr", ".hdr", ".img"}) {
      const std::string e = ext;
      if (stem.size() > e.size() && stem.compare(stem.size() - e.size(), e.size(), e) == 0) {
        stem.resize(stem.size() - e.size());
        break;
      }
    }
    std::string name = stem;
    for (int n = 2; !taken.insert(name).second; ++n) name = stem + "-" + std::to_string(n);
    names.push_back(name);
  }
  return names;
}

// Dice against clicks: the held-out cases' mean after each learning stage (the learning curve),
// the sequence's first case, and the target.
void writePlot(const nlohmann::json& report, const std::string& path) {
  std::vector<plot::Series> series;
  auto curve = [](const std::string& label, const nlohmann::json& dice, bool dashed) {
    plot::Series s;
    s.label = label;
    s.dashed = dashed;
    for (size_t i = 0; i < dice.size(); ++i) {
      s.x.push_back(static_cast<double>(i));
      s.y.push_back(dice[i].get<double>());
    }
    return s;
  };
  size_t longest = 1;
  for (const auto& stage : report.at("learning_curve")) {
    const auto& dice = stage.at("mean").at("dice_per_click");
    longest = std::max(longest, dice.size());
    series.push_back(curve("held out, after learning " + std::to_string(stage.at("learned").get<int>()), dice, false));
  }
  const auto& first = report.at("sequence").at("cases").at(0);
  series.push_back(curve("first case, before learning", first.at("dice_per_click"), true));
  const double target = report.at("protocol").at("target").get<double>();
  series.push_back({"target Dice", {0.0, static_cast<double>(longest - 1)}, {target, target}, true});
  plot::LinePlotOptions options;
  options.title = "Interactive correction: Dice against clicks";
  options.xLabel = "clicks";
  options.yLabel = "Dice";
  options.yMax = 1.0;  // the lower end follows the data: the curves differ by hundredths
  options.width = 1000;
  plot::writeLinePlot(series, options, path);
}

int runInteractive(InteractiveArgs& a) {
  // Arguments first, before anything is read or computed.
  if (a.images.size() != a.labels.size()) {
    throw Error(ErrorCode::BadRequest, "--images gives " + std::to_string(a.images.size()) + " file(s) but --labels " +
                                           std::to_string(a.labels.size()) + "; give one label map per image, in the same order");
  }
  if (!a.plot.empty()) {
    try {
      plot::imageFormatFor(a.plot);
    } catch (const plot::PlotError& e) {
      throw Error(ErrorCode::BadRequest, "--plot " + a.plot + ": " + e.what());
    }
  }
  interactive::checkBenchOptions(a.images.size(), a.options);
  const auto names = caseNames(a.images);
  nn::setThreadCount(a.threads);

  std::vector<interactive::BenchCase> cases;
  for (size_t i = 0; i < a.images.size(); ++i) {
    interactive::BenchCase c;
    c.name = names[i];
    c.image = image::readImage(a.images[i], a.read.options());
    c.truth = image::readImage(a.labels[i], a.read.options());
    if (!c.image.geometry.sameGrid(c.truth.geometry)) {
      throw Error(ErrorCode::BadRequest, a.labels[i] + ": on another grid (" + c.truth.geometry.describe() + ") than " +
                                             a.images[i] + " (" + c.image.geometry.describe() + ")");
    }
    cases.push_back(std::move(c));
  }

  const bool ownWork = a.work.empty();
  fs::path work = a.work;
  if (ownWork) work = fs::temp_directory_path() / ("tessera-bench-interactive-" + std::to_string(::getpid()));
  a.options.workDir = work;
  a.options.forgetting = !a.noForgetting;
  a.options.curveEveryStep = !a.curveEnds;
  a.options.say = [](const std::string& line) { std::cerr << line << std::endl; };
  nlohmann::json report;
  try {
    report = interactive::runInteractiveBench(a.model, cases, a.options);
  } catch (...) {
    if (ownWork && !a.keepWork) fs::remove_all(work);
    throw;
  }
  if (ownWork && !a.keepWork) fs::remove_all(work);

  if (!a.json.empty()) common::writeFileAtomically(a.json, report.dump(2) + "\n");
  if (!a.plot.empty()) writePlot(report, a.plot);
  std::cout << interactive::formatInteractiveBench(report);
  if (!a.json.empty()) std::cout << "wrote " << a.json << "\n";
  if (!a.plot.empty()) std::cout << "wrote " << a.plot << "\n";
  return 0;
}

void addInteractive(CLI::App& bench, const std::shared_ptr<InteractiveArgs>& a) {
  auto* sub = bench.add_subcommand(
      "interactive",
      "The simulated user (click at the centre of the largest error, to Dice --target or --max-clicks) on a sequence of "
      "cases the model learns from, then on held-out cases: NoC, effort against drawing every slice, proxy masks, "
      "forgetting, latencies");
  sub->add_option("--model", a->model, "A model with guidance channels (tessera train --guidance)")->required();
  sub->add_option("--images", a->images, "Cases, in the order a site would annotate them")->required()->expected(1, -1);
  sub->add_option("--labels", a->labels, "The true label map of each image, same order")->required()->expected(1, -1);
  sub->add_option("--json", a->json, "Write the full report as JSON");
  sub->add_option("--plot", a->plot, "Write Dice against clicks (.png or .svg)");
  sub->add_option("--learn-cases", a->options.learnCases,
                  "The first N cases form the sequence learned from, the rest are held out (default: all but the last)");
  sub->add_option("--max-clicks", a->options.clicks.maxClicks, "Click budget per case")->capture_default_str();
  sub->add_option("--target", a->options.clicks.targetDice, "Dice at which the simulated user stops")->capture_default_str();
  sub->add_option("--label", a->options.clicks.label, "The structure's label value")->capture_default_str()->check(CLI::Range(1, 255));
  sub->add_option("--replay", a->options.learning.replay, "Earlier accepted cases rehearsed at each learning step")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  sub->add_option("--epochs", a->options.learning.epochs, "Epochs of each learning step")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  sub->add_option("--proxy-every", a->options.proxyEvery, "Proxy masks from every k-th drawn slice, for each k")
      ->capture_default_str()
      ->delimiter(',');
  sub->add_flag("--no-forgetting", a->noForgetting, "Skip the second learning run without replay");
  sub->add_flag("--curve-ends", a->curveEnds, "Held-out cases only before and after all learning (not after every case)");
  sub->add_option("--work", a->work, "Keep sessions and learned models here (default: a temporary folder, removed)");
  sub->add_option("--seed", a->options.learning.seed, "Random seed of learning")->capture_default_str();
  sub->add_option("--threads", a->threads, "Compute threads (default: all cores)");
  addImageReadOptions(*sub, a->read);
}

}  // namespace

Action addBenchCommand(CLI::App& app) {
  app.require_subcommand(1);
  auto interactiveArgs = std::make_shared<InteractiveArgs>();
  addInteractive(app, interactiveArgs);
  CLI::App* interactive = app.get_subcommand("interactive");
  return [interactiveArgs, interactive] {
    if (interactive->parsed()) return runInteractive(*interactiveArgs);
    return 2;
  };
}

}  // namespace tessera::cli
