#include "SiteGate.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"

namespace tessera::server {

namespace fs = std::filesystem;

namespace {

std::mutex& gateMutex() {
  static std::mutex m;
  return m;
}

std::string fixed4(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", v);
  return text;
}

std::optional<PendingCandidate> readPending(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  try {
    return pendingFromJson(nlohmann::json::parse(text.str()));
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Corrupt, file.string() + ": " + e.what());
  }
}

void writePending(const fs::path& file, const PendingCandidate& c) {
  fs::create_directories(file.parent_path());
  common::writeFileAtomically(file, toJson(c).dump(2) + "\n");
}

}  // namespace

SiteGateDecision decideOnSites(const std::map<std::string, SiteReport>& reports, double tolerance) {
  SiteGateDecision d;
  double worstDrop = -INFINITY;
  std::string worstSite;
  for (const auto& [site, r] : reports) {
    d.sites.push_back({{"site", site}, {"dice_current", r.diceCurrent}, {"dice_candidate", r.diceCandidate}, {"cases", r.cases}});
    const double drop = r.diceCurrent - r.diceCandidate;
    if (drop > worstDrop) {
      worstDrop = drop;
      worstSite = site;
    }
  }
  if (!worstSite.empty() && worstDrop > tolerance) {
    const auto& r = reports.at(worstSite);
    d.publish = false;
    d.reason = "site '" + worstSite + "': Dice on its held-out cases " + fixed4(r.diceCurrent) + " -> " + fixed4(r.diceCandidate) +
               " drops by more than the worst-site tolerance " + fixed4(tolerance);
  }
  return d;
}

SiteGate::SiteGate(const fs::path& dataDir, int64_t modelId) : file_(dataDir / "site-gate" / (std::to_string(modelId) + ".json")) {}

std::optional<PendingCandidate> SiteGate::pending() const {
  std::lock_guard lock(gateMutex());
  return readPending(file_);
}

void SiteGate::hold(const PendingCandidate& c) const {
  std::lock_guard lock(gateMutex());
  writePending(file_, c);
}

void SiteGate::clear() const {
  std::lock_guard lock(gateMutex());
  std::error_code ec;
  fs::remove(file_, ec);
}

PendingCandidate SiteGate::report(const std::string& site, const std::string& weightsSha256, const SiteReport& r) const {
  std::lock_guard lock(gateMutex());
  auto c = readPending(file_);
  if (!c) throw Error(ErrorCode::NotFound, "no candidate is waiting for site reports");
  if (c->weightsSha256 != weightsSha256) {
    throw Error(ErrorCode::Conflict, "the pending candidate has weights " + c->weightsSha256 + ", not " + weightsSha256 +
                                         " (fetch /candidate again)");
  }
  c->reports[site] = r;
  writePending(file_, *c);
  return *c;
}

nlohmann::json toJson(const PendingCandidate& c) {
  nlohmann::json reports = nlohmann::json::object();
  for (const auto& [site, r] : c.reports) {
    reports[site] = {{"dice_candidate", r.diceCandidate}, {"dice_current", r.diceCurrent}, {"cases", r.cases}};
  }
  return {{"base_generation", c.baseGeneration}, {"weights_sha256", c.weightsSha256}, {"weights_bytes", c.weightsBytes},
          {"parameters", c.parameters},          {"strategy", c.strategy},            {"update_ids", c.updateIds},
          {"validation", c.validation},          {"created_at", c.createdAt},         {"reports", reports}};
}

PendingCandidate pendingFromJson(const nlohmann::json& j) {
  PendingCandidate c;
  c.baseGeneration = j.at("base_generation").get<int64_t>();
  c.weightsSha256 = j.at("weights_sha256").get<std::string>();
  c.weightsBytes = j.at("weights_bytes").get<int64_t>();
  c.parameters = j.at("parameters").get<int64_t>();
  c.strategy = j.at("strategy").get<std::string>();
  c.updateIds = j.at("update_ids").get<std::vector<int64_t>>();
  c.validation = j.at("validation");
  c.createdAt = j.at("created_at").get<double>();
  for (const auto& [site, r] : j.at("reports").items()) {
    c.reports[site] = {r.at("dice_candidate").get<double>(), r.at("dice_current").get<double>(), r.at("cases").get<int64_t>()};
  }
  return c;
}

}  // namespace tessera::server
