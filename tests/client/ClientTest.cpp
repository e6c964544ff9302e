// The client's pieces one at a time: HTTP error mapping against a fake server, the config
// layers, and the verified model cache.

#include <cstdlib>
#include <fstream>
#include <optional>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "FakeServer.h"
#include "TestModels.h"
#include "tessera/client/ApiClient.h"
#include "tessera/client/ClientConfig.h"
#include "tessera/common/Error.h"
#include "tessera/client/ModelCache.h"
#include "tessera/common/AtomicFile.h"

namespace tessera::client {
namespace {

using test::FakeServer;

ClientConfig configFor(const FakeServer& server, const std::string& token = FakeServer::kSiteToken) {
  ClientConfig config;
  config.server = server.url();
  config.token = token;
  config.task = "brain";
  config.home = "/nonexistent";
  return config;
}

// Runs `call`, expecting a tessera::Error; returns it for inspection.
template <typename Call>
tessera::Error failure(Call&& call) {
  try {
    call();
  } catch (const tessera::Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a tessera::Error";
  return tessera::Error(tessera::ErrorCode::Internal, "");
}

// A port nothing listens on: bound once to learn a free number, then released.
int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t length = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class ApiClientTest : public ::testing::Test {
 protected:
  model::Model model = test::tinyModel();
  FakeServer server{model};
};

TEST_F(ApiClientTest, WhoamiSendsTheBearerToken) {
  ApiClient api(configFor(server));
  const auto me = api.whoami();
  EXPECT_EQ(me["name"], "hospital-a");
  EXPECT_EQ(me["role"], "site");
}

TEST_F(ApiClientTest, WrongTokenIsUnauthorizedWithTheServersMessage) {
  ApiClient api(configFor(server, "stolen"));
  const auto e = failure([&] { api.whoami(); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Unauthorized);
  EXPECT_NE(std::string(e.what()).find("refused the token (401): unknown token"), std::string::npos) << e.what();
}

TEST_F(ApiClientTest, SiteTokenOnAnAdminRouteIsForbidden) {
  ApiClient api(configFor(server));
  const auto e = failure([&] { api.stats(); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Forbidden);
  EXPECT_NE(std::string(e.what()).find("admin role required"), std::string::npos) << e.what();
  EXPECT_EQ(ApiClient(configFor(server, FakeServer::kAdminToken)).stats().count("usage"), 1u);
}

TEST_F(ApiClientTest, UnknownTaskIsNotFound) {
  ApiClient api(configFor(server));
  const auto e = failure([&] { api.latestGeneration("liver"); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::NotFound);
  EXPECT_NE(std::string(e.what()).find("no model for task 'liver'"), std::string::npos) << e.what();
}

TEST_F(ApiClientTest, TaskNamesAreEncodedInPaths) {
  ApiClient api(configFor(server));
  const auto e = failure([&] { api.model("brain tumour"); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::NotFound);
  EXPECT_NE(std::string(e.what()).find("no model for task 'brain tumour'"), std::string::npos) << e.what();
}

TEST_F(ApiClientTest, RejectedUpdateCarriesTheServersCodeAndMessage) {
  server.rejectUpdates = true;
  ApiClient api(configFor(server));
  const auto e = failure([&] { api.pushUpdate("brain", "whatever"); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Rejected);
  EXPECT_NE(std::string(e.what()).find("update rejected by the server: norm_too_large: update norm ratio 3.10"),
            std::string::npos)
      << e.what();
}

TEST_F(ApiClientTest, MalformedUploadIsRejectedAsBadUpdate) {
  ApiClient api(configFor(server));
  const auto e = failure([&] { api.pushUpdate("brain", "not an update file"); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Rejected);
  EXPECT_NE(std::string(e.what()).find("bad_update"), std::string::npos) << e.what();
}

TEST_F(ApiClientTest, ServerFaultWithoutJsonBodyIsServerError) {
  server.failEvents = true;
  ApiClient api(configFor(server));
  const auto e = failure([&] { api.postEvents(nlohmann::json::array({{{"type", "train"}}})); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Server);
  EXPECT_NE(std::string(e.what()).find("(500)"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("Internal Server Error"), std::string::npos) << e.what();
}

TEST_F(ApiClientTest, EventsAreWrappedInAnEventsObject) {
  ApiClient api(configFor(server));
  const auto answer = api.postEvents(nlohmann::json::array({{{"type", "train"}, {"task", "brain"}, {"seconds", 1.5}}}));
  EXPECT_EQ(answer["accepted"], 1);
  ASSERT_EQ(server.events().size(), 1u);
  EXPECT_EQ(server.events()[0]["seconds"], 1.5);
}

TEST_F(ApiClientTest, DownloadReturnsTheVerifiedModel) {
  ApiClient api(configFor(server));
  const std::string bytes = api.downloadModel("brain", 3);
  EXPECT_EQ(model::decodeModel(bytes, "download").weightsSha256(), model.weightsSha256());
}

TEST_F(ApiClientTest, DownloadDetectsAChecksumMismatch) {
  server.corruptChecksum = true;
  ApiClient api(configFor(server));
  const auto e = failure([&] { api.downloadModel("brain", 3); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Checksum);
  EXPECT_NE(std::string(e.what()).find("generation 3"), std::string::npos) << e.what();
}

TEST_F(ApiClientTest, MissingTokenIsAConfigErrorBeforeAnyRequest) {
  ApiClient api(configFor(server, ""));
  const auto e = failure([&] { api.whoami(); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Config);
  EXPECT_NE(std::string(e.what()).find("TESSERA_TOKEN"), std::string::npos) << e.what();
}

TEST_F(ApiClientTest, HttpsToAPlainHttpServerIsUnreachable) {
  ClientConfig config = configFor(server);
  config.server = "https://" + config.server.substr(std::string("http://").size());
  ApiClient api(config);
  const auto e = failure([&] { api.whoami(); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Unreachable);
  EXPECT_NE(std::string(e.what()).find("TLS"), std::string::npos) << e.what();
}

TEST(ApiClientUrlTest, NothingListeningIsUnreachable) {
  ClientConfig config;
  config.server = "http://127.0.0.1:" + std::to_string(freePort());
  config.token = "t";
  ApiClient api(config);
  const auto e = failure([&] { api.whoami(); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Unreachable);
  EXPECT_NE(std::string(e.what()).find("cannot reach the Tessera server at " + config.server), std::string::npos)
      << e.what();
}

TEST(ApiClientUrlTest, UnsupportedUrlIsAConfigError) {
  ClientConfig config;
  config.server = "ftp://example.org";
  const auto e = failure([&] { ApiClient api(config); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Config);
  EXPECT_NE(std::string(e.what()).find("ftp://example.org"), std::string::npos) << e.what();
}

TEST(ApiClientUrlTest, MissingCaCertificateIsAConfigError) {
  ClientConfig config;
  config.server = "https://127.0.0.1:1";
  config.caCert = "/nonexistent/ca.pem";
  const auto e = failure([&] { ApiClient api(config); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Config);
  EXPECT_NE(std::string(e.what()).find("/nonexistent/ca.pem"), std::string::npos) << e.what();
}

// Sets or clears an environment variable for one test, restoring it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

void writeText(const std::filesystem::path& path, const std::string& text) { std::ofstream(path) << text; }

TEST(ClientConfigTest, FlagsOverFileOverEnvironmentOverDefaults) {
  test::ScratchDir dir;
  const auto file = dir.path() / "client.json";
  writeText(file, R"({"server": "http://file:1", "task": "brain", "home": "state"})");
  ScopedEnv server("TESSERA_SERVER", "http://env:2");
  ScopedEnv token("TESSERA_TOKEN", "env-token");
  ScopedEnv home("TESSERA_HOME", "/env/home");

  const ClientConfig fromFile = ClientConfig::load(file);
  EXPECT_EQ(fromFile.server, "http://file:1");          // file over environment
  EXPECT_EQ(fromFile.token, "env-token");               // environment where the file is silent
  EXPECT_EQ(fromFile.home, dir.path() / "state");       // relative to the file
  EXPECT_EQ(fromFile.task, "brain");

  ConfigLayer flags;
  flags.server = "http://flag:3";
  const ClientConfig withFlags = mergeConfig(flags, readConfigFile(file), configFromEnvironment());
  EXPECT_EQ(withFlags.server, "http://flag:3");

  const ClientConfig envOnly = mergeConfig({}, {}, configFromEnvironment());
  EXPECT_EQ(envOnly.server, "http://env:2");
  EXPECT_EQ(envOnly.home, "/env/home");
}

TEST(ClientConfigTest, DefaultsApplyWhenNothingIsSet) {
  ScopedEnv server("TESSERA_SERVER", nullptr);
  ScopedEnv token("TESSERA_TOKEN", nullptr);
  ScopedEnv home("TESSERA_HOME", nullptr);
  ScopedEnv userHome("HOME", "/home/site");
  const ClientConfig config = mergeConfig({}, {}, configFromEnvironment());
  EXPECT_EQ(config.server, "http://127.0.0.1:8470");
  EXPECT_EQ(config.token, "");
  EXPECT_EQ(config.home, std::filesystem::path("/home/site/.tessera"));
}

TEST(ClientConfigTest, DefaultConfigFileIsInTheHomeFolder) {
  test::ScratchDir dir;
  EXPECT_FALSE(defaultConfigFile(dir.path().string()));
  writeText(dir.path() / "client.json", "{}");
  EXPECT_EQ(defaultConfigFile(dir.path().string()), dir.path() / "client.json");
  ScopedEnv home("TESSERA_HOME", dir.path().c_str());
  EXPECT_EQ(defaultConfigFile(std::nullopt), dir.path() / "client.json");
}

TEST(ClientConfigTest, BadJsonNamesTheFile) {
  test::ScratchDir dir;
  const auto file = dir.path() / "client.json";
  writeText(file, R"({"server": "http://x:1",)");
  const auto e = failure([&] { ClientConfig::load(file); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Config);
  EXPECT_NE(std::string(e.what()).find(file.string() + ": not valid JSON"), std::string::npos) << e.what();
}

TEST(ClientConfigTest, WrongTypeNamesTheKey) {
  test::ScratchDir dir;
  const auto file = dir.path() / "client.json";
  writeText(file, R"({"token": 12345})");
  const auto e = failure([&] { ClientConfig::load(file); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Config);
  EXPECT_NE(std::string(e.what()).find("key 'token' must be a string"), std::string::npos) << e.what();
}

TEST(ClientConfigTest, UnknownKeyIsRefused) {
  test::ScratchDir dir;
  const auto file = dir.path() / "client.json";
  writeText(file, R"({"tokn": "abc"})");
  const auto e = failure([&] { ClientConfig::load(file); });
  EXPECT_NE(std::string(e.what()).find("unknown key 'tokn'"), std::string::npos) << e.what();
}

TEST(ClientConfigTest, MissingFileIsNamed) {
  const auto e = failure([&] { ClientConfig::load("/nonexistent/client.json"); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Config);
  EXPECT_NE(std::string(e.what()).find("/nonexistent/client.json"), std::string::npos) << e.what();
}

TEST(ModelCacheTest, StoreAndLoadRoundTrip) {
  test::ScratchDir home;
  ModelCache cache(home.path());
  const model::Model model = test::tinyModel("brain", 3);
  EXPECT_FALSE(cache.latestCached("brain"));
  const auto path = cache.store("brain", 3, model::encodeModel(model));
  EXPECT_EQ(path, home.path() / "models" / "brain" / "generation-3.tsm");
  EXPECT_TRUE(cache.contains("brain", 3));
  EXPECT_EQ(cache.load("brain", 3).weightsSha256(), model.weightsSha256());
  cache.store("brain", 5, model::encodeModel(test::tinyModel("brain", 5)));
  EXPECT_EQ(cache.generations("brain"), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(cache.latestCached("brain"), 5);
}

TEST(ModelCacheTest, FlippedByteIsDetected) {
  test::ScratchDir home;
  ModelCache cache(home.path());
  const auto path = cache.store("brain", 3, model::encodeModel(test::tinyModel()));
  std::string bytes = common::readFile(path);
  bytes[bytes.size() - 3] ^= 0x40;  // inside the last weight value
  common::writeFileAtomically(path, bytes);
  const auto e = failure([&] { cache.load("brain", 3); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::Checksum);
  EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
}

TEST(ModelCacheTest, RefusesBytesThatAreNotTheGeneration) {
  test::ScratchDir home;
  ModelCache cache(home.path());
  EXPECT_EQ(failure([&] { cache.store("brain", 3, "not a model"); }).code(), tessera::ErrorCode::Checksum);
  EXPECT_EQ(failure([&] { cache.store("brain", 4, model::encodeModel(test::tinyModel("brain", 3))); }).code(), tessera::ErrorCode::Checksum);
  EXPECT_FALSE(cache.latestCached("brain"));
}

TEST(ModelCacheTest, MissingGenerationIsNotFound) {
  test::ScratchDir home;
  EXPECT_EQ(failure([&] { ModelCache(home.path()).load("brain", 1); }).code(), tessera::ErrorCode::NotFound);
}

TEST(ModelCacheTest, TaskNamesStayInsideTheCache) {
  // The one task-name rule: names that could leave the cache folder are refused, not encoded.
  for (const std::string task : {"..", ".", "../../etc", "a/b", "brain tumour", "Brain", "latest"}) {
    EXPECT_EQ(failure([&] { taskFolderName(task); }).code(), tessera::ErrorCode::BadRequest) << task;
  }
  test::ScratchDir home;
  EXPECT_EQ(failure([&] { ModelCache(home.path()).store("..", 3, "x"); }).code(), tessera::ErrorCode::BadRequest);
  EXPECT_EQ(taskFolderName("brain-mr_1.2"), "brain-mr_1.2");
  EXPECT_EQ(failure([] { taskFolderName(""); }).code(), tessera::ErrorCode::Config);
}

TEST(ClientConfigTest, TaskSettingFollowsTheTaskNameRule) {
  ConfigLayer flags;
  flags.task = "../..";
  flags.home = "/tmp";
  const auto e = failure([&] { mergeConfig(flags, {}, {}); });
  EXPECT_EQ(e.code(), tessera::ErrorCode::BadRequest);
  EXPECT_NE(std::string(e.what()).find("'../..' is not a valid task name"), std::string::npos) << e.what();
  flags.task = "brain-mr";
  EXPECT_EQ(mergeConfig(flags, {}, {}).task, "brain-mr");
  flags.task = "";
  EXPECT_EQ(mergeConfig(flags, {}, {}).task, "") << "empty: no task set";
}

}  // namespace
}  // namespace tessera::client
