// Data safety against the real `tessera` binary and `tessera server` process: task names used as
// paths (the admin CLI, every API route, seeding, train and the client), the operator's
// `admin check` and `admin backup`, and a registry that lost its WAL (or was rolled back) being
// refused at start instead of answering "ok" and handing accepted update ids out again.
#include <sys/stat.h>

#include "ServerHarness.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/image/Volume.h"
#include "tessera/server/HighWater.h"

namespace tessera::servertest {
namespace {

const std::string kTask = "brain-mr";

// ---- helpers --------------------------------------------------------------------------------

struct CliRun {
  int status = -1;
  std::string output;  // stdout and stderr together

  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::string line;
    for (const char c : output) {
      if (c == '\n') {
        out.push_back(line);
        line.clear();
      } else {
        line += c;
      }
    }
    if (!line.empty()) out.push_back(line);
    return out;
  }
  std::string describe() const { return "exit " + std::to_string(status) + ", output:\n" + output; }
};

// Runs `binary ARGS…` to completion.
CliRun runTessera(const std::vector<std::string>& args, const fs::path& scratch, const std::string& binary = tesseraBinary()) {
  static std::atomic<int> counter{0};
  const fs::path log = scratch / ("cli-" + std::to_string(counter++) + ".log");
  std::vector<std::string> full{binary};
  full.insert(full.end(), args.begin(), args.end());
  CliRun r;
  {
    common::ChildProcess p(full, log);
    r.status = p.wait();
  }
  r.output = common::readFile(log);
  std::error_code ec;
  fs::remove(log, ec);
  return r;
}

// Every file (SHA-256 of its bytes) and folder under `root`, by relative path.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(e.path(), root).string();
    if (e.is_directory()) {
      out[rel] = "<folder>";
    } else {
      out[rel] = common::sha256Hex(common::readFile(e.path()));
    }
  }
  return out;
}

// What differs between two snapshots, one line per path (empty: identical).
std::string differences(const std::map<std::string, std::string>& before, const std::map<std::string, std::string>& after) {
  std::string out;
  for (const auto& [path, sha] : before) {
    const auto it = after.find(path);
    if (it == after.end()) out += "  removed: " + path + "\n";
    else if (it->second != sha) out += "  changed: " + path + "\n";
  }
  for (const auto& [path, sha] : after) {
    if (!before.count(path)) out += "  created: " + path + "\n";
  }
  return out;
}

// `count` cases of 16×16×4 voxels: a bright square labelled 1.
void writeCases(const fs::path& dir, int count) {
  for (int i = 0; i < count; ++i) {
    image::Geometry g;
    g.size = {16, 16, 4};
    model::TrainingCase c{image::Volume(g, 0.0f), image::Volume(g, 0.0f)};
    for (int64_t z = 0; z < 4; ++z) {
      for (int64_t y = 4 + i; y < 11 + i; ++y) {
        for (int64_t x = 5; x < 12; ++x) {
          c.image.at(x, y, z) = 100.0f;
          c.labels.at(x, y, z) = 1.0f;
        }
      }
    }
    model::writeCase(dir, "case" + std::to_string(i), c);
  }
}

::testing::AssertionResult isOneLineError(const CliRun& r, const std::string& needle) {
  if (r.status == 0) return ::testing::AssertionFailure() << "succeeded: " << r.describe();
  const auto lines = r.lines();
  if (lines.size() != 1) return ::testing::AssertionFailure() << "not one line: " << r.describe();
  if (lines[0].rfind("tessera: error: ", 0) != 0) return ::testing::AssertionFailure() << "no error line: " << r.describe();
  if (lines[0].find(needle) == std::string::npos) {
    return ::testing::AssertionFailure() << "'" << needle << "' not in: " << r.describe();
  }
  return ::testing::AssertionSuccess();
}

// A data folder with one model, a site, an admin and (optionally) a fedavg policy.
class DataSafetyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path() / "site";
    data_ = root_ / "data";
    base_ = makeModel(kTask);
    seed(data_, base_);
    siteToken_ = addSite(data_, "hospital-a");
    adminToken_ = addSite(data_, "ops", "admin");
  }

  std::string update(uint64_t seed) const { return encodeDelta(kTask, 0, randomDelta(base_.weights, seed)); }
  // The token of site number `i` ("site-<i>", registered on first use): one update per site keeps
  // any per-site, per-round limit of the policy out of the way.
  const std::string& site(size_t i) {
    while (otherSites_.size() <= i) otherSites_.push_back(addSite(data_, "site-" + std::to_string(otherSites_.size())));
    return otherSites_[i];
  }
  // Pushes a delta from site number `from` (default: `seed`) and returns the id the server answered.
  int64_t push(const Http& http, uint64_t seed, std::optional<size_t> from = std::nullopt) {
    const Reply r = http.post("/v1/models/" + kTask + "/updates", update(seed), site(from.value_or(seed)));
    EXPECT_EQ(r.status, 202) << r.describe();
    return r.status == 202 ? r.asJson()["update"].get<int64_t>() : -1;
  }
  CliRun cli(const std::vector<std::string>& args) const { return runTessera(args, dir_.path()); }

  TempDir dir_;
  fs::path root_, data_;
  model::Model base_;
  std::string siteToken_, adminToken_;
  std::vector<std::string> otherSites_;
};

// ---- task names as paths ----------------------------------------------------------------------

// `set-validation --task ..` removed DATA (registry and blobs), `--task ../..` the folder around
// it, `--task ''` every validation set. Every invalid or unknown name must now leave every byte
// where it was and fail with one line.
TEST_F(DataSafetyTest, SetValidationWithABadOrUnknownTaskChangesNothing) {
  writeCases(dir_.path() / "cases", 2);
  const CliRun first = cli({"server", "admin", "set-validation", "--data", data_.string(), "--task", kTask, "--cases",
                            (dir_.path() / "cases").string()});
  ASSERT_EQ(first.status, 0) << first.describe();
  common::writeFileAtomically(root_ / "beside-the-data-folder.txt", "precious\n");
  const auto before = snapshot(dir_.path());
  ASSERT_TRUE(before.count("site/data/registry.sqlite3"));
  ASSERT_TRUE(before.count("site/data/validation/brain-mr/images/case0.nii.gz"));

  struct Attack {
    std::string task, needle;
    int status;
  };
  const std::vector<Attack> attacks{
      {"..", "'..' is not a valid task name", 2},
      {"../..", "'../..' is not a valid task name", 2},
      {"", "'' is not a valid task name: it is empty", 2},
      {"latest", "'latest' is not a valid task name", 2},
      {"Brain-MR", "'Brain-MR' is not a valid task name: it has upper-case letters", 2},
      {std::string(65, 'a'), "is 65 characters long", 2},
      {"brain-mr/../..", "is not a valid task name", 2},
      {"unknown-task", "no model for task 'unknown-task'", 3},
  };
  for (const auto& a : attacks) {
    SCOPED_TRACE("--task '" + a.task + "'");
    const CliRun r = cli({"server", "admin", "set-validation", "--data", data_.string(), "--task", a.task, "--cases",
                          (dir_.path() / "cases").string()});
    EXPECT_TRUE(isOneLineError(r, a.needle));
    EXPECT_EQ(r.status, a.status) << r.describe();
    EXPECT_EQ(differences(before, snapshot(dir_.path())), "");
  }

  // The rightful use still works: the new set replaces the old one whole, nothing else changes.
  writeCases(dir_.path() / "cases3", 3);
  const auto beforeReplace = snapshot(dir_.path());
  const CliRun replaced = cli({"server", "admin", "set-validation", "--data", data_.string(), "--task", kTask, "--cases",
                               (dir_.path() / "cases3").string()});
  ASSERT_EQ(replaced.status, 0) << replaced.describe();
  std::set<std::string> changed;
  const auto after = snapshot(dir_.path());
  for (const auto& [path, sha] : after) {
    if (!beforeReplace.count(path) || beforeReplace.at(path) != sha) changed.insert(path);
  }
  for (const auto& [path, sha] : beforeReplace) {
    if (!after.count(path)) changed.insert(path);
  }
  for (const auto& path : changed) {
    EXPECT_EQ(path.rfind("site/data/validation/brain-mr/", 0), 0u) << path << " changed outside the task's set";
  }
  EXPECT_TRUE(after.count("site/data/validation/brain-mr/images/case2.nii.gz"));
  for (const auto& e : fs::directory_iterator(data_ / "validation")) {
    EXPECT_EQ(e.path().filename(), kTask) << "a staging folder was left behind";
  }
}

// The same rule for the other admin commands that take a task, and for seeding.
TEST_F(DataSafetyTest, PolicyAndSeedRefuseInvalidTaskNames) {
  const auto before = snapshot(dir_.path());
  EXPECT_TRUE(isOneLineError(cli({"server", "admin", "policy", "--data", data_.string(), "--task", "../.."}),
                             "'../..' is not a valid task name"));
  EXPECT_TRUE(isOneLineError(cli({"server", "admin", "policy", "--data", data_.string(), "--task", "nothing-here"}),
                             "no model for task 'nothing-here'"));
  EXPECT_TRUE(isOneLineError(cli({"server", "admin", "policy", "--data", (root_ / "typo").string(), "--task", kTask}),
                             "holds no registry.sqlite3"));
  model::Model bad = makeModel("Brain MR", tinySpec(), 5);
  const fs::path file = dir_.path() / "bad.tsm";
  model::saveModel(bad, file);
  const auto withFile = snapshot(dir_.path());
  const CliRun seeded = cli({"server", "admin", "seed", "--data", data_.string(), "--model", file.string()});
  EXPECT_TRUE(isOneLineError(seeded, "the model's task 'Brain MR' is not a valid task name"));
  EXPECT_EQ(seeded.status, 2);
  EXPECT_EQ(differences(withFile, snapshot(dir_.path())), "") << "an invalid seed stores no blob and no row";
  (void)before;
}

// Every route that takes a task answers 400 bad_request for a name that breaks the rule (it was
// 404, after using the name as it came), 404 for a valid name without a model.
TEST_F(DataSafetyTest, ApiRoutesRefuseInvalidTaskNames) {
  ServerProcess server(data_);
  const Http http = server.http();
  const std::vector<std::string> bad{"Brain-MR", "latest", "policy", "%2E%2E", "a%20b", std::string(65, 'a'), "-x"};
  for (const auto& t : bad) {
    SCOPED_TRACE("task '" + t + "'");
    const std::string m = "/v1/models/" + t;
    EXPECT_TRUE(isError(http.get(m, siteToken_), 400, "bad_request"));
    EXPECT_TRUE(isError(http.get(m + "/generations", siteToken_), 400, "bad_request"));
    EXPECT_TRUE(isError(http.get(m + "/generations/latest", siteToken_), 400, "bad_request"));
    EXPECT_TRUE(isError(http.get(m + "/generations/0/model", siteToken_), 400, "bad_request"));
    EXPECT_TRUE(isError(http.get(m + "/policy", adminToken_), 400, "bad_request"));
    EXPECT_TRUE(isError(http.put(m + "/policy", R"({"round_size": 2})", adminToken_), 400, "bad_request"));
    EXPECT_TRUE(isError(http.get(m + "/updates", adminToken_), 400, "bad_request"));
    EXPECT_TRUE(isError(http.post(m + "/updates", update(1), siteToken_), 400, "bad_request"));
  }
  const Reply message = http.get("/v1/models/Brain-MR", siteToken_);
  EXPECT_NE(message.body.find("task 'Brain-MR' is not a valid task name"), std::string::npos) << message.body;
  EXPECT_TRUE(isError(http.get("/v1/models/unknown-task", siteToken_), 404, "not_found"));
  EXPECT_TRUE(isError(http.post("/v1/models", model::encodeModel(makeModel("Knee", tinySpec(), 3)), adminToken_), 400,
                      "bad_request"));
  EXPECT_TRUE(isError(http.get("/v1/models/Knee", siteToken_), 400, "bad_request"));
  EXPECT_EQ(http.getJson("/v1/models", siteToken_)["models"].size(), 1u) << "nothing was seeded";
  EXPECT_EQ(queuedUpdates(http), 0);
}

// `train --task` and the client's task setting follow the same rule, before any work is done.
TEST_F(DataSafetyTest, TrainAndClientRefuseInvalidTaskNames) {
  const fs::path out = dir_.path() / "m.tsm";
  const CliRun train = cli({"train", "--images", "x.nii.gz", "--labels", "y.nii.gz", "--task", "../..", "--out", out.string()});
  EXPECT_TRUE(isOneLineError(train, "--task '../..' is not a valid task name"));
  EXPECT_EQ(train.status, 2);
  EXPECT_FALSE(fs::exists(out));
  const fs::path home = dir_.path() / "home";
  const CliRun pull = cli({"client", "pull", "--server", "http://127.0.0.1:9", "--token", "t", "--home", home.string(),
                           "--task", ".."});
  EXPECT_TRUE(isOneLineError(pull, "'..' is not a valid task name"));
  EXPECT_EQ(pull.status, 2);
  EXPECT_FALSE(fs::exists(home / "models")) << "no cache folder for an invalid task";
}

// ---- admin check and admin backup -----------------------------------------------------------

TEST_F(DataSafetyTest, CheckPassesAHealthyFolderAndNamesTheDamageInABrokenOne) {
  setPolicy(data_, kTask, {{"round_size", 1}});
  {
    ServerProcess server(data_);
    push(server.http(), 1);
    ASSERT_TRUE(waitForGeneration(server.http(), kTask, siteToken_, 1)) << server.logTail();
    EXPECT_EQ(server.stop(), 0);
  }
  const CliRun healthy = cli({"server", "admin", "check", "--data", data_.string()});
  EXPECT_EQ(healthy.status, 0) << healthy.describe();
  EXPECT_NE(healthy.output.find(": ok"), std::string::npos) << healthy.describe();

  // Lose generation 1's weights, as a disk or a careless `rm` would.
  server::Registry registry(data_);
  server::BlobStore blobs(data_);
  const auto g1 = registry.generation(registry.model(kTask)->id, 1);
  ASSERT_TRUE(g1);
  fs::remove(blobs.pathOf(g1->weightsSha256));
  const CliRun damaged = cli({"server", "admin", "check", "--data", data_.string()});
  EXPECT_EQ(damaged.status, 1) << damaged.describe();
  EXPECT_NE(damaged.output.find("problem: model 1 generation 1: weights blob " + g1->weightsSha256 + " is missing"),
            std::string::npos)
      << damaged.describe();
  EXPECT_NE(damaged.output.find("tessera: error: " + data_.string() + ": 1 problem(s) found"), std::string::npos)
      << damaged.describe();

  const CliRun nowhere = cli({"server", "admin", "check", "--data", (root_ / "typo").string()});
  EXPECT_TRUE(isOneLineError(nowhere, "holds no registry.sqlite3"));
  EXPECT_FALSE(fs::exists(root_ / "typo")) << "check must not create a data folder";
}

// A backup taken while the server runs is a data folder a server runs from, serving every
// generation byte for byte.
TEST_F(DataSafetyTest, BackupOfARunningServerServesEveryGeneration) {
  setPolicy(data_, kTask, {{"round_size", 1}});
  writeCases(dir_.path() / "cases", 2);
  ASSERT_EQ(cli({"server", "admin", "set-validation", "--data", data_.string(), "--task", kTask, "--cases",
                 (dir_.path() / "cases").string()})
                .status,
            0);
  const fs::path backup = dir_.path() / "backup";
  std::map<int64_t, std::string> original;  // generation → SHA-256 of the downloaded .tsm
  {
    ServerProcess server(data_);
    const Http http = server.http();
    for (uint64_t i = 1; i <= 3; ++i) {
      push(http, i);
      ASSERT_TRUE(waitForGeneration(http, kTask, siteToken_, static_cast<int64_t>(i))) << server.logTail();
    }
    const CliRun r = cli({"server", "admin", "backup", "--data", data_.string(), "--out", backup.string()});
    ASSERT_EQ(r.status, 0) << r.describe();
    EXPECT_NE(r.output.find("4 generation(s), 3 update(s)"), std::string::npos) << r.describe();
    EXPECT_NE(r.output.find("blobs: 7 ("), std::string::npos) << r.describe();
    EXPECT_NE(r.output.find("validation: 4 file(s)"), std::string::npos) << r.describe();
    for (int64_t g = 0; g <= 3; ++g) {
      const Reply file = http.get("/v1/models/" + kTask + "/generations/" + std::to_string(g) + "/model", siteToken_);
      ASSERT_EQ(file.status, 200) << file.describe();
      original[g] = common::sha256Hex(file.body);
      EXPECT_EQ(original[g], file.header("X-Tessera-Sha256"));
    }
    // A backup never goes into a folder holding something.
    const auto backupBefore = snapshot(backup);
    const CliRun again = cli({"server", "admin", "backup", "--data", data_.string(), "--out", backup.string()});
    EXPECT_TRUE(isOneLineError(again, "exists and is not an empty folder"));
    EXPECT_EQ(differences(backupBefore, snapshot(backup)), "");
    EXPECT_EQ(server.stop(), 0);
  }
  fs::remove_all(data_);  // the disaster the backup is for

  const CliRun check = cli({"server", "admin", "check", "--data", backup.string()});
  EXPECT_EQ(check.status, 0) << check.describe();
  EXPECT_TRUE(fs::exists(backup / "validation" / kTask / "labels" / "case1.nii.gz"));
  ServerProcess restored(backup);
  const Http http = restored.http();
  EXPECT_EQ(latestGeneration(http, kTask, siteToken_), 3);
  for (const auto& [g, sha] : original) {
    const Reply file = http.get("/v1/models/" + kTask + "/generations/" + std::to_string(g) + "/model", siteToken_);
    ASSERT_EQ(file.status, 200) << file.describe();
    EXPECT_EQ(common::sha256Hex(file.body), sha) << "generation " << g;
    EXPECT_EQ(file.header("X-Tessera-Sha256"), sha) << "generation " << g;
  }
  // The restored server goes on: the next update (from a site the backup knows) becomes generation 4.
  EXPECT_GT(push(http, 9, 1), 3);
  EXPECT_TRUE(waitForGeneration(http, kTask, siteToken_, 4)) << restored.logTail();
}

// ---- a registry behind what it published and accepted ---------------------------------------

// Starts `tessera server` on `data` and waits for it to exit (up to `seconds`): returns the exit
// status and output, or status -1 when it was still running (it then was killed).
CliRun startExpectingRefusal(const fs::path& data, const fs::path& scratch, double seconds = 20) {
  const fs::path log = scratch / "refused-start.log";
  std::error_code ec;
  fs::remove(log, ec);
  common::ChildProcess p({tesseraBinary(), "server", "--data", data.string(), "--listen", "127.0.0.1:0"}, log);
  CliRun r;
  if (waitFor([&] { return !p.running(); }, seconds, 0.02)) {
    r.status = p.wait();
  } else {
    p.signal(SIGKILL);
    p.wait();
  }
  r.output = common::readFile(log);
  return r;
}

void loseTheWal(const fs::path& data) {
  const fs::path wal = data / "registry.sqlite3-wal";
  std::error_code ec;
  ASSERT_GT(fs::file_size(wal, ec), 0u) << "the killed server left no WAL (" << ec.message()
                                        << "): nothing to lose, the test proves nothing";
  fs::remove(wal);
  fs::remove(data / "registry.sqlite3-shm", ec);
}

TEST_F(DataSafetyTest, LostWalAfterAPublishedGenerationIsRefusedAtStart) {
  setPolicy(data_, kTask, {{"round_size", 1}});
  {
    ServerProcess server(data_);
    push(server.http(), 1);
    ASSERT_TRUE(waitForGeneration(server.http(), kTask, siteToken_, 1)) << server.logTail();
    server.kill();
  }
  loseTheWal(data_);
  if (HasFatalFailure()) return;
  const auto before = snapshot(data_);
  const CliRun r = startExpectingRefusal(data_, dir_.path());
  ASSERT_NE(r.status, -1) << "the server started on a registry that lost generation 1:\n" << r.output;
  EXPECT_EQ(r.status, 1) << r.describe();
  EXPECT_TRUE(isOneLineError(r, (data_ / "registry.sqlite3").string() + " is behind " +
                                    (data_ / "highwater.json").string() +
                                    ": generation 1 of task 'brain-mr' was published but the registry knows only 0"));
  EXPECT_NE(r.output.find("was registry.sqlite3-wal deleted"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tessera server admin backup"), std::string::npos) << r.output;
  // Refusing touches nothing (no orphan clean-up of the blobs the lost rows named).
  auto after = snapshot(data_);
  for (const auto* sqliteFile : {"registry.sqlite3", "registry.sqlite3-wal", "registry.sqlite3-shm"}) {
    after.erase(sqliteFile);
  }
  auto expected = before;
  expected.erase("registry.sqlite3");
  EXPECT_EQ(differences(expected, after), "");

  // `admin check` names the same problem.
  const CliRun check = cli({"server", "admin", "check", "--data", data_.string()});
  EXPECT_EQ(check.status, 1) << check.describe();
  EXPECT_NE(check.output.find("problem: " + (data_ / "registry.sqlite3").string() + " is behind"), std::string::npos)
      << check.describe();
}

// Update ids stay unique whatever happens to the process: a clean stop, a SIGKILL, and a SIGKILL
// followed by the loss of the WAL (which used to hand the lost ids out again with "status ok").
TEST_F(DataSafetyTest, UpdateIdsAreNeverReusedAcrossRestarts) {
  setPolicy(data_, kTask, {{"round_size", 100}, {"round_seconds", 3600}});
  std::set<int64_t> answered;
  int64_t highest = 0;
  auto pushNew = [&](const Http& http, uint64_t seed) {
    const int64_t id = push(http, seed);
    EXPECT_TRUE(answered.insert(id).second) << "update id " << id << " was handed out twice";
    EXPECT_GT(id, highest) << "ids must grow";
    highest = std::max(highest, id);
  };
  {
    ServerProcess server(data_);
    pushNew(server.http(), 1);
    pushNew(server.http(), 2);
    server.kill();
  }
  {
    ServerProcess server(data_);
    pushNew(server.http(), 3);
    EXPECT_EQ(server.stop(), 0);
  }
  {
    ServerProcess server(data_);
    pushNew(server.http(), 4);
    pushNew(server.http(), 5);
    server.kill();
  }
  loseTheWal(data_);
  if (HasFatalFailure()) return;
  const CliRun r = startExpectingRefusal(data_, dir_.path());
  if (r.status == -1) {
    // Started anyway: then at least it must not reuse an id it answered 202 for.
    ServerProcess server(data_);
    pushNew(server.http(), 6);
    FAIL() << "the server started on a registry that lost updates 4 and 5";
  }
  EXPECT_TRUE(isOneLineError(r, "update " + std::to_string(highest) +
                                    " was accepted but the registry knows only updates up to 3"));
  EXPECT_EQ(r.status, 1);
}

TEST(HighWaterTest, ConcurrentRaisesKeepTheMaximumAndNeverLowerIt) {
  TempDir dir;
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 1; i <= 25; ++i) server::raiseHighWater(dir.path(), {t * 100 + i, {{"task-" + std::to_string(t), i}}});
    });
  }
  for (auto& w : writers) w.join();
  server::raiseHighWater(dir.path(), {5, {{"task-0", 1}}});  // lower values change nothing
  const auto mark = server::readHighWater(dir.path());
  ASSERT_TRUE(mark);
  EXPECT_EQ(mark->updateId, 325);
  EXPECT_EQ(mark->generations, (std::map<std::string, int64_t>{{"task-0", 25}, {"task-1", 25}, {"task-2", 25}, {"task-3", 25}}));
  common::writeFileAtomically(server::highWaterFile(dir.path()), "{\"update_id\": \"x\"}");
  try {
    server::readHighWater(dir.path());
    ADD_FAILURE() << "a damaged high-water file was read";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Corrupt);
    EXPECT_NE(std::string(e.what()).find("highwater.json: 'update_id' is not an integer"), std::string::npos) << e.what();
  }
}

// ---- cost of the high-water mark --------------------------------------------------------------

// Not a check: upload latency of a small model through the real server, for the README and the
// report (run with --gtest_also_run_disabled_tests; TESSERA_LATENCY_BINARY picks another build).
TEST_F(DataSafetyTest, DISABLED_UploadLatency) {
  setPolicy(data_, kTask, {{"round_size", 1000}, {"round_seconds", 36000}});
  const char* other = std::getenv("TESSERA_LATENCY_BINARY");
  const fs::path log = dir_.path() / "latency-server.log";
  const fs::path portFile = dir_.path() / "latency.port";
  common::ChildProcess p({other ? other : tesseraBinary(), "server", "--data", data_.string(), "--listen", "127.0.0.1:0",
                          "--port-file", portFile.string(), "--quiet"},
                         log);
  int port = 0;
  ASSERT_TRUE(waitFor([&] {
    std::ifstream in(portFile);
    return static_cast<bool>(in >> port) && port > 0;
  }, 30));
  const Http http(port);
  std::vector<std::string> bodies, tokens;
  for (size_t i = 0; i < 60; ++i) {
    bodies.push_back(update(100 + i));
    tokens.push_back(site(i));
  }
  std::vector<double> ms;
  for (size_t i = 0; i < bodies.size(); ++i) {
    const auto start = Clock::now();
    const Reply r = http.post("/v1/models/" + kTask + "/updates", bodies[i], tokens[i]);
    const double took = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    ASSERT_EQ(r.status, 202) << r.describe();
    if (i >= 10) ms.push_back(took);  // the first ones warm up
  }
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (const double v : ms) sum += v;
  std::printf("upload of %zu bytes: median %.2f ms, mean %.2f ms, p90 %.2f ms over %zu uploads (%s)\n", bodies[0].size(),
              ms[ms.size() / 2], sum / ms.size(), ms[ms.size() * 9 / 10], ms.size(), other ? other : tesseraBinary());
  p.signal(SIGTERM);
  p.wait();
}

}  // namespace
}  // namespace tessera::servertest
