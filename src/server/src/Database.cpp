#include "Database.h"

#include <utility>

#include "tessera/common/Error.h"

namespace tessera::server::db {

namespace fs = std::filesystem;

namespace {

// The API's error code for a failed step: constraint violations are the caller's fault or a
// race with another request, everything else is the storage's.
ErrorCode codeFor(int extendedRc) {
  switch (extendedRc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return ErrorCode::Conflict;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return ErrorCode::NotFound;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
      return ErrorCode::BadRequest;
    default:
      return ErrorCode::Io;
  }
}

}  // namespace

// ---- Statement ------------------------------------------------------------------------------

Statement::Statement(Connection& connection, const char* purpose, const char* sql)
    : connection_(connection), purpose_(purpose) {
  const int rc = sqlite3_prepare_v2(connection_.handle(), sql, -1, &stmt_, nullptr);
  if (rc != SQLITE_OK) fail("preparing", rc);
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::check(int rc) {
  if (rc != SQLITE_OK) fail("binding a parameter for", rc);
  return *this;
}

Statement& Statement::bind(int index, int64_t value) { return check(sqlite3_bind_int64(stmt_, index, value)); }
Statement& Statement::bind(int index, double value) { return check(sqlite3_bind_double(stmt_, index, value)); }
Statement& Statement::bind(int index, const std::string& value) {
  return check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}
Statement& Statement::bindNull(int index) { return check(sqlite3_bind_null(stmt_, index)); }

Statement& Statement::bindJson(int index, const nlohmann::json& value) {
  if (value.is_null()) return bindNull(index);
  // Replacing invalid UTF-8 instead of throwing: metrics come from sites, and a stray byte in
  // a free-text field must not turn an accepted upload into a server error.
  return bind(index, value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail("running", rc);
}

void Statement::run() {
  while (step()) {
  }
}

Statement& Statement::reset() {
  // sqlite3_reset repeats the last step's error, which run() has already reported.
  sqlite3_reset(stmt_);
  return *this;
}

int64_t Statement::integer(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::real(int column) const { return sqlite3_column_double(stmt_, column); }
bool Statement::isNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

std::string Statement::text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::optional<int64_t> Statement::optionalInteger(int column) const {
  return isNull(column) ? std::nullopt : std::optional<int64_t>(integer(column));
}

std::optional<double> Statement::optionalReal(int column) const {
  return isNull(column) ? std::nullopt : std::optional<double>(real(column));
}

nlohmann::json Statement::json(int column) const {
  if (isNull(column)) return nullptr;
  const std::string raw = text(column);
  auto parsed = nlohmann::json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    throw Error(ErrorCode::Corrupt, std::string("registry ") + purpose_ + ": column '" +
                                      sqlite3_column_name(stmt_, column) + "' holds invalid JSON: " + raw.substr(0, 80));
  }
  return parsed;
}

void Statement::fail(const char* stage, int rc) const {
  // With extended result codes on, sqlite3_step returns e.g. SQLITE_CONSTRAINT_UNIQUE directly.
  throw Error(codeFor(rc), std::string("registry ") + stage + " '" + purpose_ +
                                      "' failed: " + sqlite3_errmsg(connection_.handle()));
}

// ---- Connection -----------------------------------------------------------------------------

Connection::Connection(const fs::path& file) : path_(file) {
  const int rc = sqlite3_open_v2(path_.c_str(), &handle_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = handle_ ? sqlite3_errmsg(handle_) : "out of memory";
    sqlite3_close(handle_);
    throw Error(ErrorCode::Io, path_.string() + ": " + message);
  }
  sqlite3_extended_result_codes(handle_, 1);
  sqlite3_busy_timeout(handle_, 5000);
  try {
    // SQLite opens the file lazily, so the first statement is where an unusable path shows.
    {
      Statement wal(*this, "switching to WAL journaling", "PRAGMA journal_mode=WAL");
      // The answer is the mode now in force; a filesystem without shared memory says "delete".
      if (!wal.step() || wal.text(0) != "wal") {
        throw Error(ErrorCode::Io, "cannot use WAL journaling (journal mode is '" + wal.text(0) + "')");
      }
    }
    exec("requiring full fsync on commit", "PRAGMA synchronous=FULL");
    exec("enabling foreign keys", "PRAGMA foreign_keys=ON");
  } catch (const Error& e) {
    sqlite3_close(handle_);
    handle_ = nullptr;
    throw Error(ErrorCode::Io, path_.string() + ": " + e.what());
  }
}

Connection::~Connection() {
  // Statements are all scoped, so none is open here; close_v2 would defer if one were.
  sqlite3_close_v2(handle_);
}

void Connection::exec(const char* purpose, const char* sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(handle_, sql, nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    const std::string message = error ? error : sqlite3_errmsg(handle_);
    sqlite3_free(error);
    throw Error(codeFor(rc), std::string("registry ") + purpose + " failed: " + message);
  }
}

void Connection::backupTo(const fs::path& file) {
  std::error_code ec;
  if (fs::exists(file, ec)) throw Error(ErrorCode::Io, file.string() + ": exists; a backup is written to a new file");
  sqlite3* destination = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &destination, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  auto fail = [&](const std::string& what) {
    const std::string message = destination ? sqlite3_errmsg(destination) : "out of memory";
    sqlite3_close(destination);
    fs::remove(file, ec);
    throw Error(ErrorCode::Io, file.string() + ": " + what + ": " + message);
  };
  if (rc != SQLITE_OK) fail("cannot create the backup");
  sqlite3_backup* backup = sqlite3_backup_init(destination, "main", handle_, "main");
  if (!backup) fail("cannot start the backup of " + path_.string());
  // All pages in one step: one read transaction on the source, so the copy is one consistent
  // state (in WAL mode that read does not hold back the server's writers).
  do {
    rc = sqlite3_backup_step(backup, -1);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(50);
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE || sqlite3_errcode(destination) != SQLITE_OK) fail("backing up " + path_.string() + " failed");
  if (sqlite3_close(destination) != SQLITE_OK) {
    destination = nullptr;
    fs::remove(file, ec);
    throw Error(ErrorCode::Io, file.string() + ": closing the backup failed");
  }
}

void Connection::rollback() noexcept {
  // Some errors (disk full, I/O) make SQLite roll back by itself; a second ROLLBACK would fail.
  if (!sqlite3_get_autocommit(handle_)) sqlite3_exec(handle_, "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace tessera::server::db
