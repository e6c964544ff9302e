#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <pthread.h>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "SiteAdminCommands.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Ed25519.h"
#include "tessera/model/Model.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/NormStatistics.h"
#include "tessera/server/PrivacyLedger.h"
#include "tessera/server/AdminTasks.h"
#include "tessera/server/Backup.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/FederationServer.h"
#include "tessera/server/HighWater.h"
#include "tessera/server/Registry.h"

namespace tessera::cli {

namespace fs = std::filesystem;

namespace {

// "127.0.0.1:8470", "0.0.0.0:0", ":8470" → host and port.
std::pair<std::string, int> parseListen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("--listen '" + text + "' is not HOST:PORT");
  const std::string host = colon == 0 ? "127.0.0.1" : text.substr(0, colon);
  int port = -1;
  try {
    port = std::stoi(text.substr(colon + 1));
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) throw std::invalid_argument("--listen '" + text + "': port must be 0..65535");
  return {host, port};
}

std::string timestamp() {
  char text[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return text;
}

// Admin commands that read or change an existing data folder must not create one (a typo in
// --data would otherwise leave an empty registry behind and report "no model").
void requireDataFolder(const std::string& data) {
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(data) / "registry.sqlite3", ec)) {
    throw Error(ErrorCode::NotFound, data + ": holds no registry.sqlite3 (not a server data folder; see --data)");
  }
}

// `admin check`: the registry's own consistency (file, rows, blobs) and the high-water mark.
int checkDataFolder(const std::string& data) {
  requireDataFolder(data);
  const server::Registry registry(data);
  const server::BlobStore blobs(data);
  std::vector<std::string> problems = registry.checkConsistency(blobs);
  for (const auto& p : registry.checkSignatures()) problems.push_back(p);
  for (const auto& p : server::highWaterProblems(registry, data)) problems.push_back(p);
  const auto mark = registry.highWater();
  if (problems.empty()) {
    std::cout << data << ": ok (" << mark.generations.size() << " model(s), highest update id " << mark.updateId << ")\n";
    return 0;
  }
  for (const auto& p : problems) std::cout << "problem: " << p << "\n";
  std::cout.flush();
  throw Error(ErrorCode::Corrupt, data + ": " + std::to_string(problems.size()) + " problem(s) found (listed above)");
}

int backupDataFolder(const std::string& data, const std::string& out) {
  const auto r = server::backupDataFolder(data, out);
  char size[32];
  std::snprintf(size, sizeof size, "%.1f MiB", static_cast<double>(r.blobBytes) / (1 << 20));
  std::cout << "backed up " << data << " to " << r.out.string() << "\n"
            << "  registry.sqlite3: " << r.models << " model(s), " << r.generations << " generation(s), " << r.updates
            << " update(s) (SQLite online backup)\n"
            << "  blobs: " << (r.blobsLinked + r.blobsCopied) << " (" << r.blobsLinked << " hard-linked, " << r.blobsCopied
            << " copied), " << size << "\n"
            << "  validation: " << r.validationFiles << " file(s)\n"
            << "  highwater.json: written for the backup's registry\n";
  if (r.problems.empty()) return 0;
  for (const auto& p : r.problems) std::cout << "problem: " << p << "\n";
  std::cout.flush();
  throw Error(ErrorCode::Corrupt, data + ": the backup lacks " + std::to_string(r.problems.size()) +
                                      " blob(s) the registry needs (listed above)");
}

void addAdminCommands(CLI::App& admin, std::vector<std::pair<CLI::App*, Action>>& actions) {
  admin.require_subcommand(1);
  struct Args {
    std::string data = "tessera-server";
    std::string name, role = "site", model, strategy = "fedavg", task, cases, policy, out, publicKey;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto dataOption = [a](CLI::App* sub) {
    sub->add_option("--data", a->data, "The server's data folder")->capture_default_str();
  };

  auto* addSite = admin.add_subcommand("add-site", "Register a site (or an admin) and print its token once");
  addSite->add_option("name", a->name, "Site name (letters, digits, . _ -)")->required();
  addSite->add_option("--role", a->role, "site or admin")->capture_default_str()->check(CLI::IsMember({"site", "admin"}));
  addSite->add_option("--public-key", a->publicKey,
                      "The site's Ed25519 public key (.pub file from `tessera client keygen`, or 64 hex digits): its "
                      "updates must then be signed");
  dataOption(addSite);
  actions.emplace_back(addSite, [a] {
    // Checked before the site exists, so that a bad key leaves nothing half-registered.
    const std::string key = a->publicKey.empty() ? "" : common::readPublicKey(a->publicKey, "--public-key");
    fs::create_directories(a->data);
    server::Registry registry(a->data);
    const auto [site, token] = registry.addSite(a->name, a->role);
    if (!key.empty()) registry.setSitePublicKey(site.name, key);
    std::cerr << "registered " << site.role << " '" << site.name << "'; its token is shown only now:\n";
    std::cout << token << std::endl;
    return 0;
  });

  auto* seed = admin.add_subcommand("seed", "Register a model file as the first generation of its task");
  seed->add_option("--model", a->model, "A .tsm model file")->required();
  seed->add_option("--strategy", a->strategy, "Merge strategy: dafne, fedavg, fedbn, trimmed-mean, median, fedadam, fedyogi")->capture_default_str();
  dataOption(seed);
  actions.emplace_back(seed, [a] {
    fs::create_directories(a->data);
    server::Registry registry(a->data);
    server::BlobStore blobs(a->data);
    const auto model = model::loadModel(a->model);
    const auto out = server::seedModel(registry, blobs, model, a->strategy);
    std::cout << "seeded task '" << out["task"].get<std::string>() << "' at generation " << out["generation"]
              << " (" << out["parameters"] << " parameters, strategy " << out["strategy"].get<std::string>() << ")\n";
    return 0;
  });

  auto* validation = admin.add_subcommand("set-validation", "Give the server validation cases for a task's gate");
  validation->add_option("--task", a->task, "Task name (an existing model's)")->required();
  validation->add_option("--cases", a->cases, "Folder with images/NAME.nii.gz and labels/NAME.nii.gz")->required();
  dataOption(validation);
  actions.emplace_back(validation, [a] {
    const int n = server::setValidationCases(a->data, a->task, a->cases);
    std::cout << "task '" << a->task << "': " << n << " validation case(s) stored\n";
    return 0;
  });

  auto* policy = admin.add_subcommand("policy", "Show or change a task's merge policy");
  policy->add_option("--task", a->task, "Task name")->required();
  policy->add_option("--set", a->policy, "JSON object of fields to change, e.g. '{\"round_size\": 5}'");
  dataOption(policy);
  actions.emplace_back(policy, [a] {
    requireDataFolder(a->data);
    server::Registry registry(a->data);
    const auto patch = a->policy.empty() ? nlohmann::json::object() : nlohmann::json::parse(a->policy);
    std::cout << server::updatePolicy(registry, a->task, patch).dump(2) << "\n";
    return 0;
  });

  auto* privacy = admin.add_subcommand("privacy", "Show the differential-privacy epsilon each site has spent on a task");
  privacy->add_option("--task", a->task, "Task name")->required();
  privacy->add_flag("--json", a->json, "Print the report as JSON (what GET /v1/models/T/privacy answers)");
  dataOption(privacy);
  actions.emplace_back(privacy, [a] {
    requireDataFolder(a->data);
    server::Registry registry(a->data);
    const auto report = server::privacyReport(registry, a->task);
    if (a->json) {
      std::cout << report.dump(2) << "\n";
      return 0;
    }
    const auto& dp = report["dp"];
    std::printf("task '%s': dp mode %s, clip %g, noise multiplier %g, delta %g, budget %s\n", a->task.c_str(),
                dp["mode"].get<std::string>().c_str(), dp["clip"].get<double>(), dp["noise_multiplier"].get<double>(),
                dp["delta"].get<double>(),
                dp["epsilon_max"].get<double>() > 0 ? std::to_string(dp["epsilon_max"].get<double>()).c_str() : "none");
    std::printf("%-24s %9s %12s %12s\n", "site", "releases", "epsilon", "remaining");
    for (const auto& s : report["sites"]) {
      const auto value = [](const nlohmann::json& v) { return v.is_null() ? std::string("-") : std::to_string(v.get<double>()); };
      std::printf("%-24s %9d %12s %12s\n", s["site"].get<std::string>().c_str(), s["releases"].get<int>(),
                  s["epsilon"].is_null() ? "inf" : value(s["epsilon"]).c_str(), value(s["remaining"]).c_str());
    }
    return 0;
  });

  addSiteAdminCommands(admin, actions);

  auto* check = admin.add_subcommand(
      "check", "Check a data folder: registry file and rows, blobs, and that the registry is not behind highwater.json");
  dataOption(check);
  actions.emplace_back(check, [a] { return checkDataFolder(a->data); });

  auto* backup = admin.add_subcommand(
      "backup", "Copy a data folder (SQLite online backup + the blobs it names) into a new folder a server can run from");
  dataOption(backup);
  backup->add_option("--out", a->out, "New folder for the backup (must not exist, or be empty)")->required();
  actions.emplace_back(backup, [a] { return backupDataFolder(a->data, a->out); });
}

}  // namespace

Action addServerCommand(CLI::App& app) {
  struct Args {
    std::string data = "tessera-server";
    std::string listen = "127.0.0.1:8470";
    std::string tlsCert, tlsKey, portFile;
    int threads = 16;
    double headerSeconds = 10;
    double bodyGraceSeconds = 30;
    int connectionsPerAddress = 32;
    bool quiet = false;
    bool requireSignatures = false;
    std::string publishPacs, pacsAet = "TESSERA";
    double pacsRetrySeconds = 2;
  };
  auto a = std::make_shared<Args>();
  app.add_option("--data", a->data, "Data folder: registry.sqlite3, blobs/, validation/")->capture_default_str();
  app.add_option("--listen", a->listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  app.add_option("--tls-cert", a->tlsCert, "PEM certificate: serve HTTPS");
  app.add_option("--tls-key", a->tlsKey, "PEM private key for --tls-cert");
  app.add_option("--threads", a->threads, "HTTP worker threads")->capture_default_str()->check(CLI::Range(2, 256));
  app.add_option("--port-file", a->portFile, "Write the port once listening (for scripts using port 0)");
  app.add_option("--header-timeout", a->headerSeconds, "Seconds a client has to send a request's header")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 3600.0));
  app.add_option("--body-grace", a->bodyGraceSeconds, "Seconds a body may take, plus 1 s per 64 KiB")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 86400.0));
  app.add_option("--max-connections-per-address", a->connectionsPerAddress, "Connections one client address may hold")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_flag("--quiet", a->quiet, "Log only errors");
  app.add_flag("--require-signatures", a->requireSignatures,
               "Accept only signed updates (without it, only sites with a registered public key must sign)");
  app.add_option("--publish-pacs", a->publishPacs,
                 "Store every published generation in this PACS: AET@HOST:PORT or dicomweb+http(s)://HOST:PORT/PATH");
  app.add_option("--pacs-aet", a->pacsAet, "Our AE title towards --publish-pacs")->capture_default_str();
  app.add_option("--pacs-retry", a->pacsRetrySeconds, "Seconds before the first retry of a failed store (doubles up to 300)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 300.0));
  app.require_subcommand(0, 1);
  auto* admin = app.add_subcommand("admin", "Operator tasks on the server's data folder (run on the server machine)");
  auto adminActions = std::make_shared<std::vector<std::pair<CLI::App*, Action>>>();
  addAdminCommands(*admin, *adminActions);

  return [a, admin, adminActions] {
    if (admin->parsed()) {
      for (auto& [sub, action] : *adminActions) {
        if (sub->parsed()) return action();
      }
      return 2;
    }
    // Signals go to one waiting thread so that the server can stop cleanly.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    // A client hanging up mid-response must cost that response, not the server: this httplib
    // version writes to sockets without MSG_NOSIGNAL.
    std::signal(SIGPIPE, SIG_IGN);

    server::ServerOptions o;
    o.dataDir = a->data;
    std::tie(o.host, o.port) = parseListen(a->listen);
    o.tlsCert = a->tlsCert;
    o.tlsKey = a->tlsKey;
    o.threads = a->threads;
    o.headerSeconds = a->headerSeconds;
    o.bodyGraceSeconds = a->bodyGraceSeconds;
    o.connectionsPerAddress = a->connectionsPerAddress;
    o.requireSignatures = a->requireSignatures;
    o.publishPacs = a->publishPacs;
    o.pacsCallingAet = a->pacsAet;
    o.pacsRetrySeconds = a->pacsRetrySeconds;
    o.scorer = [](const model::Model& m, const std::vector<model::TrainingCase>& cases) { return nn::meanDice(m, cases); };
    o.normAdaptedScorer = [](const model::Model& m, const std::vector<model::TrainingCase>& cases) {
      model::Model adapted = m;
      std::vector<image::Volume> images;
      for (const auto& c : cases) images.push_back(c.image);
      nn::recomputeNormStatistics(adapted, images);
      return nn::meanDice(adapted, cases);
    };
    const bool quiet = a->quiet;
    o.log = [quiet](const std::string& line) {
      if (!quiet) std::cerr << "[" << timestamp() << "] " << line << std::endl;
    };
    server::FederationServer srv(o);
    srv.start();
    const std::string scheme = a->tlsCert.empty() ? "http" : "https";
    std::cerr << "tessera server: listening on " << scheme << "://" << o.host << ":" << srv.port() << ", data in "
              << fs::absolute(a->data).string() << std::endl;
    if (!a->portFile.empty()) common::writeFileAtomically(a->portFile, std::to_string(srv.port()) + "\n");
    int received = 0;
    sigwait(&signals, &received);
    std::cerr << "tessera server: stopping (signal " << received << ")" << std::endl;
    srv.stop();
    srv.wait();
    return 0;
  };
}

}  // namespace tessera::cli
