#pragma once
// Running other `tessera` processes (the server, the sites) the way an operator would: real
// processes, output captured to a log file, exit status checked.

#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

namespace tessera::common {

// The running executable (/proc/self/exe), so a simulation uses the very binary it runs in.
std::filesystem::path currentExecutable();

class ChildProcess {
 public:
  // Starts `args[0]` with the arguments; stdout and stderr are appended to `logFile`.
  // Throws std::runtime_error naming the program when it cannot be started.
  ChildProcess(const std::vector<std::string>& args, const std::filesystem::path& logFile);
  ~ChildProcess();  // kills (SIGKILL) and reaps a child still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Waits for the exit; returns the exit status (128 + signal when killed).
  int wait();
  void signal(int sig);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// Runs to completion; throws std::runtime_error with the command and the log's last lines when
// the exit status is not 0.
void runProcess(const std::vector<std::string>& args, const std::filesystem::path& logFile);

// The last `lines` lines of a text file (for error messages).
std::string tailOfFile(const std::filesystem::path& file, int lines);

}  // namespace tessera::common
