#include "tessera/dicom/AnatomyCodes.h"

#include <algorithm>
#include <cctype>

namespace tessera::dicom {

const std::vector<AnatomyEntry>& anatomyTable() {
  // SNOMED CT body structure concepts as DICOM's CID 4031 (Common Anatomic Regions) lists them.
  static const std::vector<AnatomyEntry> table{
      {"BRAIN", {"SCT", "12738006", "Brain"}},
      {"HEAD", {"SCT", "69536005", "Head"}},
      {"NECK", {"SCT", "45048000", "Neck"}},
      {"HEADNECK", {"SCT", "774007", "Head and Neck"}},
      {"CHEST", {"SCT", "51185008", "Thorax"}},
      {"LUNG", {"SCT", "39607008", "Lung"}},
      {"HEART", {"SCT", "80891009", "Heart"}},
      {"BREAST", {"SCT", "76752008", "Breast"}},
      {"ABDOMEN", {"SCT", "818981001", "Abdomen"}},
      {"LIVER", {"SCT", "10200004", "Liver"}},
      {"PANCREAS", {"SCT", "15776009", "Pancreas"}},
      {"SPLEEN", {"SCT", "78961009", "Spleen"}},
      {"KIDNEY", {"SCT", "64033007", "Kidney"}},
      {"PROSTATE", {"SCT", "41216001", "Prostate"}},
      {"PELVIS", {"SCT", "816092008", "Pelvis"}},
      {"SPINE", {"SCT", "421060004", "Spine"}},
      {"KNEE", {"SCT", "72696002", "Knee"}},
      {"HIP", {"SCT", "24136001", "Hip joint"}},
  };
  return table;
}

namespace {
std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

std::optional<AnatomyEntry> findAnatomy(std::string_view anatomy) {
  const std::string key = upper(anatomy);
  if (key.empty()) return std::nullopt;
  for (const auto& entry : anatomyTable()) {
    if (entry.bodyPart == key || upper(entry.region.meaning) == key || entry.region.value == anatomy) return entry;
  }
  return std::nullopt;
}

std::string bodyPartTerm(std::string_view text) {
  std::string out = upper(text);
  if (out.size() > 16) out.resize(16);
  for (char& c : out) {
    if (!(std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == ' ' || c == '_')) c = '_';
  }
  return out;
}

}  // namespace tessera::dicom
