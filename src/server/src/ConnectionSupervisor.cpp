#include "ConnectionSupervisor.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <malloc.h>
#include <fcntl.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_received (glibc's is older)
#include <netdb.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

namespace tessera::server {

namespace {
using Clock = std::chrono::steady_clock;
constexpr double kSettleSeconds = 1.0;

double secondsBetween(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// "address port" as httplib reports a peer (numeric host, as getnameinfo writes it).
std::string peerKey(const sockaddr_storage& addr, socklen_t length) {
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), length, host, sizeof host, service, sizeof service,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return {};
  }
  return std::string(host) + " " + service;
}

// Bytes the client sent that nobody has read yet: a connection queued for a worker with its
// request already in the kernel is waiting for us, not sending slowly.
int unreadBytes(int fd) {
  int n = 0;
  return ioctl(fd, SIOCINQ, &n) == 0 ? n : 0;
}

// Bytes the peer has sent on this connection so far (TCP_INFO), or -1.
int64_t bytesReceived(int fd) {
  tcp_info info{};
  socklen_t length = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return -1;
  return static_cast<int64_t>(info.tcpi_bytes_received);
}

// Ends a connection that httplib owns without closing its descriptor under it: the descriptor
// number is pointed at /dev/null (reads fail at once, httplib closes it as usual), and the socket
// itself, now held only here, is shut (waking a worker blocked on it) and closed with a reset so
// that nothing more is received. A descriptor closed and reused since `inode` was seen is left
// alone.
bool endConnection(int fd, ino_t inode, int devnull) {
  const int keep = ::dup(fd);
  if (keep < 0) return false;
  struct stat st {};
  if (fstat(keep, &st) != 0 || st.st_ino != inode) {
    ::close(keep);
    return false;
  }
  if (devnull >= 0) ::dup2(devnull, fd);
  const linger reset{1, 0};
  ::setsockopt(keep, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::shutdown(keep, SHUT_RDWR);
  ::close(keep);
  return true;
}

int localPort(int fd) {
  sockaddr_storage addr{};
  socklen_t length = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) return -1;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return -1;
}
}  // namespace

struct ConnectionSupervisor::Connection {
  int fd = -1;
  ino_t inode = 0;
  std::string address;
  Clock::time_point waitingSince;  // for the next header; epoch while a request runs
  bool inRequest = false;
  Clock::time_point requestStart;
  uint64_t bodyBytes = 0;
  bool closed = false;
  bool closeAfterResponse = false;
  int64_t bytesAtRest = 0;  // TCP bytes received when the connection last started waiting for a header
  bool seen = false;  // found by the last scan
};

ConnectionSupervisor::ConnectionSupervisor(int listenPort, ConnectionLimits limits,
                                           std::function<void(const std::string&)> log)
    : listenPort_(listenPort), limits_(limits), log_(std::move(log)), devnull_(::open("/dev/null", O_RDWR | O_CLOEXEC)) {}

ConnectionSupervisor::~ConnectionSupervisor() {
  stop();
  if (devnull_ >= 0) ::close(devnull_);
}

namespace {
// httplib 0.11 listens with a backlog of 5: a burst of connections (sixteen sites uploading at
// once) overflows it, and the kernel's handling of the overflow left some clients without an
// answer. listen(2) again on the bound socket raises the backlog.
void raiseBacklog(int listenPort) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return;
  const int own = dirfd(dir);
  while (dirent* entry = readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (entry->d_name[0] == '.' || fd == own) continue;
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) || localPort(fd) != listenPort) continue;
    int listening = 0;
    socklen_t length = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 && listening) ::listen(fd, SOMAXCONN);
  }
  closedir(dir);
}
}  // namespace

void ConnectionSupervisor::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  raiseBacklog(listenPort_);
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void ConnectionSupervisor::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ConnectionSupervisor::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    scan();
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_; });
  }
}

void ConnectionSupervisor::requestStarted(const std::string& address, int port, uint64_t bodyBytes) {
  std::lock_guard lock(mutex_);
  const std::string key = address + " " + std::to_string(port);
  auto& c = connections_[key];
  if (!c) {
    // Accepted and answered before a scan saw it: track it from now on.
    c = std::make_unique<Connection>();
    c->address = address;
  }
  c->inRequest = true;
  c->requestStart = Clock::now();
  c->bodyBytes = bodyBytes;
}

void ConnectionSupervisor::requestFinished(const std::string& address, int port) {
  const std::string key = address + " " + std::to_string(port);
  bool mustClose = false;
  {
    std::unique_lock lock(mutex_);
    auto it = connections_.find(key);
    if (it == connections_.end()) return;
    it->second->inRequest = false;
    it->second->waitingSince = Clock::now();
    if (it->second->fd >= 0) it->second->bytesAtRest = bytesReceived(it->second->fd) - unreadBytes(it->second->fd);
    mustClose = it->second->closeAfterResponse;
    if (mustClose && it->second->fd < 0) {
      // Not seen by a scan yet: find its socket now (this runs only for refused requests).
      lock.unlock();
      scan();
    }
  }
  if (!mustClose) return;
  std::lock_guard lock(mutex_);
  auto it = connections_.find(key);
  if (it == connections_.end() || it->second->fd < 0 || it->second->closed) return;
  struct stat st {};
  endConnection(it->second->fd, it->second->inode, devnull_);
  it->second->closed = true;
}

void ConnectionSupervisor::closeAfterResponse(const std::string& address, int port) {
  std::lock_guard lock(mutex_);
  auto& c = connections_[address + " " + std::to_string(port)];
  if (!c) {
    c = std::make_unique<Connection>();
    c->address = address;
    c->inRequest = true;
  }
  c->closeAfterResponse = true;
}

void ConnectionSupervisor::closeAll() {
  scan();
  std::lock_guard lock(mutex_);
  for (auto& [key, c] : connections_) {
    if (c->fd >= 0 && !c->closed) {
      endConnection(c->fd, c->inode, devnull_);
      c->closed = true;
    }
  }
}

void ConnectionSupervisor::scan() {
  // Every socket of this process that was accepted on the listening port.
  struct Found {
    int fd;
    ino_t inode;
    std::string key;
    std::string address;
  };
  std::vector<Found> found;
  if (DIR* dir = opendir("/proc/self/fd")) {
    const int own = dirfd(dir);
    while (dirent* entry = readdir(dir)) {
      const int fd = std::atoi(entry->d_name);
      if (entry->d_name[0] == '.' || fd == own) continue;
      struct stat st {};
      if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
      if (localPort(fd) != listenPort_) continue;
      sockaddr_storage peer{};
      socklen_t length = sizeof peer;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) continue;  // the listener itself
      std::string key = peerKey(peer, length);
      if (key.empty()) continue;
      found.push_back({fd, st.st_ino, key, key.substr(0, key.rfind(' '))});
    }
    closedir(dir);
  }

  const auto now = Clock::now();
  std::lock_guard lock(mutex_);
  // A connection ended by the last scan has been released by its worker since: give the memory
  // its header or request line took back to the system (glibc would keep it).
  if (trimPending_) {
    malloc_trim(0);
    trimPending_ = false;
  }
  for (auto& [key, c] : connections_) c->seen = false;
  for (const auto& f : found) {
    auto& c = connections_[f.key];
    if (!c) {
      c = std::make_unique<Connection>();
      c->address = f.address;
      c->waitingSince = now;
    }
    if (c->fd != f.fd || c->inode != f.inode) {
      // A new connection (or one first seen through requestStarted).
      if (c->fd != -1) c->waitingSince = now;
      else if (c->waitingSince == Clock::time_point{}) c->waitingSince = now;
      c->fd = f.fd;
      c->inode = f.inode;
      c->closed = false;
    }
    c->seen = true;
  }
  // Connections gone from the process are forgotten.
  for (auto it = connections_.begin(); it != connections_.end();) {
    // (Entries made by requestStarted for a connection no scan saw go once their request ends.)
    const bool gone = !it->second->seen && (it->second->fd != -1 || !it->second->inRequest);
    if (gone) it = connections_.erase(it);
    else ++it;
  }

  auto close = [&](Connection& c, std::atomic<uint64_t>& counter, const std::string& why) {
    if (c.closed || c.fd < 0) return;
    if (!endConnection(c.fd, c.inode, devnull_)) return;  // the fd was reused meanwhile
    c.closed = true;
    trimPending_ = true;
    ++counter;
    if (log_) log_("connection from " + c.address + " closed: " + why);
  };

  std::map<std::string, std::vector<Connection*>> byAddress;
  std::vector<Connection*> waiting;
  for (auto& [key, c] : connections_) {
    if (c->closed || c->fd < 0) continue;
    if (c->inRequest) {
      const double allowed = limits_.bodyGraceSeconds + static_cast<double>(c->bodyBytes) / limits_.minBodyBytesPerSecond;
      if (secondsBetween(c->requestStart, now) > allowed) {
        close(*c, slowBodies_, "request not finished within " + std::to_string(static_cast<int>(allowed)) + " s");
        continue;
      }
    } else {
      // httplib keeps every header line it reads (and a request line of any length): a header
      // is judged by the bytes httplib has taken from the kernel since the connection began
      // waiting for it. What still sits unread in the kernel (a body sent right behind its
      // header, before a worker got to the header) does not count.
      const int64_t received = bytesReceived(c->fd);
      const int64_t consumed = received - unreadBytes(c->fd);
      if (received >= 0 && consumed - c->bytesAtRest > limits_.headerBytes) {
        close(*c, bigHeaders_, "request header over " + std::to_string(limits_.headerBytes) + " bytes");
        continue;
      }
      if (secondsBetween(c->waitingSince, now) > limits_.headerSeconds) {
        close(*c, slowHeaders_, "no complete request header within " + std::to_string(static_cast<int>(limits_.headerSeconds)) + " s");
        continue;
      }
      waiting.push_back(c.get());
    }
    byAddress[c->address].push_back(c.get());
  }
  for (auto& [address, list] : byAddress) {
    if (static_cast<int>(list.size()) <= limits_.perAddress) continue;
    // Newest first out; requests already running are left alone.
    std::sort(list.begin(), list.end(), [](const Connection* a, const Connection* b) { return a->waitingSince > b->waitingSince; });
    int excess = static_cast<int>(list.size()) - limits_.perAddress;
    for (Connection* c : list) {
      if (excess == 0) break;
      if (c->inRequest || c->closed) continue;
      close(*c, overCap_, "more than " + std::to_string(limits_.perAddress) + " connections from " + address);
      --excess;
    }
  }
  // Only connections that have waited a while with nothing unread count against the budget: a
  // real client's header arrives within milliseconds, and one queued behind busy workers has its
  // bytes waiting in the kernel.
  waiting.erase(std::remove_if(waiting.begin(), waiting.end(),
                               [&](const Connection* c) {
                                 return c->closed || secondsBetween(c->waitingSince, now) < kSettleSeconds ||
                                        unreadBytes(c->fd) > 0;
                               }),
                waiting.end());
  if (static_cast<int>(waiting.size()) > limits_.headerBudget) {
    std::sort(waiting.begin(), waiting.end(), [](const Connection* a, const Connection* b) { return a->waitingSince < b->waitingSince; });
    for (size_t i = 0; i + limits_.headerBudget < waiting.size(); ++i) {
      close(*waiting[i], overBudget_, "more than " + std::to_string(limits_.headerBudget) + " connections waiting for a header");
    }
  }
}

}  // namespace tessera::server
