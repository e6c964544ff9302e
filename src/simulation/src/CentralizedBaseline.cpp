#include "CentralizedBaseline.h"

#include <chrono>
#include <cstdio>

#include "tessera/nn/Inference.h"
#include "tessera/nn/SemiSupervised.h"
#include "tessera/nn/Training.h"

namespace tessera::simulation {

nlohmann::json centralizedBaseline(const SimulationOptions& o, const FederationData& data, const model::Model& root) {
  const auto started = std::chrono::steady_clock::now();
  model::Model model = root;
  std::vector<std::vector<double>> perSite(data.sites.size());
  auto score = [&] {
    for (size_t s = 0; s < data.sites.size(); ++s) {
      const auto& site = data.sites[s];
      perSite[s].push_back(model::foregroundDice(nn::segment(model, site.test.image), site.test.labels, model.task));
    }
  };
  score();
  for (int r = 0; r < o.generations; ++r) {
    std::vector<model::TrainingCase> pooled;
    std::vector<image::Volume> unlabeled;  // unlabelled sites' images: pooled without their labels
    for (const auto& site : data.sites) {
      if (site.unlabeled) {
        for (int k = 0; k <= r; ++k) unlabeled.push_back(site.rounds[static_cast<size_t>(k)].image);
      } else {
        pooled.insert(pooled.end(), site.rounds.begin(), site.rounds.begin() + r + 1);
      }
    }
    nn::TrainOptions t;
    t.epochs = o.epochsPerRound;
    t.learningRate = o.learningRate;
    t.seed = o.seed * 7907 + static_cast<uint64_t>(r);
    if (unlabeled.empty()) {
      nn::trainModel(model, pooled, t);
    } else {
      nn::trainSemiSupervised(model, pooled, unlabeled, t);
    }
    score();
  }
  nlohmann::json sites = nlohmann::json::array();
  double mean = 0;
  for (size_t s = 0; s < data.sites.size(); ++s) {
    sites.push_back({{"site", data.sites[s].name}, {"dice_per_round", perSite[s]}});
    mean += perSite[s].back() / static_cast<double>(data.sites.size());
  }
  if (o.say) {
    char line[160];
    std::snprintf(line, sizeof line, "  centralized (all sites' data pooled): mean Dice %.4f after %d rounds (%.1f s)", mean,
                  o.generations, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    o.say(line);
  }
  return sites;
}

}  // namespace tessera::simulation

namespace tessera::simulation {

namespace {

std::vector<double> withMean(std::vector<double> v) {
  double sum = 0;
  for (double x : v) sum += x;
  v.push_back(v.empty() ? 0 : sum / static_cast<double>(v.size()));
  return v;
}

std::vector<double> finalDice(const nlohmann::json& baseline) {
  std::vector<double> out;
  for (const auto& site : baseline) out.push_back(site.at("dice_per_round").back().get<double>());
  return withMean(out);
}

}  // namespace

nlohmann::json threeLines(const nlohmann::json& report) {
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& s : report.at("sites")) sites.push_back(s.at("name"));
  sites.push_back("mean");
  nlohmann::json out{{"sites", sites}, {"local_only", finalDice(report.at("local_only"))}};
  const bool central = report.contains("centralized");
  if (central) out["centralized"] = finalDice(report.at("centralized"));
  nlohmann::json federated = nlohmann::json::array();
  for (const auto& run : report.at("runs")) {
    const auto dice = withMean(run.at("rounds").back().at("dice").get<std::vector<double>>());
    nlohmann::json line{{"strategy", run.at("strategy")}, {"dice", dice}};
    const double gain = dice.back() - out["local_only"].back().get<double>();
    line["gain_over_local_only"] = gain;
    if (central) {
      const double gap = out["centralized"].back().get<double>() - dice.back();
      line["gap_to_centralized"] = gap;
      line["goal_met"] = gain >= 0.05 && gap <= 0.01;
    }
    federated.push_back(line);
  }
  out["federated"] = federated;
  return out;
}

std::string formatThreeLines(const nlohmann::json& t) {
  auto pad = [](std::string s, size_t width) {
    if (s.size() < width) s.insert(0, width - s.size(), ' ');
    return s;
  };
  auto fixed = [](double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4f", v);
    return std::string(text);
  };
  std::string out = "\nthe three lines, final round: local-only, federated, centralized (all data pooled)\n" + pad("", 16);
  for (const auto& s : t.at("sites")) out += pad(s.get<std::string>(), 9);
  out += "\n";
  auto row = [&](const std::string& name, const nlohmann::json& values) {
    out += pad(name, 16);
    for (const auto& v : values) out += pad(fixed(v.get<double>()), 9);
    out += "\n";
  };
  row("local-only", t.at("local_only"));
  for (const auto& f : t.at("federated")) row(f.at("strategy").get<std::string>(), f.at("dice"));
  if (t.contains("centralized")) row("centralized", t.at("centralized"));
  out += "goal: federated >= local-only + 0.05 mean Dice and within 0.01 of centralized\n";
  for (const auto& f : t.at("federated")) {
    const double gain = f.at("gain_over_local_only");
    out += pad(f.at("strategy").get<std::string>(), 16) + "  " + (gain >= 0 ? "+" : "") + fixed(gain) + " over local-only";
    if (f.contains("gap_to_centralized")) {
      const double gap = f.at("gap_to_centralized");
      out += ", " + (gap >= 0 ? fixed(gap) + " below" : fixed(-gap) + " above") + " centralized: " + (f.at("goal_met").get<bool>() ? "goal met" : "goal NOT met");
    }
    out += "\n";
  }
  return out;
}

}  // namespace tessera::simulation
