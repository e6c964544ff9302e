#pragma once
// Body parts as DICOM codes them: the Body Part Examined term (CID 4031 style, upper case) and
// its SNOMED CT concept for Anatomic Region Sequence. A small table of the regions segmentation
// tasks commonly cover; anything else is written as Body Part Examined only.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/model/TaskInfo.h"

namespace tessera::dicom {

struct AnatomyEntry {
  std::string bodyPart;        // "BRAIN"
  model::CodedConcept region;  // SCT 12738006 "Brain"
};

const std::vector<AnatomyEntry>& anatomyTable();

// Looks a task's anatomy up by body part term or code meaning, case-insensitively
// ("brain", "BRAIN", "Lung" …); std::nullopt when it is not in the table.
std::optional<AnatomyEntry> findAnatomy(std::string_view anatomy);

// `text` as a valid Body Part Examined value (CS: upper case, digits, space, '_', ≤ 16
// characters); other characters become '_'. Empty for empty text.
std::string bodyPartTerm(std::string_view text);

}  // namespace tessera::dicom
