#pragma once
// A thin RAII layer over the SQLite C API for the registry: one connection, prepared statements
// with bound parameters, transactions that roll back on any exception. Every SQLite failure
// becomes a Error whose message says what the registry was doing.
// Not thread-safe by itself: Registry serialises all use behind its mutex.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace tessera::server::db {

class Connection;

class Statement {
 public:
  // `purpose` names the operation in error messages ("adding a site").
  Statement(Connection& connection, const char* purpose, const char* sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, const std::string& value);
  Statement& bindNull(int index);
  template <typename T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bindNull(index);
  }
  // JSON null becomes SQL NULL; anything else its compact text.
  Statement& bindJson(int index, const nlohmann::json& value);

  // True while a row is available. Constraint failures map to the API's codes: UNIQUE and
  // PRIMARY KEY → conflict, FOREIGN KEY → not_found, CHECK and NOT NULL → bad_request.
  bool step();
  // For statements that return no rows.
  void run();
  // Ready to run again; bound parameters are kept.
  Statement& reset();

  int64_t integer(int column) const;
  double real(int column) const;
  bool isNull(int column) const;
  std::string text(int column) const;  // NULL reads as ""
  std::optional<int64_t> optionalInteger(int column) const;
  std::optional<double> optionalReal(int column) const;
  // NULL reads as JSON null; text that does not parse is Error("corrupt").
  nlohmann::json json(int column) const;

 private:
  [[noreturn]] void fail(const char* stage, int rc) const;
  Statement& check(int rc);

  Connection& connection_;
  const char* purpose_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Connection {
 public:
  // Opens or creates `file` with WAL, synchronous=FULL, foreign keys and a 5 s busy timeout.
  // Error(ErrorCode::Io, "<file>: <sqlite message>") when that fails.
  explicit Connection(const std::filesystem::path& file);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return handle_; }
  const std::filesystem::path& path() const { return path_; }
  void exec(const char* purpose, const char* sql);
  int changes() const { return sqlite3_changes(handle_); }
  int64_t lastInsertId() const { return sqlite3_last_insert_rowid(handle_); }
  // SQLite's online backup API: one consistent copy of the whole database into a new `file`,
  // taken while other connections (the server) keep writing. Error(Io) naming `file`.
  void backupTo(const std::filesystem::path& file);

  // BEGIN IMMEDIATE … COMMIT around `body`: the write lock is taken up front, so a concurrent
  // writer (another process on the same file) waits at BEGIN instead of failing mid-way.
  template <typename Body>
  auto transaction(Body&& body) {
    return wrapped("BEGIN IMMEDIATE", std::forward<Body>(body));
  }
  // A read transaction, so several SELECTs see one consistent state.
  template <typename Body>
  auto snapshot(Body&& body) {
    return wrapped("BEGIN DEFERRED", std::forward<Body>(body));
  }

 private:
  template <typename Body>
  auto wrapped(const char* begin, Body&& body) {
    exec("starting a transaction", begin);
    try {
      if constexpr (std::is_void_v<decltype(body())>) {
        body();
        exec("committing", "COMMIT");
      } else {
        auto result = body();
        exec("committing", "COMMIT");
        return result;
      }
    } catch (...) {
      rollback();
      throw;
    }
  }
  void rollback() noexcept;

  sqlite3* handle_ = nullptr;
  std::filesystem::path path_;
};

}  // namespace tessera::server::db
