#include "tessera/simulation/Simulation.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include "CentralizedBaseline.h"
#include "LobeAtlas.h"
#include "SiteData.h"
#include "UnlabeledSites.h"
#include "tessera/simulation/Attacks.h"
#include "tessera/client/ApiClient.h"
#include "tessera/client/SiteState.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/federation/Merge.h"
#include "tessera/federation/MergePolicy.h"
#include "tessera/federation/RdpAccountant.h"
#include "tessera/federation/SecureAggregationPolicy.h"
#include "tessera/federation/ValidationGate.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Runtime.h"
#include "tessera/plot/LinePlot.h"
#include "tessera/server/AdminTasks.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/Registry.h"
#include "tessera/common/ChildProcess.h"

namespace tessera::simulation {

namespace fs = std::filesystem;
using nlohmann::json;
using common::ChildProcess;
using common::currentExecutable;
using common::runProcess;
using common::tailOfFile;

namespace {

// FedProx's μ for `--strategy fedprox` (Li et al. 2020 found 0.001–1 useful; small keeps the
// sites' few slices from dragging the model far without stopping them learning).
constexpr double kFedProxMu = 0.01;

double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string fixed(double v, int digits = 4) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

// Dice of `model` on every site's held-out slices; with FedBN each site evaluates the global
// model with its own normalisation statistics, as it would use it.
std::vector<double> scoreSites(const model::Model& model, const FederationData& data,
                               const std::vector<const common::WeightSet*>& localNorm) {
  std::vector<double> dice;
  for (size_t s = 0; s < data.sites.size(); ++s) {
    model::Model m = model;
    if (s < localNorm.size() && localNorm[s]) federation::keepLocalNormalization(m.weights, *localNorm[s]);
    dice.push_back(model::foregroundDice(nn::segment(m, data.sites[s].test.image), data.sites[s].test.labels, m.task));
  }
  return dice;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// Every site trains alone on the same schedule (same epochs, same slices) without federation.
json localOnlyBaseline(const SimulationOptions& o, const FederationData& data, const model::Model& root) {
  json sites = json::array();
  for (size_t s = 0; s < data.sites.size(); ++s) {
    const auto started = std::chrono::steady_clock::now();
    model::Model model = root;
    std::vector<double> perRound{scoreSites(model, data, {})[s]};
    for (int r = 0; r < o.generations; ++r) {
      std::vector<model::TrainingCase> cases(data.sites[s].rounds.begin(), data.sites[s].rounds.begin() + r + 1);
      nn::TrainOptions t;
      t.epochs = o.epochsPerRound;
      t.learningRate = o.learningRate;
      t.seed = o.seed * 7919 + static_cast<uint64_t>(s) * 131 + static_cast<uint64_t>(r);
      trainAsSite(model, data.sites[s], cases, t);
      const auto& site = data.sites[s];
      perRound.push_back(model::foregroundDice(nn::segment(model, site.test.image), site.test.labels, model.task));
    }
    if (o.say) {
      o.say("  local-only " + data.sites[s].name + ": Dice " + fixed(perRound.back()) + " after " +
            std::to_string(o.generations) + " rounds (" + fixed(secondsSince(started), 1) + " s)");
    }
    sites.push_back({{"site", data.sites[s].name}, {"dice_per_round", perRound}});
  }
  return sites;
}

struct ServerProcess {
  std::unique_ptr<ChildProcess> process;
  std::string url;
  fs::path log;
};

ServerProcess startServer(const fs::path& dir) {
  ServerProcess s;
  s.log = dir / "server.log";
  const fs::path portFile = dir / "server.port";
  fs::remove(portFile);
  s.process = std::make_unique<ChildProcess>(
      std::vector<std::string>{currentExecutable().string(), "server", "--data", (dir / "server").string(), "--listen",
                               "127.0.0.1:0", "--port-file", portFile.string()},
      s.log);
  const auto started = std::chrono::steady_clock::now();
  while (!fs::exists(portFile)) {
    if (!s.process->running()) throw std::runtime_error("the server process exited at start:" + tailOfFile(s.log, 5));
    if (secondsSince(started) > 60) throw std::runtime_error("the server did not start within 60 s:" + tailOfFile(s.log, 5));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string port;
  std::ifstream(portFile) >> port;
  s.url = "http://127.0.0.1:" + port;
  return s;
}

// Published generations and rejected candidates so far.
int candidatesSoFar(client::ApiClient& api, const std::string& task) {
  return static_cast<int>(api.generations(task).at("generations").size());
}

// One strategy's federation run: its own server data folder, server process and site homes.
class StrategyRun {
 public:
  // `dp`: the run's policy under central DP (its label is then "<strategy>+dp").
  // `malicious`: how many of the sites (the last ones) attack; `label` names the run (default:
  // the strategy, "+dp" under central DP).
  // `secure`: the policy runs secure aggregation (label "<strategy>+secagg").
  StrategyRun(const SimulationOptions& o, const std::string& strategy, const FederationData& data,
              std::optional<json> dp = std::nullopt, int malicious = 0, const std::string& label = "", bool secure = false)
      : o_(o), strategy_(strategy),
        label_(!label.empty() ? label : dp ? strategy + "+dp" : secure ? strategy + "+secagg" : strategy), dp_(std::move(dp)),
        data_(data), dir_(o.out / label_), n_(static_cast<int>(data.sites.size())), malicious_(malicious), secure_(secure) {}

  json run(const model::Model& root, const fs::path& validationCases) {
    const auto started = std::chrono::steady_clock::now();
    setUp(root, validationCases);
    evaluate(0, root.generation, 0);
    for (int r = 0; r < o_.generations; ++r) {
      const auto roundStart = std::chrono::steady_clock::now();
      const int64_t generation = runRound(r);
      evaluate(r + 1, generation, secondsSince(roundStart));
    }
    const json stats = api_->stats();
    const json lineage = api_->generations(o_.task);
    server_.process->signal(SIGTERM);
    server_.process->wait();
    json out{{"strategy", label_}, {"rounds", rounds_}, {"seconds", secondsSince(started)},
             {"server_data", (dir_ / "server").string()}, {"usage", stats}, {"lineage", lineage.at("generations")}};
    if (malicious_ > 0) out["attack"] = {{"attack", o_.attack}, {"malicious_sites", malicious_}};
    if (dp_) out["dp"] = *dp_;
    return out;
  }

 private:
  // Operator set-up on the server's data folder before the server runs, the server process, and
  // one client home per site.
  void setUp(const model::Model& root, const fs::path& validationCases) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string adminToken;
    std::vector<std::string> siteTokens;
    {
      server::Registry registry(dir_ / "server");
      server::BlobStore blobs(dir_ / "server");
      adminToken = registry.addSite("operator", "admin").second;
      for (const auto& site : data_.sites) siteTokens.push_back(registry.addSite(site.name, "site").second);
      // "fedprox": fedavg on the server, the proximal term on the sites (the policy hands out μ).
      server::seedModel(registry, blobs, root, strategy_ == "fedprox" ? "fedavg" : strategy_);
      server::setValidationCases(dir_ / "server", o_.task, validationCases);
      if (strategy_ != "dafne") server::updatePolicy(registry, o_.task, {{"round_size", participatingSites(data_)}, {"round_seconds", 3600}});
      if (strategy_ == "fedprox") server::updatePolicy(registry, o_.task, {{"prox_mu", kFedProxMu}});
      if (o_.serverStep != 1.0 && (strategy_ == "fedavg" || strategy_ == "fedbn" || strategy_ == "fedprox")) {
        server::updatePolicy(registry, o_.task, {{"server_step", o_.serverStep}});
      }
      // Sites train for different times before they push: a step waits up to 10 minutes for them.
      if (secure_) server::updatePolicy(registry, o_.task, {{"secure_aggregation", true}, {"secagg_step_seconds", 600}});
      // Against K hostile sites the trimmed mean must drop at least K values at each end (the
      // default fraction 0.2 drops none of 4).
      if (malicious_ > 0 && strategy_ == "trimmed-mean") {
        server::updatePolicy(registry, o_.task, {{"trim_fraction", std::min(0.49, (malicious_ + 0.5) / n_)}});
      }
      // Central DP clips every update to C, a tighter bound on a site's influence than the norm
      // ratio, which would refuse honest updates trained from a noised generation. The gate stays
      // on (FedBN's default turns it off): a candidate the noise has destroyed is held back, so
      // the run measures what privacy costs, not a broken model the sites could not train from.
      if (dp_) {
        server::updatePolicy(registry, o_.task, {{"dp", *dp_}, {"max_delta_norm_ratio", 1e300}, {"validation_tolerance", 0.02}});
      }
    }
    server_ = startServer(dir_);
    if (o_.say) o_.say("[" + label_ + "] server on " + server_.url + " (log " + server_.log.string() + ")");

    client::ClientConfig adminConfig;
    adminConfig.server = server_.url;
    adminConfig.token = adminToken;
    adminConfig.task = o_.task;
    api_ = std::make_unique<client::ApiClient>(adminConfig);

    for (int s = 0; s < n_; ++s) {
      const fs::path home = dir_ / "sites" / data_.sites[s].name;
      fs::create_directories(home / "cases");
      common::writeFileAtomically(home / "client.json",
                                  json{{"server", server_.url}, {"token", siteTokens[s]}, {"task", o_.task}}.dump(2) + "\n");
      homes_.push_back(home);
    }
  }

  // Every site gains its round's case, then pulls, trains and pushes as its own processes; waits
  // for the merge the round triggers and returns the newest generation.
  int64_t runRound(int r) {
    const int before = candidatesSoFar(*api_, o_.task);
    const int cores = nn::defaultThreadCount();
    const int threadsPerSite = std::max(1, cores / n_);
    const std::string exe = currentExecutable().string();
    std::vector<std::thread> workers;
    std::vector<std::string> failures(n_);
    for (int s = 0; s < n_; ++s) {
      if (data_.sites[s].leftOut) continue;  // the run without the unlabelled sites
      char name[32];
      std::snprintf(name, sizeof name, "round-%02d", r + 1);
      const bool hostile = s >= n_ - malicious_;
      const Attack attack = attackFromString(o_.attack);
      writeRound(homes_[s], name, data_.sites[s],
                 hostile && attack == Attack::LabelFlip ? withFlippedLabels(data_.sites[s].rounds[r])
                                                        : data_.sites[s].rounds[r]);
      workers.emplace_back([&, s, hostile, attack] {
        const fs::path log = homes_[s] / "site.log";
        auto command = [&](std::vector<std::string> args) {
          std::vector<std::string> full{exe, "client"};
          full.insert(full.end(), args.begin(), args.end());
          full.insert(full.end(), {"--home", homes_[s].string()});
          return full;
        };
        try {
          runProcess(command({"pull"}), log);
          const auto trainingData = trainingDataArguments(homes_[s], data_.sites[s], o_.unlabeledConfidence);
          runProcess(command({"train", trainingData[0], trainingData[1], "--epochs",
                              std::to_string(o_.epochsPerRound), "--seed",
                              std::to_string(o_.seed * 7919 + static_cast<uint64_t>(s) * 131 + static_cast<uint64_t>(r)),
                              "--threads", std::to_string(threadsPerSite), "--learning-rate",
                              std::to_string(o_.learningRate)}),
                     log);
          if (hostile) poisonTrainedModel(homes_[s], o_.task, attack, o_.seed * 104729 + static_cast<uint64_t>(s * 1000 + r));
          runProcess(command({"push"}), log);
        } catch (const std::exception& e) {
          failures[s] = data_.sites[s].name + ": " + e.what();
        }
      });
    }
    for (auto& w : workers) w.join();
    for (const auto& f : failures) {
      if (!f.empty()) throw std::runtime_error(f);
    }
    // Dafne publishes one generation per upload; the round-based strategies one per round.
    const int expected = before + (strategy_ == "dafne" ? participatingSites(data_) : 1);
    const auto waitStart = std::chrono::steady_clock::now();
    while (candidatesSoFar(*api_, o_.task) < expected) {
      if (!server_.process->running()) throw std::runtime_error("the server died:" + tailOfFile(server_.log, 8));
      if (secondsSince(waitStart) > 300) throw std::runtime_error("no merge within 300 s:" + tailOfFile(server_.log, 8));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return api_->latestGeneration(o_.task).at("generation").get<int64_t>();
  }

  // Scores the generation on every site's held-out slices (under FedBN with each site's own
  // normalisation statistics) and records the round.
  void evaluate(int round, int64_t generation, double seconds) {
    const model::Model global =
        model::decodeModel(api_->downloadModel(o_.task, generation), "generation " + std::to_string(generation));
    std::vector<model::Model> locals;
    std::vector<const common::WeightSet*> localNorm(n_, nullptr);
    if (strategy_ == "fedbn" && round > 0) {
      for (int s = 0; s < n_; ++s) {
        if (auto trained = client::SiteState(homes_[s], o_.task).previousTrained()) locals.push_back(std::move(*trained));
        else locals.push_back(global);
      }
      for (int s = 0; s < n_; ++s) localNorm[s] = &locals[s].weights;
    }
    const auto dice = scoreSites(global, data_, localNorm);
    rounds_.push_back({{"round", round}, {"generation", generation}, {"dice", dice}, {"mean", mean(dice)},
                       {"seconds", seconds}});
    if (o_.say) {
      std::string line = "[" + label_ + "] round " + std::to_string(round) + " → generation " +
                         std::to_string(generation) + ": mean Dice " + fixed(mean(dice)) + " (";
      for (int s = 0; s < n_; ++s) line += (s ? ", " : "") + data_.sites[s].name + " " + fixed(dice[s]);
      o_.say(line + ")");
    }
  }

  const SimulationOptions& o_;
  std::string strategy_, label_;
  std::optional<json> dp_;
  const FederationData& data_;
  fs::path dir_;
  int n_;
  int malicious_ = 0;
  bool secure_ = false;
  ServerProcess server_;
  std::unique_ptr<client::ApiClient> api_;
  std::vector<fs::path> homes_;
  json rounds_ = json::array();
};

// Central DP for a run of `o.generations` rounds in which every site takes part every round
// (q = 1): the noise multiplier that spends exactly the target ε, and as clip C the median norm of
// the updates of the same strategy's non-private run. (Picking C from the sites' real norms is
// itself a small leak a deployment would pay for with adaptive clipping; for a study it shows the
// cost of the noise at a sensible C.)
// The median norm of the updates a run's server received (1 when there were none).
double medianUpdateNorm(const json& run, const std::string& task) {
  server::Registry registry(run.at("server_data").get<std::string>());
  std::vector<double> norms;
  if (const auto m = registry.model(task))
    for (const auto& u : registry.updates(m->id, ""))
      if (u.deltaNorm) norms.push_back(*u.deltaNorm);
  if (norms.empty()) return 1.0;
  std::nth_element(norms.begin(), norms.begin() + norms.size() / 2, norms.end());
  return std::max(norms[norms.size() / 2], 1e-6);
}

json centralDpPolicy(const SimulationOptions& o, const json& plainRun) {
  const double clip = medianUpdateNorm(plainRun, o.task);
  const double z = federation::noiseMultiplierFor(*o.dpEpsilon, o.dpDelta, 1.0, static_cast<uint64_t>(o.generations));
  return {{"mode", "central"}, {"clip", clip}, {"noise_multiplier", z}, {"delta", o.dpDelta},
          {"epsilon_max", *o.dpEpsilon * (1 + 1e-9)}};
}

// Hostile sites: an honest fedavg run for reference, then every strategy with the last
// `o.malicious` sites attacking, then fedavg with each delta clipped to the honest run's median
// update norm (central mode without noise: equal weights, bounded influence). Returns the runs
// and fills report["attack"] with the final mean Dice of each against the honest run.
json attackRuns(const SimulationOptions& o, const FederationData& data, const model::Model& root,
                const fs::path& validationCases, json& report) {
  json runs = json::array();
  if (o.say) o.say("[honest-fedavg] reference run: every site honest");
  runs.push_back(StrategyRun(o, "fedavg", data, std::nullopt, 0, "honest-fedavg").run(root, validationCases));
  const double honest = runs.back().at("rounds").back().at("mean");
  const double clip = medianUpdateNorm(runs.back(), o.task);
  for (const auto& strategy : o.strategies) {
    runs.push_back(StrategyRun(o, strategy, data, std::nullopt, o.malicious).run(root, validationCases));
  }
  const json bound{{"mode", "central"}, {"clip", clip}, {"noise_multiplier", 0.0}, {"delta", o.dpDelta}, {"epsilon_max", 0.0}};
  if (o.say) o.say("[fedavg+normbound] every delta clipped to " + fixed(clip) + ", the honest run's median update norm");
  runs.push_back(StrategyRun(o, "fedavg", data, bound, o.malicious, "fedavg+normbound").run(root, validationCases));
  json table = json::array();
  for (size_t k = 1; k < runs.size(); ++k) {
    const double dice = runs[k].at("rounds").back().at("mean");
    table.push_back({{"strategy", runs[k].at("strategy")}, {"dice", dice}, {"difference", dice - honest}});
  }
  report["attack"] = {{"attack", o.attack}, {"malicious_sites", o.malicious}, {"sites", o.sites},
                      {"honest_dice", honest}, {"norm_bound", clip}, {"runs", table}};
  return runs;
}

void writePlot(const json& report, const fs::path& path) {
  std::vector<plot::Series> series;
  for (const auto& run : report.at("runs")) {
    plot::Series s;
    s.label = run.at("strategy").get<std::string>() + " mean";
    for (const auto& r : run.at("rounds")) {
      s.x.push_back(r.at("round").get<double>());
      s.y.push_back(r.at("mean").get<double>());
    }
    series.push_back(s);
  }
  if (report.at("runs").size() == 1) {
    const auto& run = report.at("runs")[0];
    const auto& sites = report.at("sites");
    for (size_t i = 0; i < sites.size(); ++i) {
      plot::Series s;
      s.label = sites[i].at("name").get<std::string>();
      for (const auto& r : run.at("rounds")) {
        s.x.push_back(r.at("round").get<double>());
        s.y.push_back(r.at("dice")[i].get<double>());
      }
      series.push_back(s);
    }
  }
  // The two reference lines, dashed: each site alone, and all data pooled (the upper bound).
  for (const char* key : {"local_only", "centralized"}) {
    if (!report.contains(key)) continue;
    plot::Series line;
    line.label = std::string(key) == "local_only" ? "local-only mean" : "centralized mean";
    line.dashed = true;
    const auto& baseline = report.at(key);
    const size_t rounds = baseline[0].at("dice_per_round").size();
    for (size_t r = 0; r < rounds; ++r) {
      double sum = 0;
      for (const auto& site : baseline) sum += site.at("dice_per_round")[r].get<double>();
      line.x.push_back(static_cast<double>(r));
      line.y.push_back(sum / static_cast<double>(baseline.size()));
    }
    series.push_back(line);
  }
  plot::LinePlotOptions options;
  options.title = "Dice on held-out slices per federation round";
  options.xLabel = "round (generation 0 = root model)";
  options.yLabel = "Dice";
  plot::writeLinePlot(series, options, path);  // PNG or SVG, from the extension
}

}  // namespace

json runSimulation(const SimulationOptions& o) {
  if (o.sites < 1 || o.sites > 32) throw std::invalid_argument("--sites must be 1..32");
  if (o.generations < 1 || o.generations > 100) throw std::invalid_argument("--generations must be 1..100");
  for (const auto& s : o.strategies)
    if (s != "fedprox") federation::strategyFromString(s);
  if (o.malicious < 0 || o.malicious >= o.sites) throw std::invalid_argument("--malicious must be 0..sites-1");
  if (o.unlabeledSites < 0 || o.unlabeledSites >= o.sites) throw std::invalid_argument("--unlabeled-sites must be 0..sites-1");
  attackFromString(o.attack);
  if (o.task != "brain" && o.task != "lobes") throw std::invalid_argument("--task must be brain or lobes, not " + o.task);
  const bool lobes = o.task == "lobes";
  const auto started = std::chrono::steady_clock::now();
  fs::create_directories(o.out);
  nn::setThreadCount(0);

  const SiteSkew skew{o.coverageSkew, o.labelSkew, o.scannerShift};
  const FederationData data = markUnlabeledSites(
      lobes ? prepareLobesData(o.dataDir, o.sites, o.generations, o.slicesPerRound, o.testSlices, o.validationSlices,
                               o.rootSlices, skew, o.seed)
            : prepareFederationData(o.dataDir, o.sites, o.generations, o.slicesPerRound, o.testSlices,
                                    o.validationSlices, o.rootSlices, o.seed),
      o.unlabeledSites);
  const fs::path validationCases = o.out / "data" / "server-validation";
  fs::remove_all(validationCases);
  model::writeCase(validationCases, "validation", data.validation);
  json sites = json::array();
  for (const auto& s : data.sites) {
    sites.push_back({{"name", s.name}, {"scanner", s.shift.name}, {"shift", s.shift.describe()},
                     {"train_slices", s.trainSlices}, {"test_slices", s.test.image.geometry.size[2]},
                     {"slices_per_round", o.slicesPerRound}});
    if (s.unlabeled) sites.back()["unlabeled"] = true;
    std::string annotated = "every label";
    if (lobes) {
      sites.back()["coverage"] = s.coverage;
      json drawn = json::array();
      if (!s.annotatedLabels.empty()) annotated.clear();
      for (int l : s.annotatedLabels) {
        drawn.push_back(lobeNames().at(l));
        annotated += (annotated.empty() ? "" : ", ") + lobeNames().at(l);
      }
      sites.back()["annotated"] = s.annotatedLabels.empty() ? json("all") : drawn;
    }
    if (o.say) {
      o.say("  " + s.name + ": " + s.shift.name + " — " + s.shift.describe() +
            (lobes ? "; covers " + s.coverage + "; draws " + annotated + "; " + std::to_string(s.trainSlices) +
                         (s.unlabeled ? " slices" : " labelled slices")
                   : std::string()) +
            (s.unlabeled ? " — UNLABELLED: gets the images only, trains semi-supervised" : ""));
    }
  }

  model::TaskInfo task;
  task.name = o.task;
  task.modality = "MR";
  task.anatomy = "BRAIN";
  task.disease = "none";
  task.labels = lobes ? lobeNames() : std::map<int, std::string>{{0, "background"}, {1, "brain"}};
  model::Model root = nn::defaultModelFor({data.validation}, task, o.seed);
  root.spec.baseFeatures = o.baseFeatures;
  if (o.inPlaneSpacing > 0) {
    for (int a = 0; a < 3; ++a)
      if (a != root.spec.axis) root.preprocessing.targetSpacing[a] = o.inPlaneSpacing;
  }
  root = model::initialModel(root.spec, root.preprocessing, root.task, o.seed);
  if (o.rootEpochs > 0) {
    nn::TrainOptions t;
    t.epochs = o.rootEpochs;
    t.seed = o.seed;
    nn::trainModel(root, {data.root}, t);
  }
  if (o.say) {
    o.say("root model (generation 0): 2D U-Net, " + std::to_string(common::parameterCount(root.weights)) + " parameters, " +
          (o.rootEpochs > 0 ? "trained " + std::to_string(o.rootEpochs) + " epochs on " + std::to_string(o.rootSlices) +
                                  " reference-scanner slices"
                            : std::string("random weights")) +
          "; " + std::to_string(o.epochsPerRound) + " local epochs per round");
    o.say("local-only baseline: every site trains alone on the same schedule");
  }
  json report{{"task", o.task},
              {"seed", o.seed},
              {"sites", sites},
              {"generations", o.generations},
              {"epochs_per_round", o.epochsPerRound},
              {"learning_rate", o.learningRate},
              {"parameters", common::parameterCount(root.weights)},
              {"validation_slices", o.validationSlices},
              {"root", {{"slices", o.rootSlices}, {"epochs", o.rootEpochs}}}};
  if (lobes) {
    json labels = json::object();
    for (const auto& [value, name] : lobeNames()) labels[std::to_string(value)] = name;
    report["labels"] = labels;
    report["site_differences"] = {{"coverage_skew", o.coverageSkew}, {"label_skew", o.labelSkew},
                                  {"scanner_shift", o.scannerShift}, {"labelled_slices_per_site", o.slicesPerRound * o.generations},
                                  {"test", "the same " + std::to_string(o.testSlices) +
                                               " held-out slices over the whole brain for every site, through its own scanner"}};
    if (o.say) {
      o.say(std::string("site differences: coverage skew ") + (o.coverageSkew ? "on" : "off") + ", label skew " +
            (o.labelSkew ? "on (marginal loss)" : "off") + ", scanner shift " + (o.scannerShift ? "on" : "off") + ", " +
            std::to_string(o.slicesPerRound * o.generations) + " labelled slices per site");
    }
  }
  report["local_only"] = localOnlyBaseline(o, data, root);
  if (o.centralized) report["centralized"] = centralizedBaseline(o, data, root);
  json runs = json::array();
  json privacyCost = json::array();
  json unlabeledComparison;  // simulate --unlabeled-sites
  if (o.malicious > 0) runs = attackRuns(o, data, root, validationCases, report);
  json secureCost = json::array();
  for (const auto& strategy : o.malicious > 0 ? std::vector<std::string>{} : o.strategies) {
    runs.push_back(StrategyRun(o, strategy, data).run(root, validationCases));
    if (o.unlabeledSites > 0) {
      // Kept out of "runs": the comparison table, not every per-strategy table, shows it.
      const json without = StrategyRun(o, strategy, withoutUnlabeledSites(data), std::nullopt, 0,
                                       strategy + "-without-unlabeled").run(root, validationCases);
      addUnlabeledComparison(unlabeledComparison, data, runs.back(), without);
    }
    if (o.secureAggregation) {
      const auto server = federation::strategyFromString(strategy == "fedprox" ? "fedavg" : strategy);
      if (!federation::runsUnderSecureAggregation(server)) {
        if (o.say) o.say("[" + strategy + "] no secure-aggregation run: " + strategy + " needs single updates");
      } else {
        const double plain = runs.back().at("rounds").back().at("mean");
        const double plainSeconds = runs.back().at("seconds");
        runs.push_back(StrategyRun(o, strategy, data, std::nullopt, 0, "", true).run(root, validationCases));
        const double secure = runs.back().at("rounds").back().at("mean");
        secureCost.push_back({{"strategy", strategy}, {"dice", plain}, {"dice_secagg", secure}, {"difference", secure - plain},
                              {"seconds", plainSeconds}, {"seconds_secagg", runs.back().at("seconds")}});
      }
    }
    if (!o.dpEpsilon) continue;
    if (strategy != "fedavg" && strategy != "fedbn") {
      if (o.say) o.say("[" + strategy + "] no DP run: central DP merges with fedavg or fedbn only");
      continue;
    }
    const json dp = centralDpPolicy(o, runs.back());
    if (o.say) {
      o.say("[" + strategy + "+dp] central DP for epsilon " + fixed(*o.dpEpsilon) + " at delta " + std::to_string(o.dpDelta) +
            " over " + std::to_string(o.generations) + " rounds: noise multiplier " + fixed(dp["noise_multiplier"]) +
            ", clip " + std::to_string(dp["clip"].get<double>()) + " (median update norm of the " + strategy + " run)");
    }
    runs.push_back(StrategyRun(o, strategy, data, dp).run(root, validationCases));
    const double plain = runs[runs.size() - 2].at("rounds").back().at("mean");
    const double dpMean = runs.back().at("rounds").back().at("mean");
    privacyCost.push_back({{"strategy", strategy}, {"epsilon", *o.dpEpsilon}, {"delta", o.dpDelta},
                           {"noise_multiplier", dp["noise_multiplier"]}, {"clip", dp["clip"]},
                           {"dice", plain}, {"dice_dp", dpMean}, {"dice_cost", plain - dpMean}});
  }
  report["runs"] = runs;
  report["three_lines"] = threeLines(report);
  if (o.dpEpsilon) report["privacy_cost"] = privacyCost;
  if (!unlabeledComparison.is_null()) report["unlabeled_sites"] = unlabeledComparison;
  if (o.secureAggregation) report["secure_aggregation"] = secureCost;
  report["seconds"] = secondsSince(started);
  common::writeFileAtomically(o.out / "report.json", report.dump(2) + "\n");
  writePlot(report, o.out / "dice.png");
  writePlot(report, o.out / "dice.svg");
  report["report_path"] = (o.out / "report.json").string();
  report["plot_path"] = (o.out / "dice.png").string();
  return report;
}

std::string formatReport(const json& report) {
  std::string out;
  const auto& sites = report.at("sites");
  const auto& baseline = report.at("local_only");
  auto pad = [](std::string s, size_t width) {
    if (s.size() < width) s.insert(0, width - s.size(), ' ');
    return s;
  };
  for (const auto& run : report.at("runs")) {
    const std::string strategy = run.at("strategy");
    out += "\nstrategy " + strategy + ": Dice of the global model on each site's held-out slices\n";
    out += pad("round", 6) + pad("gen", 5);
    for (const auto& s : sites) out += pad(s.at("name"), 9);
    out += pad("mean", 9) + "\n";
    for (const auto& r : run.at("rounds")) {
      out += pad(std::to_string(r.at("round").get<int>()), 6) + pad(std::to_string(r.at("generation").get<int64_t>()), 5);
      for (const auto& d : r.at("dice")) out += pad(fixed(d.get<double>()), 9);
      out += pad(fixed(r.at("mean").get<double>()), 9) + "\n";
    }
    const auto& first = run.at("rounds").front();
    const auto& last = run.at("rounds").back();
    out += "mean Dice " + fixed(first.at("mean")) + " → " + fixed(last.at("mean")) + " (" +
           (last.at("mean").get<double>() > first.at("mean").get<double>() ? "rises" : "does NOT rise") + ")\n";
    out += pad("site", 8) + pad("federated", 11) + pad("local-only", 12) + pad("difference", 12) + "\n";
    for (size_t i = 0; i < sites.size(); ++i) {
      const double fed = last.at("dice")[i];
      const double local = baseline[i].at("dice_per_round").back();
      out += pad(sites[i].at("name"), 8) + pad(fixed(fed), 11) + pad(fixed(local), 12) +
             pad((fed >= local ? "+" : "") + fixed(fed - local), 12) + (fed >= local ? "" : "  (federated below local)") + "\n";
    }
  }
  const auto& runs = report.at("runs");
  if (runs.size() >= 2) {
    out += "\nside by side: final Dice per site\n" + pad("site", 8);
    for (const auto& run : runs) out += pad(run.at("strategy"), 14);
    out += pad("winner", 14) + pad("by", 9) + "\n";
    auto row = [&](const std::string& name, const std::vector<double>& values) {
      out += pad(name, 8);
      size_t best = 0;
      for (size_t k = 0; k < values.size(); ++k) {
        out += pad(fixed(values[k]), 14);
        if (values[k] > values[best]) best = k;
      }
      double second = -1;
      for (size_t k = 0; k < values.size(); ++k) {
        if (k != best) second = std::max(second, values[k]);
      }
      out += pad(runs[best].at("strategy"), 14) + pad(fixed(values[best] - second), 9) + "\n";
    };
    for (size_t i = 0; i < sites.size(); ++i) {
      std::vector<double> v;
      for (const auto& run : runs) v.push_back(run.at("rounds").back().at("dice")[i]);
      row(sites[i].at("name"), v);
    }
    std::vector<double> means;
    for (const auto& run : runs) means.push_back(run.at("rounds").back().at("mean"));
    row("mean", means);
  }
  if (report.contains("three_lines")) out += formatThreeLines(report.at("three_lines"));
  if (report.contains("unlabeled_sites")) out += formatUnlabeledComparison(report.at("unlabeled_sites"));
  if (report.contains("attack")) {
    const auto& a = report.at("attack");
    out += "\nunder attack: " + std::to_string(a.at("malicious_sites").get<int>()) + " of " +
           std::to_string(a.at("sites").get<int>()) + " sites run " + a.at("attack").get<std::string>() +
           " in every round; final mean Dice against the honest fedavg run (" + fixed(a.at("honest_dice")) + ")\n" +
           pad("strategy", 18) + pad("Dice", 9) + pad("vs honest", 11) + "\n";
    for (const auto& r : a.at("runs")) {
      const double d = r.at("difference");
      out += pad(r.at("strategy"), 18) + pad(fixed(r.at("dice")), 9) + pad((d >= 0 ? "+" : "") + fixed(d), 11) +
             (d >= -0.01 ? "  (within 1 Dice point)" : "") + "\n";
    }
  }
  if (report.contains("privacy_cost")) {
    out += "\ncost of differential privacy (central DP, q = 1, every site every round): final mean Dice\n" +
           pad("strategy", 10) + pad("epsilon", 9) + pad("sigma", 8) + pad("clip", 10) + pad("plain", 9) + pad("DP", 9) +
           pad("cost", 9) + "\n";
    for (const auto& c : report.at("privacy_cost")) {
      char clip[32];
      std::snprintf(clip, sizeof clip, "%.4g", c.at("clip").get<double>());
      out += pad(c.at("strategy"), 10) + pad(fixed(c.at("epsilon")), 9) + pad(fixed(c.at("noise_multiplier")), 8) +
             pad(clip, 10) + pad(fixed(c.at("dice")), 9) + pad(fixed(c.at("dice_dp")), 9) + pad(fixed(c.at("dice_cost")), 9) + "\n";
    }
  }
  if (report.contains("secure_aggregation")) {
    out += "\nsecure aggregation (the server sees only each round's sum): final mean Dice and run time\n" + pad("strategy", 10) +
           pad("plain", 9) + pad("secagg", 9) + pad("diff", 10) + pad("s plain", 9) + pad("s secagg", 10) + "\n";
    for (const auto& c : report.at("secure_aggregation")) {
      const double d = c.at("difference");
      out += pad(c.at("strategy"), 10) + pad(fixed(c.at("dice")), 9) + pad(fixed(c.at("dice_secagg")), 9) +
             pad((d >= 0 ? "+" : "") + fixed(d), 10) + pad(std::to_string(static_cast<int>(c.at("seconds").get<double>())), 9) +
             pad(std::to_string(static_cast<int>(c.at("seconds_secagg").get<double>())), 10) + "\n";
    }
  }
  return out;
}

}  // namespace tessera::simulation
