// Merge throughput and memory of the server's streamed merge strategies, and the latency of a
// whole federation round through the real server.
//
//   tessera_bench_merge [--updates K] [--quick] [--dir DIR]      merge tables (K, 4 and 16 updates;
//                                                                --quick: 10 M instead of 30 M)
//   tessera_bench_merge --round-latency [--updates K] [--rounds R] [--tessera PATH]
//
// Merge tables: for each model size and strategy, K update files (random weights, a U-Net-like
// set of tensors) are written to DIR; the merge streams them from disk into a candidate file.
// Its throughput is parameters × K / seconds, next to an in-run I/O floor: a plain streamed read
// of the same K files plus the write of one model-sized file. Every merge runs in a forked child:
// its peak memory is the child's ru_maxrss (wait4) minus its RSS right before the merge, shown as
// a multiple of one model's size (float32 bytes).
//
// Round latency: starts `tessera server` on 127.0.0.1 (port 0), seeds a ~1 M-parameter model
// with round_size K, uploads K delta updates over HTTP and times upload → merged (polling
// GET /v1/models/T/generations/latest) → downloaded; the server's VmHWM from /proc/PID/status
// is reported against the model's size. Nothing here asserts timings.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/ChildProcess.h"
#include "tessera/common/Sha256.h"
#include "tessera/federation/Merge.h"
#include "tessera/federation/ModelUpdate.h"
#include "tessera/common/Error.h"
#include "tessera/common/WeightRecords.h"
#include "tessera/model/Model.h"


namespace {

namespace fs = std::filesystem;
namespace fed = tessera::federation;
namespace common = tessera::common;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ---------------------------------------------------------------------------------------------
// Synthetic models

struct Shape {
  std::string name;
  std::vector<int64_t> dims;
  int64_t elements() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
};

// A U-Net-like list of tensors with exactly `parameters` values: 3×3 convolutions of the
// widest width that still fits, each with its bias and a normalisation weight and bias (the
// tensors FedBN keeps local), then a head holding the remainder.
std::vector<Shape> modelShapes(int64_t parameters) {
  std::vector<Shape> shapes;
  int64_t left = parameters;
  int block = 0;
  for (int64_t c : {512, 384, 256, 192, 128, 96, 64, 48, 32, 16}) {
    const int64_t blockSize = 9 * c * c + 3 * c;
    while (left >= blockSize) {
      const std::string p = "blocks." + std::to_string(block++) + ".";
      shapes.push_back({p + "conv.weight", {c, c, 3, 3}});
      shapes.push_back({p + "conv.bias", {c}});
      shapes.push_back({p + "norm.weight", {c}});
      shapes.push_back({p + "norm.bias", {c}});
      left -= blockSize;
    }
  }
  if (left > 0) shapes.push_back({"head.weight", {left}});
  return shapes;
}

// xorshift64*: fast enough that generating the files is dominated by the writes.
struct Random {
  uint64_t state;
  explicit Random(uint64_t seed) : state(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  float uniform(float scale) {  // in [-scale, scale)
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    const uint64_t r = state * 0x2545F4914F6CDD1DULL;
    return (static_cast<float>(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * scale;
  }
};

// Writes a weights section value chunk by value chunk through the one weight-record writer,
// without ever holding the model in memory. Plain stdio, no fsync: these are scratch files.
void writeRandomWeights(const fs::path& path, const std::vector<Shape>& shapes, uint64_t seed, float scale) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path.string());
  common::WeightRecordWriter writer(
      [&](std::string_view bytes) {
        if (std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) throw std::runtime_error("write failed: " + path.string());
      },
      static_cast<uint32_t>(shapes.size()));
  Random rng(seed);
  std::vector<float> chunk(1 << 16);
  for (const auto& s : shapes) {
    writer.beginTensor(s.name, s.dims);
    for (int64_t done = 0; done < s.elements();) {
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(chunk.size()), s.elements() - done);
      for (int64_t i = 0; i < n; ++i) chunk[i] = rng.uniform(scale);
      writer.write(chunk.data(), n);
      done += n;
    }
  }
  writer.finishHash();
  if (std::fclose(f) != 0) throw std::runtime_error("close failed: " + path.string());
}

// ---------------------------------------------------------------------------------------------
// Memory

long statusKb(pid_t pid, const char* field) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/status") : "/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + key.size());
  }
  return -1;
}

struct ChildResult {
  double bestSeconds = 0;
  long rssBeforeKb = 0;
  char error[256] = {};
};

struct Measured {
  double seconds = 0;  // best of the repetitions
  double peakGrowthBytes = 0;
  std::string error;
};

// Runs `warmup` and then `body` `reps` times in a forked child; returns the best time and the
// child's peak RSS (wait4's ru_maxrss) minus its RSS right before the first run. The warm-up (the
// same code on a tiny model) faults in the code pages a fresh child has not touched yet, so that
// the difference is the merge's data, not the program text.
Measured inChild(const std::function<void()>& warmup, const std::function<void()>& body, int reps) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(fds[0]);
    ChildResult r;
    r.bestSeconds = 1e300;
    // Buffers of 16 KiB and more are mapped and unmapped, not kept in the heap after the warm-up
    // (glibc's adaptive threshold would keep them resident and hide them from the difference).
    mallopt(M_MMAP_THRESHOLD, 16 * 1024);
    try {
      warmup();
      r.rssBeforeKb = statusKb(0, "VmRSS");
      for (int i = 0; i < reps; ++i) {
        const auto t0 = Clock::now();
        body();
        r.bestSeconds = std::min(r.bestSeconds, secondsSince(t0));
      }
    } catch (const std::exception& e) {
      std::snprintf(r.error, sizeof r.error, "%s", e.what());
    }
    (void)!write(fds[1], &r, sizeof r);
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  ChildResult r;
  const ssize_t got = read(fds[0], &r, sizeof r);
  close(fds[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  Measured m;
  if (got != static_cast<ssize_t>(sizeof r) || !WIFEXITED(status)) {
    m.error = "child failed";
    return m;
  }
  m.error = r.error;
  m.seconds = r.bestSeconds;
  m.peakGrowthBytes = static_cast<double>(usage.ru_maxrss - r.rssBeforeKb) * 1024.0;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Merge tables

struct SizeData {
  int64_t parameters = 0;
  fs::path current;
  std::vector<fs::path> updates;
};

SizeData writeModelFiles(const fs::path& dir, int64_t parameters, int updates) {
  SizeData d;
  d.parameters = parameters;
  const auto shapes = modelShapes(parameters);
  fs::create_directories(dir);
  d.current = dir / "current.bin";
  writeRandomWeights(d.current, shapes, 1, 0.05f);
  for (int i = 0; i < updates; ++i) {
    d.updates.push_back(dir / ("update-" + std::to_string(i) + ".bin"));
    writeRandomWeights(d.updates.back(), shapes, 100 + static_cast<uint64_t>(i), 1e-3f);
  }
  return d;
}

// The merge exactly as the server runs it (MergeLoop::buildCandidate), minus the commit.
void runMerge(const SizeData& d, int k, fed::Strategy strategy, const fs::path& tmpDir) {
  fed::MergeInput in;
  in.current = {d.current, 0, 0};
  in.currentGeneration = 7;
  in.policy = fed::defaultPolicyFor(strategy);
  in.policy.trimFraction = 0.25;  // drops one value at each end for K = 4
  in.generationWeights = [&](int64_t) { return common::WeightsLocation{d.current, 0, 0}; };
  for (int i = 0; i < k; ++i) {
    fed::UpdateInput u;
    u.id = i + 1;
    u.weights = {d.updates[static_cast<size_t>(i)], 0, 0};
    u.kind = fed::UpdateKind::Delta;
    u.baseGeneration = 7;
    u.samples = 10 + i;
    in.updates.push_back(u);
  }
  const uint32_t tensors = common::WeightRecordReader(in.current, "current").tensorCount();
  common::WeightFileWriter writer(tmpDir, tensors);  // removed uncommitted when it goes out of scope
  const auto out = fed::mergeUpdates(in, writer);
  if (out.parameters != d.parameters) throw std::runtime_error("merge saw the wrong parameter count");
}

// The I/O floor: read the K update files in merge-sized chunks, write one model-sized file.
void runBaseline(const SizeData& d, int k, const fs::path& tmpDir) {
  std::vector<char> buffer(size_t{1} << 18);  // 64 Ki floats, the merge's chunk
  uint64_t checksum = 0;
  for (int i = 0; i < k; ++i) {
    std::FILE* f = std::fopen(d.updates[static_cast<size_t>(i)].c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open an update");
    size_t n;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) checksum += static_cast<unsigned char>(buffer[n - 1]);
    std::fclose(f);
  }
  tessera::common::AtomicFileWriter out(tmpDir);
  uint64_t left = static_cast<uint64_t>(d.parameters) * sizeof(float);
  buffer[0] = static_cast<char>(checksum);
  while (left > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buffer.size()));
    out.write(std::string_view(buffer.data(), n));
    left -= n;
  }
}

std::string formatParams(int64_t p) {
  char text[32];
  if (p >= 1000000) std::snprintf(text, sizeof text, "%.0fM", static_cast<double>(p) / 1e6);
  else std::snprintf(text, sizeof text, "%.0fk", static_cast<double>(p) / 1e3);
  return text;
}

int mergeTables(const fs::path& dir, const std::vector<int64_t>& sizes, int k, const std::vector<int>& memoryKs) {
  const std::vector<fed::Strategy> strategies = {fed::Strategy::FedAvg, fed::Strategy::FedBN, fed::Strategy::TrimmedMean,
                                                 fed::Strategy::Dafne};
  int kMax = k;
  for (int m : memoryKs) kMax = std::max(kMax, m);
  const fs::path tmpDir = dir / "tmp";
  fs::create_directories(tmpDir);

  std::printf("Merge throughput and peak memory (streamed from files in %s)\n", dir.c_str());
  std::printf("  throughput = parameters x K / seconds (best of the repetitions); baseline = read the same K\n");
  std::printf("  update files + write one model-sized file; ratio = merge throughput / baseline throughput.\n");
  std::printf("  peak = forked child's ru_maxrss (wait4) - its RSS right before the merge (after a warm-up merge of a\n");
  std::printf("  20k-parameter model in the same child); 'x model' = peak / (parameters x 4 bytes).\n");
  std::printf("  dafne reads each delta's base generation too (K more streams).\n\n");
  std::printf("%-6s %3s %-13s %9s %12s %11s %12s %7s %10s %8s\n", "model", "K", "strategy", "merge s", "merge Mp/s",
              "floor s", "floor Mp/s", "ratio", "peak MiB", "x model");
  std::printf("%s\n", std::string(98, '-').c_str());
  for (int64_t parameters : sizes) {
    const auto t0 = Clock::now();
    const SizeData d = writeModelFiles(dir / formatParams(parameters), parameters, kMax);
    const double modelBytes = static_cast<double>(parameters) * sizeof(float);
    std::fprintf(stderr, "[%s: %d update files of %.0f MiB written in %.1f s]\n", formatParams(parameters).c_str(), kMax,
                 modelBytes / 1048576.0, secondsSince(t0));
    const int reps = parameters <= 2'000'000 ? 5 : 2;  // the first run of a large model also warms the page cache
    const SizeData warm = writeModelFiles(dir / "warmup", 20'000, kMax);
    std::vector<int> ks = {k};
    for (int m : memoryKs) {
      if (std::find(ks.begin(), ks.end(), m) == ks.end()) ks.push_back(m);
    }
    for (int kk : ks) {
      const Measured floor = inChild([&] { runBaseline(warm, kk, tmpDir); }, [&] { runBaseline(d, kk, tmpDir); }, reps);
      const double work = static_cast<double>(parameters) * kk;
      for (auto s : strategies) {
        const Measured m = inChild([&] { runMerge(warm, kk, s, tmpDir); }, [&] { runMerge(d, kk, s, tmpDir); }, reps);
        if (!m.error.empty()) {
          std::printf("%-6s %3d %-13s merge failed: %s\n", formatParams(parameters).c_str(), kk, fed::toString(s).c_str(),
                      m.error.c_str());
          continue;
        }
        std::printf("%-6s %3d %-13s %9.3f %12.1f %11.3f %12.1f %7.2f %10.2f %8.2f\n", formatParams(parameters).c_str(), kk,
                    fed::toString(s).c_str(), m.seconds, work / m.seconds / 1e6, floor.seconds, work / floor.seconds / 1e6,
                    floor.seconds / m.seconds, m.peakGrowthBytes / 1048576.0, m.peakGrowthBytes / modelBytes);
        std::fflush(stdout);
      }
    }
    fs::remove_all(dir / formatParams(parameters));
    fs::remove_all(dir / "warmup");
  }
  std::printf("\n");
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Round latency through the real server

std::string runCapture(const std::string& command) {
  std::FILE* p = popen(command.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + command);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (status != 0) throw std::runtime_error("command failed (" + std::to_string(status) + "): " + command);
  return out;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string lastLine(const std::string& text) {
  size_t end = text.find_last_not_of("\r\n ");
  if (end == std::string::npos) return "";
  const size_t start = text.find_last_of('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

int roundLatency(const fs::path& dir, const fs::path& tessera, int k, int rounds) {
  if (!fs::exists(tessera)) {
    std::fprintf(stderr, "no tessera binary at %s (build it, or pass --tessera PATH)\n", tessera.c_str());
    return 1;
  }
  fs::create_directories(dir);
  const fs::path data = dir / "server-data";
  const std::string task = "bench-brain";
  const std::string exe = quote(tessera.string());

  // A real U-Net model of about 1 M parameters.
  tessera::model::NetworkSpec spec;
  spec.depth = 4;
  tessera::model::TaskInfo info;
  info.name = task;
  info.modality = "MR";
  info.anatomy = "BRAIN";
  info.disease = "none";
  tessera::model::Model seed;
  for (int base = 8; base <= 64; base += 2) {
    spec.baseFeatures = base;
    seed = tessera::model::initialModel(spec, {}, info, 3);
    if (tessera::common::parameterCount(seed.weights) >= 1'000'000) break;
  }
  const int64_t parameters = tessera::common::parameterCount(seed.weights);
  const double modelBytes = static_cast<double>(parameters) * sizeof(float);
  tessera::model::saveModel(seed, dir / "seed.tsm");

  std::vector<std::string> tokens;
  for (int i = 0; i < k; ++i) {
    tokens.push_back(lastLine(runCapture(exe + " server admin add-site site-" + std::to_string(i) + " --data " +
                                         quote(data.string()) + " 2>/dev/null")));
  }
  runCapture(exe + " server admin seed --model " + quote((dir / "seed.tsm").string()) + " --strategy fedavg --data " +
             quote(data.string()) + " >/dev/null 2>&1");
  runCapture(exe + " server admin policy --task " + task + " --set " +
             quote("{\"round_size\": " + std::to_string(k) + ", \"round_seconds\": 3600}") + " --data " + quote(data.string()) +
             " >/dev/null 2>&1");

  const fs::path portFile = dir / "port";
  const fs::path logFile = dir / "server.log";
  std::vector<std::string> args = {tessera.string(), "server", "--data", data.string(), "--listen", "127.0.0.1:0",
                                   "--port-file", portFile.string(), "--quiet"};
  common::ChildProcess server(args, logFile);
  // SIGTERM first so the server shuts down as in production; the destructor reaps it.
  struct Stop {
    common::ChildProcess& server;
    ~Stop() {
      server.signal(SIGTERM);
      server.wait();
    }
  } stop{server};
  const pid_t pid = server.pid();

  int port = 0;
  for (int i = 0; i < 3000 && port == 0; ++i) {
    std::ifstream in(portFile);
    if (!(in >> port)) {
      port = 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (port == 0) throw std::runtime_error("the server wrote no port file; see " + logFile.string());
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(120, 0);
  client.set_write_timeout(120, 0);
  auto auth = [&](int i) { return httplib::Headers{{"Authorization", "Bearer " + tokens[static_cast<size_t>(i)]}}; };
  if (auto r = client.Get("/healthz"); !r || r->status != 200) throw std::runtime_error("server not healthy");
  const long hwmStart = statusKb(pid, "VmHWM");

  std::printf("Round latency through `tessera server` (127.0.0.1, fedavg, round_size %d, model %lld parameters = %.1f MiB)\n", k,
              static_cast<long long>(parameters), modelBytes / 1048576.0);
  std::printf("  upload = K sequential POST /v1/models/T/updates; merged = last upload accepted -> generation visible\n");
  std::printf("  (polling GET .../generations/latest every 2 ms); download = GET .../generations/latest/model.\n");
  std::printf("  server VmHWM after startup: %.1f MiB\n\n", hwmStart / 1024.0);
  std::printf("%5s %10s %9s %10s %9s %11s %11s %14s\n", "round", "upload s", "merged s", "download s", "total s", "VmHWM MiB",
              "x model", "HWM growth x");
  std::printf("%s\n", std::string(86, '-').c_str());

  int64_t generation = seed.generation;
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::string> bodies;
    for (int i = 0; i < k; ++i) {
      fed::ModelUpdate u;
      u.header.task = task;
      u.header.baseGeneration = generation;
      u.header.kind = fed::UpdateKind::Delta;
      u.header.samples = 20 + i;
      u.weights = seed.weights;
      Random rng(1000 + static_cast<uint64_t>(round * k + i));
      for (auto& t : u.weights) {
        for (auto& v : t.values) v = rng.uniform(1e-3f);
      }
      bodies.push_back(fed::encodeUpdate(u));
    }
    const auto t0 = Clock::now();
    for (int i = 0; i < k; ++i) {
      auto r = client.Post("/v1/models/" + task + "/updates", auth(i), bodies[static_cast<size_t>(i)], "application/octet-stream");
      if (!r || r->status != 202) {
        throw std::runtime_error("upload refused: " + (r ? std::to_string(r->status) + " " + r->body : std::string("no reply")));
      }
    }
    const double upload = secondsSince(t0);
    const auto t1 = Clock::now();
    for (;;) {
      auto r = client.Get("/v1/models/" + task + "/generations/latest", auth(0));
      if (r && r->status == 200 && nlohmann::json::parse(r->body).at("generation").get<int64_t>() > generation) break;
      if (secondsSince(t1) > 120) throw std::runtime_error("no merged generation after 120 s; see " + logFile.string());
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const double merged = secondsSince(t1);
    const auto t2 = Clock::now();
    auto r = client.Get("/v1/models/" + task + "/generations/latest/model", auth(0));
    if (!r || r->status != 200) throw std::runtime_error("download failed");
    const double download = secondsSince(t2);
    if (tessera::common::sha256Hex(r->body) != r->get_header_value("X-Tessera-Sha256")) {
      throw std::runtime_error("downloaded model does not match its X-Tessera-Sha256");
    }
    const auto model = tessera::model::decodeModel(r->body, "downloaded");
    generation = model.generation;
    const long hwm = statusKb(pid, "VmHWM");
    std::printf("%5d %10.3f %9.3f %10.3f %9.3f %11.1f %11.2f %14.2f\n", round + 1, upload, merged, download,
                upload + merged + download, hwm / 1024.0, hwm * 1024.0 / modelBytes, (hwm - hwmStart) * 1024.0 / modelBytes);
    std::fflush(stdout);
  }
  std::printf("\n  'x model' = VmHWM / model size (the whole process: binary, libraries, HTTP buffers);\n");
  std::printf("  'HWM growth x' = (VmHWM - VmHWM after startup) / model size.\n\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int k = 4, rounds = 3;
  bool quick = false, latency = false;
  fs::path dir, tessera;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--updates") k = std::atoi(next().c_str());
    else if (a == "--quick") quick = true;
    else if (a == "--dir") dir = next();
    else if (a == "--round-latency") latency = true;
    else if (a == "--rounds") rounds = std::atoi(next().c_str());
    else if (a == "--tessera") tessera = next();
    else {
      std::fprintf(stderr,
                   "usage: %s [--updates K] [--quick] [--dir DIR]\n"
                   "       %s --round-latency [--updates K] [--rounds R] [--tessera PATH] [--dir DIR]\n",
                   argv[0], argv[0]);
      return 2;
    }
  }
  if (k < 1 || rounds < 1) {
    std::fprintf(stderr, "--updates and --rounds must be at least 1\n");
    return 2;
  }
  bool removeDir = false;
  if (dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "tessera-merge-bench-XXXXXX").string();
    if (!mkdtemp(pattern.data())) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = pattern;
    removeDir = true;
  }
  int rc = 0;
  try {
    if (latency) {
      if (tessera.empty()) tessera = fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "tessera";
      rc = roundLatency(dir, tessera, k, rounds);
    } else {
      const std::vector<int64_t> sizes = quick ? std::vector<int64_t>{1'000'000, 10'000'000} : std::vector<int64_t>{1'000'000, 30'000'000};
      rc = mergeTables(dir, sizes, k, {4, 16});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    rc = 1;
  }
  if (removeDir) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return rc;
}
