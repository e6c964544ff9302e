#pragma once
// A trained model shared by the test cases of one test binary. CTest runs every case in a process
// of its own, where a function-level static trains the model again for each case: the first case
// saves it under fixture-cache/ in the working directory, keyed on the running binary (size,
// modification time, inode: a rebuild trains afresh) and on `trainers`, other programs the
// training runs (the `tessera` binary, say), and the cases after it load that file.

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "tessera/common/Error.h"
#include "tessera/model/Model.h"

namespace tessera::test {

inline model::Model cachedTrainedModel(const std::string& name, const std::function<model::Model()>& train,
                                       const std::vector<std::filesystem::path>& trainers = {}) {
  namespace fs = std::filesystem;
  std::string key;
  for (const fs::path& program : trainers) {
    struct stat st {};
    if (::stat(program.c_str(), &st) != 0) return train();
    key += std::to_string(st.st_size) + "-" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
           "-" + std::to_string(st.st_ino) + "-";
  }
  struct stat self {};
  if (::stat("/proc/self/exe", &self) != 0) return train();
  key += std::to_string(self.st_size) + "-" + std::to_string(self.st_mtim.tv_sec) + "." +
         std::to_string(self.st_mtim.tv_nsec) + "-" + std::to_string(self.st_ino);
  const fs::path dir = fs::current_path() / "fixture-cache";
  const fs::path file = dir / (name + "-" + key + ".tsm");
  std::error_code ec;
  if (fs::exists(file, ec)) {
    try {
      return model::loadModel(file);
    } catch (const Error&) {
      // Damaged or from an older format: trained again below.
    }
  }
  model::Model trained = train();
  fs::create_directories(dir, ec);
  for (const auto& entry : fs::directory_iterator(dir, ec))  // other builds' copies
    if (entry.path().filename().string().rfind(name + "-", 0) == 0) fs::remove(entry.path(), ec);
  // Written beside and renamed: a case running at the same time never loads half a file.
  const fs::path part = dir / (name + "-" + key + "." + std::to_string(::getpid()) + ".part");
  try {
    model::saveModel(trained, part);
    fs::rename(part, file, ec);
  } catch (const Error&) {
    fs::remove(part, ec);
  }
  return trained;
}

}  // namespace tessera::test
