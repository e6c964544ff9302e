#pragma once
// The registry's durable high-water mark: DATA/highwater.json, {"update_id": N, "generations":
// {"<task>": G}}. It is raised (never lowered) right after each transaction that accepts an
// update, seeds a model or publishes a generation commits, and before the server answers, so
// it always records at least everything a site or an operator was told. It lives outside the
// SQLite files on purpose: losing registry.sqlite3-wal (an operator "cleaning up" after a
// crash) or putting an older registry.sqlite3 in place silently rolls the registry back, but
// not this file. At start the server compares the two and refuses to run on a registry that is
// behind, instead of answering "ok", forgetting queued updates and handing their ids out again.
//
// Writes are atomic (temporary file, fsync, rename, directory fsync) and serialised between
// threads and processes (`tessera server` and `tessera server admin …` on the same folder) by
// an flock on DATA/highwater.lock; each write keeps the maximum of the file and the new values,
// so concurrent writers can never lower it. A write that would change nothing is skipped.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera::server {

class Registry;

struct HighWaterMark {
  int64_t updateId = 0;                       // highest update id accepted (0: none)
  std::map<std::string, int64_t> generations;  // task → highest generation seeded or published

  bool operator==(const HighWaterMark&) const = default;
};

std::filesystem::path highWaterFile(const std::filesystem::path& dataDir);  // DATA/highwater.json

// Nullopt when the file does not exist (a data folder from before the mark, or a new one).
// Error(Corrupt) naming the file when it is not the JSON object described above.
std::optional<HighWaterMark> readHighWater(const std::filesystem::path& dataDir);

// Raises the file to at least `mark`, field by field. Error(Io) when it cannot be written.
void raiseHighWater(const std::filesystem::path& dataDir, const HighWaterMark& mark);

// One line per way the registry is behind the file ("… generation 3 of task 'brain' was
// published but the registry knows only 1 …"); empty when it is not (or there is no file).
std::vector<std::string> highWaterProblems(const Registry& registry, const std::filesystem::path& dataDir);

// What the server runs at start, before anything else touches the data folder: throws
// Error(Corrupt) with the first problem (one line: the files, the numbers, and what to do), and
// otherwise raises the file to the registry's own state (creating it when absent).
void enforceHighWater(const Registry& registry, const std::filesystem::path& dataDir);

}  // namespace tessera::server
