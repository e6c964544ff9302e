#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "Commands.h"
#include "ProgressReporter.h"
#include "tessera/simulation/Simulation.h"

namespace tessera::cli {

namespace {

std::string defaultDataDir() {
  if (const char* env = std::getenv("TESSERA_MRICRON_DIR")) return env;
  return "/usr/share/mricron/templates";
}

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct SimulateArgs {
  std::string task = "brain";
  bool coverageSkew = true, labelSkew = true, scannerShift = true, centralized = true;
  double spacing = 0;
  int testSlices = 10;
  int sites = 3;
  int generations = 5;
  std::string strategies = "fedavg";
  std::string out = "tessera-simulation";
  uint64_t seed = 1;
  std::string dataDir = defaultDataDir();
  int epochs = 6;
  double learningRate = 5e-4;
  int slicesPerRound = 3;
  int baseFeatures = 16;
  int rootEpochs = 15;
  int rootSlices = 12;
  std::optional<double> dpEpsilon;
  double serverStep = 1.0;
  bool secureAggregation = false;
  int malicious = 0;
  std::string attack = "sign-flip";
  int unlabeledSites = 0;
  double unlabeledConfidence = 0.9;
  CLI::Option* strategyOption = nullptr;
};

void addSimulateOptions(CLI::App& app, SimulateArgs& a) {
  app.add_option("--task", a.task,
                 "brain: a brain mask through three scanners; lobes: the six AAL lobes of Colin27 with sites that "
                 "differ in coverage, labels and scanner")
      ->capture_default_str()
      ->check(CLI::IsMember({"brain", "lobes"}));
  app.add_flag("--coverage-skew,!--no-coverage-skew", a.coverageSkew,
               "lobes: each site's scans cover its own slab of the head (top, middle, cerebellum)")
      ->capture_default_str();
  app.add_flag("--label-skew,!--no-label-skew", a.labelSkew,
               "lobes: each site draws only some lobes (trained with the marginal loss)")
      ->capture_default_str();
  app.add_flag("--scanner-shift,!--no-scanner-shift", a.scannerShift, "lobes: each site has its own scanner")
      ->capture_default_str();
  app.add_flag("--centralized,!--no-centralized", a.centralized,
               "Also train one model on all sites' data pooled (the upper bound) on the same schedule")
      ->capture_default_str();
  app.add_option("--spacing", a.spacing, "In-plane spacing at the network in mm (0: slices about 128 voxels across)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--test-slices", a.testSlices, "Held-out slices (per site for brain; shared by all sites for lobes)")
      ->capture_default_str()
      ->check(CLI::Range(1, 80));
  app.add_option("--sites", a.sites, "Number of simulated hospitals")->capture_default_str()->check(CLI::Range(1, 32));
  app.add_option("--generations", a.generations, "Federation rounds after the root model")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  a.strategyOption = app.add_option("--strategy", a.strategies,
                 "Merge strategy, or a comma list to compare side by side: dafne, fedavg, fedbn, fedadam, fedyogi, fedprox (fedavg + prox_mu 0.01), trimmed-mean, median")
      ->capture_default_str();
  app.add_option("--out", a.out, "Folder for report.json, dice.png, the server's data and each site's state")
      ->capture_default_str();
  app.add_option("--seed", a.seed, "Random seed (data split, noise, weights, training)")->capture_default_str();
  app.add_option("--data", a.dataDir, "Folder holding ch2.nii.gz and ch2bet.nii.gz (env TESSERA_MRICRON_DIR)")
      ->capture_default_str();
  app.add_option("--epochs", a.epochs, "Local training epochs per round")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--learning-rate", a.learningRate, "Sites' fine-tuning learning rate (Adam, decaying)")
      ->capture_default_str()
      ->check(CLI::Range(1e-7, 1.0));
  app.add_option("--slices-per-round", a.slicesPerRound, "Corrected slices each site gains per round")
      ->capture_default_str()
      ->check(CLI::Range(1, 40));
  app.add_option("--root-epochs", a.rootEpochs,
                 "Epochs the operator trains generation 0 on reference-scanner slices (0: random weights)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--server-step", a.serverStep,
                 "fedavg/fedbn/fedprox: the server moves the model by this times the round's mean delta (policy "
                 "server_step; 1 = plain averaging)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 10.0));
  app.add_option("--dp-epsilon", a.dpEpsilon,
                 "Also run fedavg/fedbn under central differential privacy at this epsilon (delta 1e-5) and report "
                 "the Dice cost side by side")
      ->check(CLI::PositiveNumber);
  app.add_flag("--secure-aggregation", a.secureAggregation,
               "Also run every strategy that allows it with secure aggregation on (the server learns only each round's sum; "
               "sites push through the protocol) and report the Dice side by side");
  app.add_option("--malicious", a.malicious,
                 "Hostile sites (the last K): compares an honest fedavg run with every --strategy and a norm-bounded "
                 "fedavg under attack (with --malicious, --strategy defaults to fedavg,trimmed-mean,median)")
      ->check(CLI::Range(0, 31));
  app.add_option("--unlabeled-sites", a.unlabeledSites,
                 "The last K sites label nothing: they train semi-supervised on their round slices' images "
                 "(client train --unlabeled), and every strategy is also run without them to compare final Dice")
      ->capture_default_str()
      ->check(CLI::Range(0, 31));
  app.add_option("--unlabeled-confidence", a.unlabeledConfidence,
                 "With --unlabeled-sites: the teacher's probability a voxel needs to be pseudo-labelled (client train --confidence)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--attack", a.attack, "What hostile sites do: sign-flip, scale, noise, label-flip")
      ->capture_default_str()
      ->check(CLI::IsMember({"sign-flip", "scale", "noise", "label-flip"}));
  app.add_option("--root-slices", a.rootSlices, "Reference-scanner slices for generation 0")
      ->capture_default_str()
      ->check(CLI::Range(1, 60));
  app.add_option("--base-features", a.baseFeatures, "U-Net width (features of the first level)")
      ->capture_default_str()
      ->check(CLI::Range(4, 64));
}

int runAndPrint(const SimulateArgs& a, const char* title) {
  simulation::SimulationOptions o;
  o.task = a.task;
  o.coverageSkew = a.coverageSkew;
  o.labelSkew = a.labelSkew;
  o.scannerShift = a.scannerShift;
  o.centralized = a.centralized;
  o.inPlaneSpacing = a.spacing;
  o.testSlices = a.testSlices;
  o.sites = a.sites;
  o.generations = a.generations;
  o.strategies = splitList(a.malicious > 0 && a.strategyOption->count() == 0 ? "fedavg,trimmed-mean,median" : a.strategies);
  if (o.strategies.empty()) throw std::invalid_argument("--strategy names no strategy");
  o.out = a.out;
  o.seed = a.seed;
  o.dataDir = a.dataDir;
  o.epochsPerRound = a.epochs;
  o.learningRate = a.learningRate;
  o.slicesPerRound = a.slicesPerRound;
  o.baseFeatures = a.baseFeatures;
  o.rootEpochs = a.rootEpochs;
  o.rootSlices = a.rootSlices;
  o.dpEpsilon = a.dpEpsilon;
  o.serverStep = a.serverStep;
  o.secureAggregation = a.secureAggregation;
  o.malicious = a.malicious;
  o.attack = a.attack;
  o.unlabeledSites = a.unlabeledSites;
  o.unlabeledConfidence = a.unlabeledConfidence;
  o.say = [](const std::string& line) { std::cout << line << std::endl; };
  std::cout << title << "\n"
            << o.sites << " sites, " << o.generations << " rounds, strategies: " << a.strategies
            << "; a real server process on loopback and one process per site and round\n";
  const auto report = simulation::runSimulation(o);
  std::cout << simulation::formatReport(report);
  std::printf("\ndone in %s; report: %s, plot: %s, server data and site state under %s/\n",
              formatDuration(report.at("seconds").get<double>()).c_str(),
              report.at("report_path").get<std::string>().c_str(), report.at("plot_path").get<std::string>().c_str(),
              a.out.c_str());
  return 0;
}

}  // namespace

Action addSimulateCommand(CLI::App& app) {
  auto a = std::make_shared<SimulateArgs>();
  addSimulateOptions(app, *a);
  return [a] { return runAndPrint(*a, "Tessera simulate: a federation of hospitals on this machine"); };
}

Action addDemoCommand(CLI::App& app) {
  auto a = std::make_shared<SimulateArgs>();
  // The task where pooling matters: no site alone has seen every lobe (each scans its own slab of
  // the head, draws three of the six lobes and has its own scanner), so federation has something
  // to add. FedAvg first (the demo's bar is checked on the first strategy), Dafne's merge beside it;
  // local-only and centralized are the two reference lines. 2.5 mm in-plane keeps it to minutes.
  // Many short rounds: 6 epochs a round let sites drift apart as their data grew, and fedavg fell
  // 0.03-0.08 behind centralized by rounds 6-10; 3 epochs over 10 rounds ends 0.002 behind.
  a->task = "lobes";
  a->strategies = "fedavg,dafne";
  a->generations = 10;
  a->epochs = 3;
  a->spacing = 2.5;
  a->testSlices = 20;
  a->out = "tessera-demo";
  addSimulateOptions(app, *a);
  return [a] {
    return runAndPrint(*a,
                       "Tessera demo: three hospitals learn to segment six brain lobes together (Colin27 T1 MRI and the "
                       "AAL atlas from Debian's mricron-data); each scans its own part of the head, draws only some "
                       "lobes and has its own scanner, and they share model updates only");
  };
}

}  // namespace tessera::cli
