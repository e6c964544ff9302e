#pragma once
// Keeps slow or hostile clients from starving the server's workers.
//
// cpp-httplib gives every accepted connection a worker thread and only a per-read timeout, so a
// client that sends one header line every few seconds (slowloris), a body one byte at a time or
// a TLS handshake that never finishes holds a worker for as long as it likes. The library exposes
// neither its accept loop nor the sockets, so the supervisor watches the process's own accepted
// sockets from the side (/proc/self/fd, every 50 ms) and ends the ones that break a rule (the
// descriptor is pointed at /dev/null and the socket reset); httplib then sees the connection fail
// and frees the worker:
//   - a request's header must arrive within `headerSeconds` of the connection (or of the end of
//     the previous request on a kept-alive connection) and be at most `headerBytes` long (counted
//     from TCP_INFO, because httplib reads a request line or header lines of any total length);
//   - a body must keep up `minBodyBytesPerSecond` after `bodyGraceSeconds`;
//   - one client address holds at most `perAddress` connections (the newest beyond are closed);
//   - at most `headerBudget` connections may sit in a worker waiting for their header (beyond,
//     the oldest that have waited over a second with nothing unread go first: a real client's
//     header takes milliseconds, and one queued for a worker has its bytes in the kernel);
//   - closeAll() ends every connection at shutdown, so stopping never waits on slow clients.
// start() also raises the listening socket's backlog from httplib's 5 to SOMAXCONN.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <atomic>
#include <condition_variable>

namespace tessera::server {

struct ConnectionLimits {
  double headerSeconds = 10;
  int64_t headerBytes = 64 << 10;
  double bodyGraceSeconds = 30;
  double minBodyBytesPerSecond = 64 * 1024;
  int perAddress = 32;
  int headerBudget = 8;
};

class ConnectionSupervisor {
 public:
  ConnectionSupervisor(int listenPort, ConnectionLimits limits, std::function<void(const std::string&)> log);
  ~ConnectionSupervisor();
  ConnectionSupervisor(const ConnectionSupervisor&) = delete;
  ConnectionSupervisor& operator=(const ConnectionSupervisor&) = delete;

  void start();
  void stop();
  // httplib parsed a request's header from this peer (pre-routing); `bodyBytes` is its
  // Content-Length (0 without a body).
  void requestStarted(const std::string& address, int port, uint64_t bodyBytes);
  // The response went out (httplib's logger): the connection waits for its next header.
  void requestFinished(const std::string& address, int port);
  // The request's body was not read (refused before it): once its response is out, the
  // connection is shut instead of httplib reading the body's bytes as the next request.
  void closeAfterResponse(const std::string& address, int port);
  // shutdown(2) on every accepted connection.
  void closeAll();

  uint64_t closedSlowHeaders() const { return slowHeaders_; }
  uint64_t closedSlowBodies() const { return slowBodies_; }
  uint64_t closedOverAddressCap() const { return overCap_; }
  uint64_t closedOverHeaderBudget() const { return overBudget_; }
  uint64_t closedBigHeaders() const { return bigHeaders_; }

 private:
  struct Connection;
  void loop();
  void scan();

  int listenPort_;
  ConnectionLimits limits_;
  std::function<void(const std::string&)> log_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
  std::map<std::string, std::unique_ptr<Connection>> connections_;  // by "address port"
  int devnull_ = -1;
  bool trimPending_ = false;
  std::atomic<uint64_t> slowHeaders_{0}, slowBodies_{0}, overCap_{0}, overBudget_{0}, bigHeaders_{0};
};

}  // namespace tessera::server
