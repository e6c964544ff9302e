#include "tessera/model/Dataset.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tessera/common/Error.h"
#include "tessera/image/ImageIO.h"

namespace tessera::model {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kNotADataset =
    ": not a dataset: expected images/ + labels/ (Tessera), dataset.json + imagesTr/ + labelsTr/ (nnU-Net v2 or "
    "Decathlon)";

// The file endings readImage knows; ".nii.gz" before ".nii".
const std::array<std::string, 6> kImageEndings{".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr"};

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorCode::BadDataset, message); }

bool isDirectory(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool pathExists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

bool endsWith(const std::string& s, const std::string& end) {
  return s.size() > end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

// "case1.nii.gz" → "case1" for the endings of the Tessera layout; "" for other files.
std::string tesseraCaseName(const fs::path& file) {
  const std::string name = file.filename().string();
  for (const char* ext : {".nii.gz", ".nii", ".mha", ".nrrd"}) {
    if (endsWith(name, ext)) return name.substr(0, name.size() - std::string(ext).size());
  }
  return {};
}

// "x.nii.gz" → "x" for any ending readImage knows; the plain stem otherwise.
std::string stemOf(const fs::path& file) {
  const std::string name = file.filename().string();
  for (const auto& ext : kImageEndings) {
    if (endsWith(name, ext)) return name.substr(0, name.size() - ext.size());
  }
  return file.stem().string();
}

std::string inQuotes(const std::string& s) { return "'" + s + "'"; }

// ---- Tessera: images/NAME + labels/NAME ---------------------------------------------------------

std::vector<NamedCase> readTesseraCases(const fs::path& directory) {
  const fs::path images = directory / "images";
  const fs::path labels = directory / "labels";
  std::vector<std::pair<std::string, fs::path>> found;
  for (const auto& entry : fs::directory_iterator(images)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = tesseraCaseName(entry.path());
    if (!name.empty()) found.emplace_back(name, entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<NamedCase> cases;
  for (const auto& [name, imagePath] : found) {
    const fs::path labelPath = labels / imagePath.filename();
    if (!pathExists(labelPath)) {
      fail(imagePath.string() + ": has no label map " + labelPath.string());
    }
    NamedCase c;
    c.name = name;
    c.data.image = image::readImage(imagePath);
    c.data.labels = image::readImage(labelPath);
    // Partial labels (CaseFolder.h): which foreground labels the annotators drew.
    const fs::path annotated = labels / (name + ".annotated.json");
    if (pathExists(annotated)) {
      std::ifstream in(annotated);
      const json list = json::parse(in, nullptr, false);
      if (list.is_discarded() || !list.is_array()) fail(annotated.string() + ": expected a list of label values, e.g. [1, 3]");
      for (const auto& v : list) {
        if (!v.is_number_integer() || v.get<int>() < 1) fail(annotated.string() + ": " + v.dump() + " is not a label value >= 1");
        c.data.annotatedLabels.push_back(v.get<int>());
      }
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

// ---- dataset.json ---------------------------------------------------------------------------------

json readJsonFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) fail(path.string() + ": cannot open");
  try {
    json j = json::parse(in);
    if (!j.is_object()) fail(path.string() + ": expected a JSON object");
    return j;
  } catch (const json::exception& e) {
    fail(path.string() + ": not valid JSON: " + e.what());
  }
}

// "3" → 3 for a label or channel key 0..255; nullopt otherwise.
std::optional<int> indexKey(const std::string& key) {
  if (key.empty() || key.size() > 3 || !std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const int value = std::stoi(key);
  if (value > 255) return std::nullopt;
  return value;
}

// The layout a dataset.json describes: nnU-Net v2 has "channel_names" and "file_ending",
// the Decathlon (and nnU-Net v1, which shares its format) "modality" and "training".
DatasetLayout jsonLayout(const json& j, const fs::path& path) {
  if (j.contains("channel_names") || j.contains("file_ending")) return DatasetLayout::NnUNetV2;
  if (j.contains("training") || j.contains("modality")) return DatasetLayout::Decathlon;
  fail(path.string() +
       ": neither an nnU-Net v2 dataset.json (\"channel_names\", \"file_ending\") nor a Decathlon one (\"modality\", "
       "\"training\")");
}

struct Detected {
  DatasetLayout layout = DatasetLayout::Tessera;
  json description;  // dataset.json, for the nnU-Net v2 and Decathlon layouts
};

Detected detect(const fs::path& dir) {
  if (!isDirectory(dir)) fail(dir.string() + ": no such folder");
  const bool images = isDirectory(dir / "images");
  const bool description = pathExists(dir / "dataset.json");
  const bool imagesTr = isDirectory(dir / "imagesTr");
  const bool labelsTr = isDirectory(dir / "labelsTr");
  if (images && !(description && imagesTr)) return {DatasetLayout::Tessera, {}};
  if (!description && !imagesTr && !labelsTr) fail(dir.string() + kNotADataset);
  if (!description) {
    fail(dir.string() + ": has " + (imagesTr ? "imagesTr/" : "labelsTr/") +
         " but no dataset.json (nnU-Net v2 and Decathlon datasets describe their channels and labels in it)");
  }
  const fs::path jsonPath = dir / "dataset.json";
  Detected d{DatasetLayout::Tessera, readJsonFile(jsonPath)};
  d.layout = jsonLayout(d.description, jsonPath);
  // nnU-Net v2 may list its cases' files under "dataset" instead of keeping them in imagesTr/.
  if (d.layout == DatasetLayout::NnUNetV2 && d.description.contains("dataset")) return d;
  const std::string kind(layoutName(d.layout));
  if (!imagesTr) {
    fail(dir.string() + ": has dataset.json but no imagesTr/ folder (" + kind + " datasets keep their images in imagesTr/)");
  }
  if (!labelsTr) {
    fail(dir.string() + ": has dataset.json but no labelsTr/ folder (" + kind + " datasets keep their label maps in labelsTr/)");
  }
  return d;
}

// Channel names from "channel_names" (nnU-Net v2) or "modality" (Decathlon): {"0": "T1", "1": "T2"}.
std::vector<std::string> channelNamesOf(const json& j, const fs::path& path) {
  const char* key = j.contains("channel_names") ? "channel_names" : "modality";
  if (!j.contains(key)) return {};
  const json& channels = j.at(key);
  if (!channels.is_object() || channels.empty()) {
    fail(path.string() + ": '" + key + "' must be an object like {\"0\": \"CT\"}");
  }
  std::vector<std::string> names(channels.size());
  for (const auto& [k, value] : channels.items()) {
    const auto index = indexKey(k);
    if (!index || *index >= static_cast<int>(names.size())) {
      fail(path.string() + ": '" + key + "' key " + inQuotes(k) + " is not a channel number 0.." +
           std::to_string(names.size() - 1));
    }
    names[static_cast<size_t>(*index)] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  return names;
}

// Label values and names. nnU-Net v2 maps name → value ({"background": 0, "tumour": 1}); the
// Decathlon and nnU-Net v1 map value → name ({"0": "background", "1": "tumour"}). Both are accepted.
std::map<int, std::string> labelNamesOf(const json& j, const fs::path& path) {
  if (!j.contains("labels") || !j.at("labels").is_object() || j.at("labels").empty()) {
    fail(path.string() + ": no 'labels' object (e.g. {\"background\": 0, \"tumour\": 1})");
  }
  std::map<int, std::string> names;
  for (const auto& [key, value] : j.at("labels").items()) {
    int64_t label = -1;
    std::string name;
    if (value.is_array()) {
      fail(path.string() + ": label " + inQuotes(key) + " is the region " + value.dump() +
           " (nnU-Net region-based training); Tessera needs one integer value per label");
    } else if (value.is_number_integer()) {
      label = value.get<int64_t>();
      name = key;
    } else if (value.is_string() && indexKey(key)) {
      label = *indexKey(key);
      name = value.get<std::string>();
    } else {
      fail(path.string() + ": label " + inQuotes(key) + " has value " + value.dump() +
           "; expected an integer 0..255 (nnU-Net v2) or a name under a key 0..255 (Decathlon)");
    }
    if (label < 0 || label > 255) {
      fail(path.string() + ": label " + inQuotes(name) + " has value " + std::to_string(label) + "; expected 0..255");
    }
    if (name == "ignore") {
      fail(path.string() + ": label 'ignore' (value " + std::to_string(label) +
           ") marks unannotated voxels (nnU-Net sparse annotation); Tessera has no ignore label");
    }
    if (const auto other = names.find(static_cast<int>(label)); other != names.end()) {
      fail(path.string() + ": labels " + inQuotes(other->second) + " and " + inQuotes(name) + " both have value " +
           std::to_string(label));
    }
    names[static_cast<int>(label)] = name;
  }
  if (!names.count(0)) fail(path.string() + ": 'labels' has no value 0 (background)");
  return names;
}

// Refuses datasets with more than one channel: Tessera's networks take one image per case.
void requireOneChannel(const std::vector<std::string>& channels, const fs::path& path) {
  if (channels.size() <= 1) return;
  std::string list;
  for (const auto& c : channels) list += (list.empty() ? "" : ", ") + c;
  fail(path.string() + ": multi-channel datasets (" + std::to_string(channels.size()) + " channels: " + list +
       ") are not supported yet; Tessera's networks take one image per case (make a copy with a single channel)");
}

int declaredCases(const json& j) {
  if (!j.contains("numTraining") || !j.at("numTraining").is_number_integer()) return 0;
  return j.at("numTraining").get<int>();
}

// Every voxel of a label map must be one of the values dataset.json lists.
void checkLabelValues(const image::Volume& labels, const std::map<int, std::string>& names, const fs::path& file) {
  std::array<bool, 256> allowed{};
  for (const auto& [value, name] : names) allowed[static_cast<size_t>(value)] = true;
  for (float v : labels.voxels) {
    const float rounded = std::nearbyint(v);
    if (std::fabs(v - rounded) > 1e-3f) {
      std::ostringstream text;
      text << v;
      fail(file.string() + ": label value " + text.str() + " is not an integer");
    }
    if (rounded < 0.0f || rounded > 255.0f || !allowed[static_cast<size_t>(rounded)]) {
      std::string list;
      for (const auto& [value, name] : names) list += (list.empty() ? "" : ", ") + std::to_string(value);
      fail(file.string() + ": label value " + std::to_string(static_cast<long>(rounded)) +
           " is not among the labels of dataset.json (" + list + ")");
    }
  }
}

NamedCase readPair(const std::string& name, const fs::path& imagePath, const fs::path& labelPath,
                   const std::map<int, std::string>& labelNames) {
  if (!pathExists(labelPath)) fail("case " + inQuotes(name) + ": no label map " + labelPath.string());
  NamedCase c;
  c.name = name;
  c.data.image = image::readImage(imagePath);
  c.data.labels = image::readImage(labelPath);
  if (!c.data.image.geometry.sameGrid(c.data.labels.geometry)) {
    fail(labelPath.string() + ": label grid " + c.data.labels.geometry.describe() + " differs from image " +
         imagePath.string() + " grid " + c.data.image.geometry.describe());
  }
  checkLabelValues(c.data.labels, labelNames, labelPath);
  return c;
}

void sortAndCheckUnique(std::vector<NamedCase>& cases, const fs::path& jsonPath) {
  std::sort(cases.begin(), cases.end(), [](const NamedCase& a, const NamedCase& b) { return a.name < b.name; });
  for (size_t i = 1; i < cases.size(); ++i) {
    if (cases[i].name == cases[i - 1].name) fail(jsonPath.string() + ": case " + inQuotes(cases[i].name) + " is listed twice");
  }
}

fs::path resolve(const fs::path& dir, const std::string& file) {
  const fs::path p(file);
  return (p.is_absolute() ? p : dir / p).lexically_normal();
}

// What dataset.json says of both layouts that have one: channel and label names (one channel only).
Dataset describedBy(const json& j, const fs::path& jsonPath, DatasetLayout layout) {
  Dataset d;
  d.layout = layout;
  d.channelNames = channelNamesOf(j, jsonPath);
  d.channels = std::max<int>(1, static_cast<int>(d.channelNames.size()));
  d.labelNames = labelNamesOf(j, jsonPath);
  requireOneChannel(d.channelNames, jsonPath);
  return d;
}

// ---- nnU-Net v2: imagesTr/CASE_0000.ext + labelsTr/CASE.ext ---------------------------------------

Dataset readNnUNet(const fs::path& dir, const json& j) {
  const fs::path jsonPath = dir / "dataset.json";
  Dataset d = describedBy(j, jsonPath, DatasetLayout::NnUNetV2);
  if (!j.contains("file_ending") || !j.at("file_ending").is_string()) {
    fail(jsonPath.string() + ": no 'file_ending' (e.g. \".nii.gz\")");
  }
  const std::string ending = j.at("file_ending").get<std::string>();
  if (std::find(kImageEndings.begin(), kImageEndings.end(), ending) == kImageEndings.end()) {
    fail(jsonPath.string() + ": file_ending " + inQuotes(ending) +
         " is not an image format Tessera reads (.nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr)");
  }

  if (j.contains("dataset")) {
    // {"CASE": {"images": ["path/CASE_0000.nii.gz"], "label": "path/CASE.nii.gz"}}, relative to DIR.
    const json& listed = j.at("dataset");
    if (!listed.is_object()) fail(jsonPath.string() + ": 'dataset' must be an object of cases");
    for (const auto& [name, entry] : listed.items()) {
      if (!entry.is_object() || !entry.contains("images") || !entry.at("images").is_array() ||
          !entry.contains("label") || !entry.at("label").is_string() ||
          !std::all_of(entry.at("images").begin(), entry.at("images").end(), [](const json& x) { return x.is_string(); })) {
        fail(jsonPath.string() + ": dataset entry " + inQuotes(name) + " must be {\"images\": [files], \"label\": file}");
      }
      if (entry.at("images").size() != 1) {
        fail(jsonPath.string() + ": case " + inQuotes(name) + " lists " + std::to_string(entry.at("images").size()) +
             " images; expected 1 (one channel)");
      }
      const fs::path imagePath = resolve(dir, entry.at("images")[0].get<std::string>());
      if (!pathExists(imagePath)) fail("case " + inQuotes(name) + ": image " + imagePath.string() + " does not exist");
      d.cases.push_back(readPair(name, imagePath, resolve(dir, entry.at("label").get<std::string>()), d.labelNames));
    }
  } else {
    const fs::path imagesTr = dir / "imagesTr";
    std::vector<std::pair<std::string, fs::path>> found;  // case name, channel-0 image
    for (const auto& entry : fs::directory_iterator(imagesTr)) {
      const std::string file = entry.path().filename().string();
      if (!entry.is_regular_file() || file.front() == '.' || !endsWith(file, ending)) continue;
      const std::string stem = file.substr(0, file.size() - ending.size());
      const bool numbered = stem.size() > 5 && stem[stem.size() - 5] == '_' &&
                            std::all_of(stem.end() - 4, stem.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!numbered) {
        fail(entry.path().string() + ": not named CASE_0000" + ending +
             " (nnU-Net v2 ends image names in the channel number)");
      }
      const int channel = std::stoi(stem.substr(stem.size() - 4));
      if (channel >= d.channels) {
        fail(entry.path().string() + ": channel " + std::to_string(channel) + " but dataset.json declares " +
             std::to_string(d.channels) + " channel(s)");
      }
      found.emplace_back(stem.substr(0, stem.size() - 5), entry.path());
    }
    for (const auto& [name, imagePath] : found) {
      d.cases.push_back(readPair(name, imagePath, dir / "labelsTr" / (name + ending), d.labelNames));
    }
  }
  sortAndCheckUnique(d.cases, jsonPath);
  if (d.cases.empty() && declaredCases(j) > 0) {
    fail(jsonPath.string() + ": numTraining is " + std::to_string(declaredCases(j)) + " but " +
         (dir / "imagesTr").string() + " holds no CASE_0000" + ending + " images");
  }
  return d;
}

// ---- Decathlon: "training": [{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}] -----

Dataset readDecathlon(const fs::path& dir, const json& j) {
  const fs::path jsonPath = dir / "dataset.json";
  Dataset d = describedBy(j, jsonPath, DatasetLayout::Decathlon);
  if (!j.contains("training") || !j.at("training").is_array()) {
    fail(jsonPath.string() + ": no 'training' list (e.g. [{\"image\": \"./imagesTr/x.nii.gz\", \"label\": \"./labelsTr/x.nii.gz\"}])");
  }
  const json& training = j.at("training");
  for (size_t i = 0; i < training.size(); ++i) {
    const json& entry = training[i];
    if (!entry.is_object() || !entry.contains("image") || !entry.at("image").is_string() || !entry.contains("label") ||
        !entry.at("label").is_string()) {
      fail(jsonPath.string() + ": training[" + std::to_string(i) + "] must be {\"image\": file, \"label\": file}");
    }
    fs::path imagePath = resolve(dir, entry.at("image").get<std::string>());
    const std::string name = stemOf(imagePath);
    if (!pathExists(imagePath)) {
      // nnU-Net v1 keeps the Decathlon list but stores images as NAME_0000.nii.gz.
      const std::string file = imagePath.filename().string();
      const fs::path channel0 = imagePath.parent_path() / (name + "_0000" + file.substr(name.size()));
      if (!pathExists(channel0)) {
        fail("case " + inQuotes(name) + ": image " + imagePath.string() + " (listed in dataset.json) does not exist");
      }
      imagePath = channel0;
    }
    d.cases.push_back(readPair(name, imagePath, resolve(dir, entry.at("label").get<std::string>()), d.labelNames));
  }
  sortAndCheckUnique(d.cases, jsonPath);
  if (d.cases.empty() && declaredCases(j) > 0) {
    fail(jsonPath.string() + ": numTraining is " + std::to_string(declaredCases(j)) + " but 'training' lists no cases");
  }
  return d;
}

}  // namespace

std::string_view layoutName(DatasetLayout layout) {
  switch (layout) {
    case DatasetLayout::Tessera: return "Tessera";
    case DatasetLayout::NnUNetV2: return "nnU-Net v2";
    case DatasetLayout::Decathlon: return "Decathlon";
  }
  return "unknown";
}

DatasetLayout detectDatasetLayout(const fs::path& directory) { return detect(directory).layout; }

Dataset readDataset(const fs::path& directory) {
  const Detected detected = detect(directory);
  switch (detected.layout) {
    case DatasetLayout::NnUNetV2: return readNnUNet(directory, detected.description);
    case DatasetLayout::Decathlon: return readDecathlon(directory, detected.description);
    case DatasetLayout::Tessera: break;
  }
  Dataset d;
  d.layout = DatasetLayout::Tessera;
  d.cases = readTesseraCases(directory);
  return d;
}

void applyLabelNames(TaskInfo& task, const Dataset& dataset) {
  if (!dataset.labelNames.empty()) task.labels = dataset.labelNames;
}

}  // namespace tessera::model
