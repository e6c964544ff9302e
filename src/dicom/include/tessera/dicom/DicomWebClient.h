#pragma once
// The same model operations as PacsClient over DICOMweb (cpp-httplib): STOW-RS to store,
// QIDO-RS to find model series, WADO-RS to retrieve one. The address is
// "dicomweb+http://HOST:PORT/PATH" (or dicomweb+https://…, verified TLS), e.g.
// dicomweb+http://127.0.0.1:8042/dicom-web for Orthanc's DICOMweb plugin. Errors as PacsClient's:
// Unreachable, Rejected / Server (HTTP errors), NotFound, Conflict, BadModel.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/dicom/PacsClient.h"

namespace tessera::dicom {

class DicomWebClient {
 public:
  static bool matches(std::string_view address) { return address.starts_with("dicomweb+"); }
  // Error(BadRequest) for an address that is not dicomweb+http(s)://HOST[:PORT][/PATH].
  explicit DicomWebClient(std::string_view address, int timeoutSeconds = 30);

  PushResult push(const std::vector<std::filesystem::path>& paths) const;
  std::vector<ModelSeriesInfo> findModels(const ModelQuery& query) const;
  model::Model pullModel(const std::string& task, std::optional<int64_t> generation = std::nullopt) const;

  const std::string& describe() const { return description_; }

 private:
  std::string origin_;  // scheme://host:port
  std::string prefix_;  // path, no trailing '/'
  std::string description_;
  int timeoutSeconds_;
};

}  // namespace tessera::dicom
