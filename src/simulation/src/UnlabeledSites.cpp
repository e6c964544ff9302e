#include "UnlabeledSites.h"

#include <cstdio>

#include "tessera/image/ImageIO.h"

namespace tessera::simulation {

namespace fs = std::filesystem;
using nlohmann::json;

FederationData markUnlabeledSites(FederationData data, int count) {
  const int n = static_cast<int>(data.sites.size());
  for (int s = std::max(0, n - count); s < n; ++s) data.sites[static_cast<size_t>(s)].unlabeled = true;
  return data;
}

FederationData withoutUnlabeledSites(FederationData data) {
  for (auto& site : data.sites) site.leftOut = site.unlabeled;
  return data;
}

int participatingSites(const FederationData& data) {
  int n = 0;
  for (const auto& site : data.sites) n += site.leftOut ? 0 : 1;
  return n;
}

void writeRound(const fs::path& home, const std::string& name, const SiteData& site, const model::TrainingCase& round) {
  if (!site.unlabeled) {
    model::writeCase(home / "cases", name, round);
    return;
  }
  fs::create_directories(home / "unlabeled");
  image::writeImage(round.image, home / "unlabeled" / (name + ".nii.gz"));
}

std::vector<std::string> trainingDataArguments(const fs::path& home, const SiteData& site, double confidence) {
  if (site.unlabeled) return {"--unlabeled=" + (home / "unlabeled").string(), "--confidence=" + std::to_string(confidence)};
  return {"--cases", (home / "cases").string()};
}

namespace {

double meanOf(const json& dice, const FederationData& data, int which) {  // which: 0 all, 1 unlabelled, 2 labelled
  double sum = 0;
  int n = 0;
  for (size_t s = 0; s < data.sites.size(); ++s) {
    if (which == 1 && !data.sites[s].unlabeled) continue;
    if (which == 2 && data.sites[s].unlabeled) continue;
    sum += dice[s].get<double>();
    ++n;
  }
  return n ? sum / n : 0.0;
}

std::string fixed(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", v);
  return text;
}

std::string signedFixed(double v) {
  return v >= 0 ? std::string("+").append(fixed(v)) : fixed(v);
}

std::string pad(const std::string& s, size_t width) {
  return s.size() < width ? std::string(width - s.size(), ' ') + s : s;
}

}  // namespace

void addUnlabeledComparison(json& section, const FederationData& data, const json& with, const json& without) {
  if (section.is_null()) {
    json names = json::array();
    for (const auto& site : data.sites)
      if (site.unlabeled) names.push_back(site.name);
    json all = json::array();
    for (const auto& site : data.sites) all.push_back(site.name);
    section = {{"sites", static_cast<int>(names.size())}, {"unlabeled", names}, {"site_names", all}, {"runs", json::array()},
               {"without_runs", json::array()}};
  }
  section["without_runs"].push_back(without);
  const json& a = with.at("rounds").back().at("dice");
  const json& b = without.at("rounds").back().at("dice");
  section["runs"].push_back({{"strategy", with.at("strategy")},
                             {"without_run", without.at("strategy")},
                             {"with", a},
                             {"without", b},
                             {"mean_with", meanOf(a, data, 0)},
                             {"mean_without", meanOf(b, data, 0)},
                             {"unlabeled_with", meanOf(a, data, 1)},
                             {"unlabeled_without", meanOf(b, data, 1)},
                             {"labelled_with", meanOf(a, data, 2)},
                             {"labelled_without", meanOf(b, data, 2)}});
}

std::string formatUnlabeledComparison(const json& section) {
  std::string names;
  for (const auto& n : section.at("unlabeled")) names += (names.empty() ? "" : ", ") + n.get<std::string>();
  std::string out = "\nunlabelled sites (" + names +
                    ": images only, semi-supervised): final Dice per site with them in the federation and without them,"
                    " same held-out slices\n";
  for (const auto& run : section.at("runs")) {
    out += "strategy " + run.at("strategy").get<std::string>() + "\n" + pad("site", 10) + pad("with", 9) + pad("without", 9) +
           pad("difference", 12) + "\n";
    const auto& sites = section.at("site_names");
    for (size_t s = 0; s < sites.size(); ++s) {
      const double w = run.at("with")[s], wo = run.at("without")[s];
      bool unlabeled = false;
      for (const auto& n : section.at("unlabeled")) unlabeled = unlabeled || n == sites[s];
      out += pad(sites[s].get<std::string>().append(unlabeled ? "*" : ""), 10) + pad(fixed(w), 9) + pad(fixed(wo), 9) +
             pad(signedFixed(w - wo), 12) + "\n";
    }
    for (const auto& [label, key] : {std::pair{"mean", "mean"}, {"unlab.*", "unlabeled"}, {"labelled", "labelled"}}) {
      const double w = run.at(std::string(key) + "_with"), wo = run.at(std::string(key) + "_without");
      out += pad(label, 10) + pad(fixed(w), 9) + pad(fixed(wo), 9) + pad(signedFixed(w - wo), 12) + "\n";
    }
  }
  return out;
}

}  // namespace tessera::simulation
