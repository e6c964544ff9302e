// Registry: usage events reported by sites and the statistics the admin API shows.
#include <algorithm>
#include <cmath>

#include "Database.h"
#include "Rows.h"
#include "tessera/server/Registry.h"
#include "tessera/common/Error.h"

namespace tessera::server {

using nlohmann::json;

namespace {

void validate(const UsageEvent& e) {
  if (e.type != "predict" && e.type != "correct" && e.type != "train" && e.type != "push") {
    throw Error(ErrorCode::BadRequest, "event type '" + e.type.substr(0, 80) + "' is not one of predict, correct, train, push");
  }
  if (e.seconds && !std::isfinite(*e.seconds)) throw Error(ErrorCode::BadRequest, "event seconds is not finite");
  if (e.dice && !std::isfinite(*e.dice)) throw Error(ErrorCode::BadRequest, "event dice is not finite");
}

json optionalNumber(const db::Statement& q, int column) {
  return q.isNull(column) ? json(nullptr) : json(q.real(column));
}

}  // namespace

void Registry::addEvents(int64_t siteId, const std::vector<UsageEvent>& events) {
  for (const auto& e : events) validate(e);
  const double at = rows::now();
  std::lock_guard lock(mutex_);
  try {
    db_->transaction([&] {
      db::Statement q(*db_, "recording a usage event",
                      "INSERT INTO events(site_id, task, type, seconds, dice, at) VALUES(?,?,?,?,?,?)");
      for (const auto& e : events) {
        q.reset().bind(1, siteId).bind(2, e.task).bind(3, e.type).bind(4, e.seconds).bind(5, e.dice).bind(6, at).run();
      }
    });
  } catch (const Error& e) {
    if (e.code() != ErrorCode::NotFound) throw;
    throw Error(ErrorCode::NotFound, "events from site " + std::to_string(siteId) + ": no such site");
  }
}

double Registry::addEventsWithin(int64_t siteId, const std::vector<UsageEvent>& events, int64_t maxEvents,
                                 double windowSeconds) {
  for (const auto& e : events) validate(e);
  const double at = rows::now();
  const double since = at - windowSeconds;
  const auto count = static_cast<int64_t>(events.size());
  std::lock_guard lock(mutex_);
  try {
    return db_->transaction([&]() -> double {
      db::Statement n(*db_, "counting a site's recent events", "SELECT count(*) FROM events WHERE site_id = ? AND at > ?");
      n.bind(1, siteId).bind(2, since);
      n.step();
      const int64_t recent = n.integer(0);
      if (recent + count > maxEvents) {
        // They fit once the oldest `recent + count − maxEvents` of the window have left it.
        if (count > maxEvents) return windowSeconds;
        db::Statement t(*db_, "finding when a site's events leave the window",
                        "SELECT at FROM events WHERE site_id = ? AND at > ? ORDER BY at LIMIT 1 OFFSET ?");
        t.bind(1, siteId).bind(2, since).bind(3, recent + count - maxEvents - 1);
        const double leaves = t.step() ? t.real(0) + windowSeconds : at + windowSeconds;
        return std::max(leaves - at, 1e-3);
      }
      db::Statement q(*db_, "recording a usage event",
                      "INSERT INTO events(site_id, task, type, seconds, dice, at) VALUES(?,?,?,?,?,?)");
      for (const auto& e : events) {
        q.reset().bind(1, siteId).bind(2, e.task).bind(3, e.type).bind(4, e.seconds).bind(5, e.dice).bind(6, at).run();
      }
      return 0.0;
    });
  } catch (const Error& e) {
    if (e.code() != ErrorCode::NotFound) throw;
    throw Error(ErrorCode::NotFound, "events from site " + std::to_string(siteId) + ": no such site");
  }
}

json Registry::usageStats() const {
  std::lock_guard lock(mutex_);
  return db_->snapshot([&] {
    json events = json::array();
    db::Statement e(*db_, "aggregating usage events",
                    "SELECT e.type, e.task, coalesce(s.name, ''), count(*), avg(e.seconds), avg(e.dice) "
                    "FROM events e LEFT JOIN sites s ON s.id = e.site_id "
                    "GROUP BY e.type, e.task, e.site_id ORDER BY e.type, e.task, s.name");
    while (e.step()) {
      events.push_back({{"type", e.text(0)}, {"task", e.text(1)}, {"site", e.text(2)}, {"count", e.integer(3)},
                        {"mean_seconds", optionalNumber(e, 4)}, {"mean_dice", optionalNumber(e, 5)}});
    }

    json models = json::array();
    db::Statement m(*db_, "counting per-model work",
                    "SELECT m.task, "
                    "(SELECT count(*) FROM generations g WHERE g.model_id = m.id), "
                    "(SELECT count(*) FROM rejected_candidates r WHERE r.model_id = m.id), "
                    "(SELECT count(*) FROM updates u WHERE u.model_id = m.id AND u.status = 'queued'), "
                    "(SELECT count(*) FROM updates u WHERE u.model_id = m.id AND u.status = 'merged'), "
                    "(SELECT count(*) FROM updates u WHERE u.model_id = m.id AND u.status = 'discarded') "
                    "FROM models m ORDER BY m.id");
    while (m.step()) {
      models.push_back({{"task", m.text(0)},
                        {"generations", m.integer(1)},
                        {"rejected_candidates", m.integer(2)},
                        {"updates", {{"queued", m.integer(3)}, {"merged", m.integer(4)}, {"discarded", m.integer(5)}}}});
    }

    db::Statement s(*db_, "counting sites", "SELECT count(*) FROM sites WHERE role = 'site'");
    s.step();
    return json{{"events", events}, {"models", models}, {"sites", s.integer(0)}};
  });
}

}  // namespace tessera::server
