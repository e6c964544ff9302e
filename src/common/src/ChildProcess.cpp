#include "tessera/common/ChildProcess.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <stdexcept>

extern char** environ;

namespace tessera::common {

namespace fs = std::filesystem;

fs::path currentExecutable() { return fs::read_symlink("/proc/self/exe"); }

ChildProcess::ChildProcess(const std::vector<std::string>& args, const fs::path& logFile) {
  if (args.empty()) throw std::invalid_argument("ChildProcess: no program given");
  const int fd = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(logFile.string() + ": cannot open log: " + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fd, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && status_ < 0) {
    ::kill(pid_, SIGKILL);
    wait();
  }
}

bool ChildProcess::running() {
  if (status_ >= 0) return false;
  int raw = 0;
  const pid_t r = ::waitpid(pid_, &raw, WNOHANG);
  if (r == 0) return true;
  status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  return false;
}

int ChildProcess::wait() {
  if (status_ >= 0) return status_;
  int raw = 0;
  while (::waitpid(pid_, &raw, 0) < 0) {
    if (errno != EINTR) {
      status_ = 255;
      return status_;
    }
  }
  status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  return status_;
}

void ChildProcess::signal(int sig) {
  if (status_ < 0) ::kill(pid_, sig);
}

std::string tailOfFile(const fs::path& file, int lines) {
  std::ifstream in(file);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += "\n    " + l;
  return out;
}

void runProcess(const std::vector<std::string>& args, const fs::path& logFile) {
  ChildProcess child(args, logFile);
  const int status = child.wait();
  if (status != 0) {
    std::string command;
    for (size_t i = 0; i < args.size() && i < 4; ++i) command += (i ? " " : "") + args[i];
    throw std::runtime_error("'" + command + " …' failed with status " + std::to_string(status) + " (log " +
                             logFile.string() + "):" + tailOfFile(logFile, 5));
  }
}

}  // namespace tessera::common
