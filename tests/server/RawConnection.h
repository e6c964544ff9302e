#pragma once
// A plain TCP connection to the server under test, for what an HTTP library would not do on
// purpose: send a request slowly or only in part, hang up mid-answer, come from another loopback
// address (the per-address cap tells 127.0.0.2 from 127.0.0.1).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace tessera::servertest {

class RawConnection {
 public:
  explicit RawConnection(int port, const char* from = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, from, &local.sin_addr);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close();
      throw std::runtime_error(std::string("cannot connect from ") + from + " to 127.0.0.1:" + std::to_string(port));
    }
  }
  ~RawConnection() { close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }

  bool send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // One read of at most `atMost` bytes (the start of an answer).
  std::string receiveSome(size_t atMost) {
    std::string out(atMost, '\0');
    const ssize_t n = ::recv(fd_, out.data(), atMost, 0);
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }

  // One whole answer (header and Content-Length body), or what arrived before the server closed
  // or `seconds` passed.
  std::string receive(double seconds) {
    std::string out;
    const auto start = std::chrono::steady_clock::now();
    char buffer[4096];
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
      const auto headEnd = out.find("\r\n\r\n");
      if (headEnd != std::string::npos && headEnd + 4 + contentLength(out) <= out.size()) break;
    }
    return out;
  }

  // True once the server has closed (or reset) the connection within `seconds`.
  bool closedByServer(double seconds) {
    const auto start = std::chrono::steady_clock::now();
    char buffer[4096];
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      if (::recv(fd_, buffer, sizeof buffer, 0) <= 0) return true;
    }
    return false;
  }

  // Hangs up at once: unread data makes the kernel answer with a reset.
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  static size_t contentLength(const std::string& head) {
    const auto at = head.find("Content-Length: ");
    return at == std::string::npos ? 0 : std::stoul(head.substr(at + 16));
  }
  int fd_ = -1;
};

}  // namespace tessera::servertest
