#pragma once
// Small models and shell helpers for the DICOM tests.

#include <array>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "tessera/common/Error.h"
#include "tessera/model/Model.h"

namespace tessera::test {

// The code of the tessera::Error that `f` throws (its message into `message`); fails the test
// when nothing is thrown.
inline ErrorCode codeOf(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "no error";
  return ErrorCode::Internal;
}

inline model::Model dicomTestModel(const std::string& task = "brain-seg", int64_t generation = 3) {
  model::NetworkSpec spec;
  spec.dims = 2;
  spec.baseFeatures = 4;
  spec.depth = 2;
  model::TaskInfo info;
  info.name = task;
  info.modality = "MR";
  info.anatomy = "BRAIN";
  info.disease = "glioma";
  info.diseaseCode = {"SCT", "393563007", "Glioma"};
  info.labels = {{0, "background"}, {1, "tumour \xc3\xa9" "dema"}};
  model::Preprocessing prep;
  auto m = model::initialModel(spec, prep, info, 11 + static_cast<uint64_t>(generation));
  m.generation = generation;
  if (generation > 0) m.parentGeneration = generation - 1;
  return m;
}

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

inline CommandResult runCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  const int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Study and Series Instance UID of a DICOM file, read with pydicom.
inline std::pair<std::string, std::string> studyAndSeries(const std::filesystem::path& file) {
  const auto r = runCommand("/usr/bin/python3 -c 'import sys, pydicom; d = pydicom.dcmread(sys.argv[1], "
                            "stop_before_pixels=True); print(d.StudyInstanceUID, d.SeriesInstanceUID)' " + file.string());
  const auto space = r.output.find(' ');
  if (r.status != 0 || space == std::string::npos) return {};
  std::string series = r.output.substr(space + 1);
  while (!series.empty() && (series.back() == '\n' || series.back() == ' ')) series.pop_back();
  return {r.output.substr(0, space), series};
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tessera-dicom-XXXXXX").string();
    path = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace tessera::test
