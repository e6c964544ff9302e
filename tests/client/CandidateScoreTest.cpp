// A site scores the candidate the real server holds for the site gate, on its own held-out
// cases, and its report is what publishes the candidate.
#include <chrono>
#include <functional>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "TestModels.h"
#include "TesseraCommand.h"
#include "tessera/client/ApiClient.h"
#include "tessera/client/CandidateScore.h"
#include "tessera/common/ChildProcess.h"
#include "tessera/common/Error.h"
#include "tessera/federation/ModelUpdate.h"
#include "tessera/nn/Runtime.h"

using namespace tessera;
using namespace tessera::client;

namespace {

namespace fs = std::filesystem;

using test::lastLine;
using test::tessera;

using ScoreFunction = std::function<CandidateScore(const ClientConfig&, const fs::path& heldOut)>;

// A one-site gate round on a real server: nothing is pending, an update arrives, the site scores
// the candidate with `score` and its report (the quorum) publishes it with the site's scores.
void runOneSiteGate(const ScoreFunction& score) {
  nn::setThreadCount(1);
  test::ScratchDir scratch, cases;
  const model::Model base = test::tinyModel("brain", 0);
  const fs::path data = scratch.path() / "data";
  model::saveModel(base, scratch.path() / "brain.tsm");
  tessera({"server", "admin", "seed", "--model", (scratch.path() / "brain.tsm").string(), "--data", data.string()}, scratch.path() / "seed");
  ClientConfig config;
  config.home = scratch.path() / "site";
  config.task = "brain";
  config.token = lastLine(tessera({"server", "admin", "add-site", "site-a", "--data", data.string()}, scratch.path() / "add-site"));
  tessera({"server", "admin", "policy", "--data", data.string(), "--task", "brain", "--set",
           R"({"round_size": 1, "site_quorum": 1, "site_tolerance": 1})"},
          scratch.path() / "policy");
  const fs::path portFile = scratch.path() / "port";
  common::ChildProcess server({TESSERA_BINARY, "server", "--data", data.string(), "--listen", "127.0.0.1:0", "--port-file", portFile.string()},
                              scratch.path() / "server.log");
  int port = 0;
  for (int i = 0; i < 3000 && port == 0 && server.running(); ++i) {
    std::ifstream in(portFile);
    if (!(in >> port)) port = 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(port, 0) << common::tailOfFile(scratch.path() / "server.log", 20);
  config.server = "http://127.0.0.1:" + std::to_string(port);
  test::writeCases(cases.path(), 2, 4);

  // Nothing pending yet.
  EXPECT_FALSE(score(config, cases.path()).pending);

  federation::ModelUpdate u;
  u.header.task = "brain";
  u.header.baseGeneration = 0;
  u.header.kind = federation::UpdateKind::Delta;
  u.header.samples = 4;
  u.weights = base.weights;
  for (auto& t : u.weights) {
    for (auto& v : t.values) v = 0.001f;
  }
  ApiClient api(config);
  api.pushUpdate("brain", federation::encodeUpdate(u));
  const auto scoreCandidateWith = score;
  CandidateScore result;
  for (int i = 0; i < 500 && !result.pending; ++i) {
    result = scoreCandidateWith(config, cases.path());
    if (!result.pending) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(result.pending) << common::tailOfFile(scratch.path() / "server.log", 20);
  EXPECT_TRUE(result.reported);
  EXPECT_EQ(result.baseGeneration, 0);
  EXPECT_EQ(result.cases, 2);
  EXPECT_GE(result.diceCurrent, 0.0);
  EXPECT_LE(result.diceCandidate, 1.0);
  // The one report is the quorum: the candidate becomes generation 1, with this site's scores.
  nlohmann::json g;
  for (int i = 0; i < 500; ++i) {
    g = api.latestGeneration("brain");
    if (g["generation"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(g["generation"], 1) << common::tailOfFile(scratch.path() / "server.log", 20);
  ASSERT_EQ(g["validation"]["sites"].size(), 1u) << g.dump();
  EXPECT_EQ(g["validation"]["sites"][0]["site"], "site-a");
  EXPECT_NEAR(g["validation"]["sites"][0]["dice_candidate"].get<double>(), result.diceCandidate, 1e-12);
  server.signal(SIGTERM);
  server.wait();
}

TEST(CandidateScore, ASiteScoresThePendingCandidateAndItsReportPublishesIt) {
  std::ostringstream log;
  runOneSiteGate([&](const ClientConfig& config, const fs::path& heldOut) { return scoreCandidate(config, heldOut, log); });
}

// The same round through `tessera client score-candidate --json`, as a site's scheduler runs it.
TEST(CandidateScore, TheClientCommandScoresAndReports) {
  int calls = 0;
  runOneSiteGate([&](const ClientConfig& config, const fs::path& heldOut) {
    const fs::path log = heldOut.parent_path() / ("score-candidate-" + std::to_string(++calls));
    const std::string out = tessera({"client", "score-candidate", "--held-out", heldOut.string(), "--json", "--threads", "1",
                                     "--server", config.server, "--token", config.token, "--task", config.task, "--home",
                                     config.home.string()},
                                    log);
    const auto start = out.find("{\n  \"base_generation\"");
    EXPECT_NE(start, std::string::npos) << out;
    const auto j = nlohmann::json::parse(out.substr(start == std::string::npos ? 0 : start));
    CandidateScore r;
    r.pending = j.at("pending");
    r.reported = j.at("reported");
    r.baseGeneration = j.at("base_generation");
    r.diceCurrent = j.at("dice_current");
    r.diceCandidate = j.at("dice_candidate");
    r.cases = j.at("cases");
    return r;
  });
}

}  // namespace
