#pragma once
// Deterministic UIDs for model objects: the same task always lands in the same study, the same
// generation in the same series, and the same weights in the same instance, so exporting or
// pushing twice never creates duplicates in a PACS. UIDs are "2.25." followed by the decimal
// value of a name-based UUID (version 8 bits set) made from a SHA-256, as PS3.5 B.2 allows.

#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::dicom {

// "2.25.<decimal>" from the first 128 bits of SHA-256(`name`), with UUID version/variant bits.
std::string uidFromName(std::string_view name);

std::string modelStudyUid(std::string_view task);
std::string modelSeriesUid(std::string_view task, int64_t generation);
std::string modelInstanceUid(std::string_view task, int64_t generation, std::string_view weightsSha256);

// The documented Patient ID of a task's model study: "TESSERA-" + task (task names are at most
// 64 characters, so long ones are cut and suffixed with a hash to stay within LO's 64).
std::string modelPatientId(std::string_view task);

}  // namespace tessera::dicom
