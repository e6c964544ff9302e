// simulate --unlabeled-sites: which sites lose their labels, what they are handed, and the
// with/without comparison the report prints.
#include <gtest/gtest.h>

#include <filesystem>

#include <unistd.h>

#include "SiteData.h"
#include "UnlabeledSites.h"

namespace tessera::simulation {
namespace {

namespace fs = std::filesystem;

FederationData threeSites() {
  FederationData data;
  for (int s = 1; s <= 3; ++s) {
    SiteData site;
    site.name = "site-" + std::to_string(s);
    data.sites.push_back(site);
  }
  return data;
}

TEST(UnlabeledSites, TheLastSitesLoseTheirLabelsAndTheComparisonLeavesThemOut) {
  const auto data = markUnlabeledSites(threeSites(), 1);
  EXPECT_FALSE(data.sites[0].unlabeled);
  EXPECT_FALSE(data.sites[1].unlabeled);
  EXPECT_TRUE(data.sites[2].unlabeled);
  EXPECT_EQ(participatingSites(data), 3);
  const auto without = withoutUnlabeledSites(data);
  EXPECT_EQ(participatingSites(without), 2);
  EXPECT_TRUE(without.sites[2].leftOut);
  EXPECT_EQ(without.sites.size(), 3u);  // still scored
}

TEST(UnlabeledSites, AnUnlabelledSiteIsHandedTheImageOnly) {
  const fs::path home = fs::temp_directory_path() / ("tessera-unlabeled-sites-" + std::to_string(::getpid()));
  fs::remove_all(home);
  const auto data = markUnlabeledSites(threeSites(), 1);
  image::Geometry g;
  g.size = {4, 4, 2};
  model::TrainingCase round{image::Volume(g, 1.0f), image::Volume(g, 1.0f), {}, {}};
  writeRound(home / "a", "round-01", data.sites[0], round);
  writeRound(home / "c", "round-01", data.sites[2], round);
  EXPECT_TRUE(fs::exists(home / "a" / "cases" / "labels"));
  EXPECT_EQ(trainingDataArguments(home / "a", data.sites[0]), (std::vector<std::string>{"--cases", (home / "a" / "cases").string()}));
  EXPECT_TRUE(fs::exists(home / "c" / "unlabeled" / "round-01.nii.gz"));
  EXPECT_FALSE(fs::exists(home / "c" / "cases"));
  EXPECT_EQ(trainingDataArguments(home / "c", data.sites[2], 0.6),
            (std::vector<std::string>{"--unlabeled=" + (home / "c" / "unlabeled").string(), "--confidence=0.600000"}));
  fs::remove_all(home);
}

TEST(UnlabeledSites, TheComparisonSplitsLabelledAndUnlabelledSites) {
  const auto data = markUnlabeledSites(threeSites(), 1);
  const nlohmann::json with{{"strategy", "fedavg"}, {"rounds", {{{"dice", {0.8, 0.6, 0.5}}}}}};
  const nlohmann::json without{{"strategy", "fedavg-without-unlabeled"}, {"rounds", {{{"dice", {0.7, 0.6, 0.3}}}}}};
  nlohmann::json section;
  addUnlabeledComparison(section, data, with, without);
  ASSERT_EQ(section.at("runs").size(), 1u);
  const auto& run = section.at("runs")[0];
  EXPECT_NEAR(run.at("mean_with").get<double>(), 0.6333333, 1e-6);
  EXPECT_NEAR(run.at("mean_without").get<double>(), 0.5333333, 1e-6);
  EXPECT_NEAR(run.at("unlabeled_with").get<double>(), 0.5, 1e-9);
  EXPECT_NEAR(run.at("unlabeled_without").get<double>(), 0.3, 1e-9);
  EXPECT_NEAR(run.at("labelled_with").get<double>(), 0.7, 1e-9);
  EXPECT_NEAR(run.at("labelled_without").get<double>(), 0.65, 1e-9);
  EXPECT_EQ(section.at("unlabeled"), nlohmann::json::array({"site-3"}));
  EXPECT_EQ(section.at("without_runs")[0].at("strategy"), "fedavg-without-unlabeled");
  const std::string table = formatUnlabeledComparison(section);
  EXPECT_NE(table.find("site-3*   0.5000   0.3000     +0.2000"), std::string::npos) << table;
  EXPECT_NE(table.find("mean   0.6333   0.5333     +0.1000"), std::string::npos) << table;
}

}  // namespace
}  // namespace tessera::simulation
