#include "tessera/dicom/DicomWebClient.h"

#include <algorithm>
#include <random>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "ModelPick.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/dicom/AnatomyCodes.h"
#include "tessera/dicom/DicomModelCodec.h"
#include "tessera/dicom/DicomUids.h"
#include "tessera/model/TaskName.h"

namespace tessera::dicom {

namespace {

std::unique_ptr<httplib::Client> connect(const std::string& origin, int timeoutSeconds) {
  auto client = std::make_unique<httplib::Client>(origin);
  client->set_connection_timeout(timeoutSeconds, 0);
  client->set_read_timeout(timeoutSeconds, 0);
  client->set_write_timeout(timeoutSeconds, 0);
  return client;
}

std::string urlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '*') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// First value of attribute `tag` in a DICOM JSON object, as text ("" when absent).
std::string jsonValue(const nlohmann::json& object, const char* tag) {
  const auto it = object.find(tag);
  if (it == object.end() || !it->contains("Value") || !(*it)["Value"].is_array() || (*it)["Value"].empty()) return {};
  const auto& v = (*it)["Value"][0];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return std::to_string(v.get<double>());
  return {};
}

// The body parts of a multipart/related response.
std::vector<std::string_view> multipartParts(std::string_view body, const std::string& contentType) {
  std::vector<std::string_view> parts;
  const auto at = contentType.find("boundary=");
  if (at == std::string::npos) return parts;
  std::string boundary = contentType.substr(at + 9);
  if (const auto semi = boundary.find(';'); semi != std::string::npos) boundary.resize(semi);
  if (boundary.size() >= 2 && boundary.front() == '"') boundary = boundary.substr(1, boundary.size() - 2);
  const std::string delimiter = "--" + boundary;
  size_t pos = body.find(delimiter);
  while (pos != std::string_view::npos) {
    pos += delimiter.size();
    if (body.substr(pos, 2) == "--") break;
    const auto headersEnd = body.find("\r\n\r\n", pos);
    if (headersEnd == std::string_view::npos) break;
    const auto start = headersEnd + 4;
    const auto next = body.find("\r\n" + delimiter, start);
    if (next == std::string_view::npos) break;
    parts.push_back(body.substr(start, next - start));
    pos = next + 2;
  }
  return parts;
}

}  // namespace

DicomWebClient::DicomWebClient(std::string_view address, int timeoutSeconds) : timeoutSeconds_(timeoutSeconds) {
  auto bad = [&](const std::string& problem) {
    return Error(ErrorCode::BadRequest, "--pacs '" + std::string(address) + "': " + problem +
                                            " (expected dicomweb+http://HOST:PORT/PATH, e.g. dicomweb+http://127.0.0.1:8042/dicom-web)");
  };
  if (!matches(address)) throw bad("not a dicomweb+ address");
  const std::string_view url = address.substr(9);
  if (!url.starts_with("http://") && !url.starts_with("https://")) throw bad("the scheme must be http or https");
  const auto hostStart = url.find("://") + 3;
  const auto slash = url.find('/', hostStart);
  origin_ = std::string(url.substr(0, slash));
  if (origin_.size() <= hostStart) throw bad("no host");
  prefix_ = slash == std::string_view::npos ? std::string() : std::string(url.substr(slash));
  while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  description_ = std::string(url);
}

PushResult DicomWebClient::push(const std::vector<std::filesystem::path>& paths) const {
  std::vector<std::filesystem::path> files;
  PushResult result;
  for (const auto& p : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      for (auto it = std::filesystem::recursive_directory_iterator(p, ec); !ec && it != std::filesystem::end(it); it.increment(ec)) {
        if (it->is_regular_file(ec)) files.push_back(it->path());
      }
    } else if (std::filesystem::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      throw Error(ErrorCode::NotFound, p.string() + ": no such file or folder");
    }
  }
  std::sort(files.begin(), files.end());
  const std::string boundary = "tessera-" + std::to_string(std::random_device{}()) + std::to_string(std::random_device{}());
  std::string body;
  for (const auto& f : files) {
    std::string bytes = common::readFile(f);
    if (bytes.size() < 132 || bytes.compare(128, 4, "DICM") != 0) {
      if (std::find(paths.begin(), paths.end(), f) != paths.end()) {
        throw Error(ErrorCode::BadRequest, f.string() + ": not a DICOM Part 10 file");
      }
      ++result.skipped;
      continue;
    }
    body += "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n";
    body += bytes;
    body += "\r\n";
    ++result.stored;
  }
  if (result.stored == 0) throw Error(ErrorCode::NotFound, "no DICOM files to push");
  body += "--" + boundary + "--\r\n";
  auto client = connect(origin_, timeoutSeconds_);
  httplib::Headers headers{{"Accept", "application/dicom+json"}};
  const auto res = client->Post(prefix_ + "/studies", headers, body,
                                "multipart/related; type=\"application/dicom\"; boundary=" + boundary);
  if (!res) throw Error(ErrorCode::Unreachable, "DICOMweb " + description_ + ": cannot connect: " + httplib::to_string(res.error()));
  if (res->status >= 300) {
    throw Error(ErrorCode::Rejected, "DICOMweb " + description_ + ": STOW-RS answered HTTP " + std::to_string(res->status));
  }
  try {
    const auto j = nlohmann::json::parse(res->body);
    if (j.contains("00081198") && j["00081198"].contains("Value") && !j["00081198"]["Value"].empty()) {
      throw Error(ErrorCode::Rejected, "DICOMweb " + description_ + ": STOW-RS refused " +
                                           std::to_string(j["00081198"]["Value"].size()) + " object(s)");
    }
  } catch (const nlohmann::json::exception&) {
    // Some servers answer without a body; the status said success.
  }
  return result;
}

std::vector<ModelSeriesInfo> DicomWebClient::findModels(const ModelQuery& query) const {
  const auto anatomy = findAnatomy(query.anatomy);
  const std::string bodyPart = anatomy ? anatomy->bodyPart : bodyPartTerm(query.anatomy);
  std::string path = prefix_ + "/series?00080070=Tessera";
  if (!query.modality.empty()) path += "&00080060=" + urlEncode(query.modality);
  if (!bodyPart.empty()) path += "&00180015=" + urlEncode(bodyPart);
  if (!query.disease.empty()) path += "&00081080=" + urlEncode(query.disease);
  if (!query.task.empty()) path += "&0020000D=" + modelStudyUid(query.task);
  for (const char* field : {"00081030", "0008103E", "00081080", "00180015", "00200011", "00201209", "00080060"}) {
    path += std::string("&includefield=") + field;
  }
  auto client = connect(origin_, timeoutSeconds_);
  const auto res = client->Get(path, httplib::Headers{{"Accept", "application/dicom+json"}});
  if (!res) throw Error(ErrorCode::Unreachable, "DICOMweb " + description_ + ": cannot connect: " + httplib::to_string(res.error()));
  if (res->status == 204) return {};
  if (res->status >= 300) {
    throw Error(ErrorCode::Server, "DICOMweb " + description_ + ": QIDO-RS answered HTTP " + std::to_string(res->status));
  }
  nlohmann::json list;
  try {
    list = nlohmann::json::parse(res->body);
  } catch (const nlohmann::json::exception&) {
    throw Error(ErrorCode::Server, "DICOMweb " + description_ + ": QIDO-RS answer is not JSON");
  }
  std::vector<ModelSeriesInfo> found;
  for (const auto& o : list) {
    ModelSeriesInfo info;
    info.studyUid = jsonValue(o, "0020000D");
    info.seriesUid = jsonValue(o, "0020000E");
    info.seriesDescription = jsonValue(o, "0008103E");
    const std::string study = jsonValue(o, "00081030");
    info.task = model::isValidTaskName(study) ? study : info.seriesDescription.substr(0, info.seriesDescription.rfind(" generation "));
    const std::string number = jsonValue(o, "00200011");
    info.generation = number.empty() ? -1 : std::stoll(number);
    info.modality = jsonValue(o, "00080060");
    info.anatomy = jsonValue(o, "00180015");
    info.disease = jsonValue(o, "00081080");
    const std::string instances = jsonValue(o, "00201209");
    info.instances = instances.empty() ? 0 : std::stoll(instances);
    const bool matches = (query.modality.empty() || info.modality == query.modality) &&
                         (bodyPart.empty() || info.anatomy == bodyPart) &&
                         (query.disease.empty() || info.disease == query.disease) &&
                         (query.task.empty() || info.studyUid == modelStudyUid(query.task));
    if (matches) found.push_back(std::move(info));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::tie(a.task, a.generation, a.seriesUid) < std::tie(b.task, b.generation, b.seriesUid);
  });
  return found;
}

model::Model DicomWebClient::pullModel(const std::string& task, std::optional<int64_t> generation) const {
  model::requireValidTaskName(task, "--task");
  ModelQuery query;
  query.task = task;
  const auto series = findModels(query);
  const std::string where = "DICOMweb " + description_;
  if (series.empty()) throw Error(ErrorCode::NotFound, where + ": no model of task '" + task + "'");
  int64_t wanted = generation.value_or(-1);
  if (!generation) {
    for (const auto& s : series) wanted = std::max(wanted, s.generation);
  }
  const auto target = pickGeneration(series, task, wanted, where);
  auto client = connect(origin_, timeoutSeconds_);
  const auto res = client->Get(prefix_ + "/studies/" + target.studyUid + "/series/" + target.seriesUid,
                               httplib::Headers{{"Accept", "multipart/related; type=\"application/dicom\""}});
  if (!res) throw Error(ErrorCode::Unreachable, where + ": cannot connect: " + httplib::to_string(res.error()));
  if (res->status >= 300) throw Error(ErrorCode::Server, where + ": WADO-RS answered HTTP " + std::to_string(res->status));
  const auto parts = multipartParts(res->body, res->get_header_value("Content-Type"));
  const std::string source = where + " series " + target.seriesUid;
  if (parts.empty()) throw Error(ErrorCode::Server, source + ": WADO-RS returned no object");
  if (parts.size() > 1) {
    throw Error(ErrorCode::Conflict, source + " holds " + std::to_string(parts.size()) + " objects; cannot choose one");
  }
  auto model = decodeModelDicom(parts.front(), source);
  if (model.task.name != task || model.generation != wanted) {
    throw Error(ErrorCode::BadModel, source + ": holds task '" + model.task.name + "' generation " +
                                         std::to_string(model.generation) + ", not '" + task + "' generation " +
                                         std::to_string(wanted));
  }
  return model;
}

}  // namespace tessera::dicom
