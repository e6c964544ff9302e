#pragma once
// How registry rows become the public records: one SELECT column list and one reader per
// record type, shared by every query that returns that type.

#include <string>
#include <vector>

#include "Database.h"
#include "tessera/server/Registry.h"

namespace tessera::server::rows {

double now();  // seconds since the epoch

// Each constant is "SELECT <columns> FROM <table> <alias> " ready for a WHERE clause.
extern const std::string kModelSelect;       // alias m
extern const std::string kGenerationSelect;  // alias g
extern const std::string kRejectedSelect;    // alias r
extern const std::string kUpdateSelect;      // alias u (joined with sites s)

ModelRecord readModel(const db::Statement& q);
GenerationRecord readGeneration(const db::Statement& q);
RejectedCandidate readRejected(const db::Statement& q);
UpdateRecord readUpdate(const db::Statement& q);
Site readSite(const db::Statement& q);  // columns id, name, role, created_at

// The JSON text of an id list column; "corrupt" unless it is an array of integers.
std::vector<int64_t> idList(const nlohmann::json& value, const std::string& where);

}  // namespace tessera::server::rows
