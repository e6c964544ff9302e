#pragma once
// A real Orthanc PACS for tests: Debian's /usr/sbin/Orthanc on 127.0.0.1 with a generated
// configuration (own storage and index folders in a temporary directory, free DICOM and HTTP
// ports, a known AE title, called-AE-title checking on so a wrong title is rejected, remote
// HTTP access off). Known AE titles (`modalities`) are declared with a port for C-MOVE; C-FIND
// and C-GET are allowed from any caller. With `dicomWeb`, Debian's DICOMweb plugin is loaded
// and answers under http://127.0.0.1:<httpPort>/dicom-web/.
// Started in the constructor (waits until both ports accept connections), stopped in the
// destructor (SIGKILL: its folder is deleted anyway). Skips the test when Orthanc is not installed.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace tessera::test {

inline const char* kOrthancBinary = "/usr/sbin/Orthanc";
inline const char* kDicomWebPlugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

inline uint16_t freeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("no free loopback port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

inline bool acceptsConnections(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

struct OrthancOptions {
  std::string aet = "TESTPACS";
  bool checkCalledAet = true;
  bool dicomWeb = false;
  std::map<std::string, uint16_t> modalities{{"TESSERA", 0}};  // AE title -> its port (C-MOVE)
  uint16_t dicomPort = 0;  // 0: a free one; fixed: a PACS that comes up where a client already looks
};

class OrthancServer {
 public:
  static bool available() { return std::filesystem::exists(kOrthancBinary); }

  explicit OrthancServer(OrthancOptions options = {}) : options_(std::move(options)) {
    std::string pattern = (std::filesystem::temp_directory_path() / "tessera-orthanc-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    dicomPort_ = options_.dicomPort ? options_.dicomPort : freeLoopbackPort();
    httpPort_ = freeLoopbackPort();
    nlohmann::json modalities = nlohmann::json::object();
    for (const auto& [aet, port] : options_.modalities) modalities[aet] = {aet, "127.0.0.1", port ? port : 104};
    nlohmann::json config{{"Name", "tessera-test"},
                          {"StorageDirectory", (dir_ / "storage").string()},
                          {"IndexDirectory", (dir_ / "index").string()},
                          {"DicomAet", options_.aet},
                          {"DicomPort", dicomPort_},
                          {"HttpPort", httpPort_},
                          {"DicomCheckCalledAet", options_.checkCalledAet},
                          {"RemoteAccessAllowed", false},
                          {"AuthenticationEnabled", false},
                          {"DicomAlwaysAllowFind", true},
                          {"DicomAlwaysAllowGet", true},
                          {"DicomModalities", modalities},
                          {"StorageAccessOnFind", "Always"},
                          {"SaveJobs", false},
                          {"ConcurrentJobs", 1},
                          {"DicomThreadsCount", 2},
                          {"HttpThreadsCount", 4},
                          {"Plugins", nlohmann::json::array()}};
    if (options_.dicomWeb) {
      config["Plugins"].push_back(kDicomWebPlugin);
      config["DicomWeb"] = {{"Enable", true}, {"Root", "/dicom-web/"}, {"EnableWado", true}};
    }
    std::ofstream(dir_ / "orthanc.json") << config.dump(2);
    log_ = dir_ / "orthanc.log";
    pid_ = fork();
    if (pid_ == 0) {
      const std::string logArg = "--logfile=" + log_.string();
      const std::string configPath = (dir_ / "orthanc.json").string();
      execl(kOrthancBinary, kOrthancBinary, logArg.c_str(), configPath.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!(acceptsConnections(dicomPort_) && acceptsConnections(httpPort_))) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("Orthanc exited at start: " + logTail());
      }
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("Orthanc did not start: " + logTail());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  ~OrthancServer() {
    if (pid_ > 0) {
      // Orthanc takes ~3.5 s to stop cleanly; its storage is thrown away, so don't wait.
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  OrthancServer(const OrthancServer&) = delete;
  OrthancServer& operator=(const OrthancServer&) = delete;

  const std::string& aet() const { return options_.aet; }
  uint16_t dicomPort() const { return dicomPort_; }
  uint16_t httpPort() const { return httpPort_; }
  // "AET@127.0.0.1:PORT", as `tessera pacs --pacs` takes it.
  std::string address() const { return options_.aet + "@127.0.0.1:" + std::to_string(dicomPort_); }
  std::string httpUrl() const { return "http://127.0.0.1:" + std::to_string(httpPort_); }
  const std::filesystem::path& directory() const { return dir_; }

  std::string logTail() const {
    std::ifstream in(log_);
    std::stringstream all;
    all << in.rdbuf();
    const std::string text = all.str();
    return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
  }

 private:
  OrthancOptions options_;
  std::filesystem::path dir_, log_;
  uint16_t dicomPort_ = 0, httpPort_ = 0;
  pid_t pid_ = -1;
};

}  // namespace tessera::test
