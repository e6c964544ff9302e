#include "tessera/interactive/Session.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cctype>
#include <ctime>
#include <iomanip>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/common/Sha256.h"
#include "tessera/image/ImageIO.h"
#include "tessera/interactive/SlicePropagation.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/nn/Inference.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace tessera::interactive {

namespace {

constexpr const char* kFormat = "tessera-interact-session";
constexpr int kVersion = 1;
constexpr const char* kImageFile = "image.nii.gz";
constexpr const char* kMaskFile = "mask.nii.gz";
constexpr const char* kEntropyFile = "entropy.nii.gz";
constexpr const char* kWeightsFile = "weights.nii.gz";
constexpr const char* kPreviousFile = "previous.nii.gz";
constexpr const char* kInitialFile = "initial.nii.gz";
constexpr const char* kStateFile = "state.json";
constexpr const char* kSessionFile = "session.json";

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string utcNow(const char* format = "%Y-%m-%dT%H:%M:%SZ") {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, format, &tm);
  return buffer;
}

// A hard link where the file system allows it (a step then costs only the files it changes).
void linkOrCopy(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

// Replaces `to` by a link to `from` in one rename, so readers never see it missing.
void publish(const fs::path& from, const fs::path& to) {
  const fs::path temporary = to.parent_path() / ("." + to.filename().string() + ".publishing");
  fs::remove(temporary);
  linkOrCopy(from, temporary);
  fs::rename(temporary, to);
}

std::string describeSize(const image::Geometry& g) {
  return std::to_string(g.size[0]) + "x" + std::to_string(g.size[1]) + "x" + std::to_string(g.size[2]);
}

struct MaskDifference {
  int64_t changed = 0;
  double dice = 1.0;
};

MaskDifference compareMasks(const image::Volume& before, const image::Volume& after) {
  MaskDifference d;
  int64_t both = 0, a = 0, b = 0;
  for (size_t i = 0; i < after.voxels.size(); ++i) {
    const bool x = before.voxels[i] > 0, y = after.voxels[i] > 0;
    d.changed += before.voxels[i] != after.voxels[i];
    a += x;
    b += y;
    both += x && y;
  }
  d.dice = a + b == 0 ? 1.0 : 2.0 * static_cast<double>(both) / static_cast<double>(a + b);
  return d;
}

json clicksToJson(const std::vector<nn::Click>& clicks) {
  json list = json::array();
  for (const auto& c : clicks) list.push_back({{"voxel", c.voxel}, {"label", c.positive ? 1 : 0}});
  return list;
}

json drawnToJson(const std::vector<DrawnSlice>& drawn) {
  json list = json::array();
  for (const auto& d : drawn) list.push_back({{"axis", d.axis}, {"slice", d.slice}});
  return list;
}

std::vector<nn::Click> clicksFromJson(const json& list) {
  std::vector<nn::Click> clicks;
  for (const auto& c : list) {
    nn::Click click;
    click.voxel = c.at("voxel").get<std::array<int64_t, 3>>();
    const int label = c.at("label").get<int>();
    if (label != 0 && label != 1) throw Error(ErrorCode::Corrupt, "click label " + std::to_string(label));
    click.positive = label == 1;
    clicks.push_back(click);
  }
  return clicks;
}

std::vector<DrawnSlice> drawnFromJson(const json& list) {
  std::vector<DrawnSlice> drawn;
  for (const auto& d : list) drawn.push_back({d.at("axis").get<int>(), d.at("slice").get<int64_t>()});
  return drawn;
}

// The model's entropy (nats) as a uint8 map: 255 * H / log(classes). A viewer shows it as a heat
// map and it compresses far better than float32, which keeps a click's file writes short.
float quantizeEntropy(float nats, double maxNats) {
  const double q = std::round(255.0 * std::clamp(static_cast<double>(nats) / maxNats, 0.0, 1.0));
  return static_cast<float>(q);
}

}  // namespace

json toJson(const StepReport& r) {
  return {{"step", r.step},
          {"revision", r.revision},
          {"voxels_changed", r.voxelsChanged},
          {"dice_to_previous", r.diceToPrevious ? json(*r.diceToPrevious) : json(nullptr)},
          {"seconds", r.seconds},
          {"compute_seconds", r.computeSeconds},
          {"axis", r.axis},
          {"first_slice", r.firstSlice},
          {"last_slice", r.lastSlice},
          {"detail", r.detail}};
}

StepReport stepReportFromJson(const json& j) {
  StepReport r;
  r.step = j.at("step").get<std::string>();
  r.revision = j.at("revision").get<int64_t>();
  r.voxelsChanged = j.at("voxels_changed").get<int64_t>();
  if (!j.at("dice_to_previous").is_null()) r.diceToPrevious = j.at("dice_to_previous").get<double>();
  r.seconds = j.at("seconds").get<double>();
  r.computeSeconds = j.value("compute_seconds", 0.0);
  r.axis = j.value("axis", -1);
  r.firstSlice = j.value("first_slice", int64_t{-1});
  r.lastSlice = j.value("last_slice", int64_t{-1});
  r.detail = j.value("detail", std::string());
  return r;
}

std::string describe(const StepReport& r) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(3);
  s << r.step << ": " << r.voxelsChanged << " voxels changed";
  if (r.diceToPrevious) s << ", Dice to previous " << *r.diceToPrevious;
  s.precision(2);
  s << ", " << r.seconds << " s";
  if (r.firstSlice >= 0) {
    s << " (slices " << r.firstSlice << ".." << r.lastSlice << " of axis " << r.axis << " re-inferred in "
      << r.computeSeconds << " s)";
  }
  if (!r.detail.empty()) s << "; " << r.detail;
  return s.str();
}

namespace {
image::Volume readStored(const fs::path& path, const image::Geometry* grid, int classes);

// An exclusive flock on the session directory itself (no lock file, so a refused step leaves the
// directory as it was), held while a step writes.
class DirectoryLock {
 public:
  explicit DirectoryLock(const fs::path& directory) : fd_(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) {
      if (fd_ >= 0) ::close(fd_);
      throw Error(ErrorCode::Io, directory.string() + ": cannot lock the session directory");
    }
  }
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock() { ::close(fd_); }

 private:
  int fd_;
};
}  // namespace

struct Session::State {
  fs::path dir;
  json doc;  // session.json as committed
  std::string committedText;  // session.json's bytes as this object last read or wrote them
  image::Volume image, mask;
  // Read on first use: a command-line step that does not need them (undo, scribble) skips reading
  // them. Entropy holds the uint8 codes (0..255).
  mutable std::optional<image::Volume> entropyCache, previousCache, initialCache, weightsCache;
  std::vector<nn::Click> clicks;
  std::vector<DrawnSlice> drawn;
  std::optional<model::Model> model;
  int classes = 2;

  fs::path revisionDir(int64_t revision) const { return dir / "history" / std::to_string(revision); }
  int64_t revision() const { return doc.at("revision").get<int64_t>(); }
  fs::path currentDir() const { return revisionDir(revision()); }
  const image::Volume& entropy() const {
    if (!entropyCache) entropyCache = readStored(currentDir() / kEntropyFile, &image.geometry, 256);
    return *entropyCache;
  }
  const image::Volume& previous() const {
    if (!previousCache) previousCache = readStored(currentDir() / kPreviousFile, &image.geometry, classes);
    return *previousCache;
  }
  const image::Volume& initial() const {
    if (!initialCache) initialCache = readStored(dir / kInitialFile, &image.geometry, classes);
    return *initialCache;
  }
  const image::Volume* weights() const {
    if (!doc.at("has_weights").get<bool>()) return nullptr;
    if (!weightsCache) weightsCache = readStored(currentDir() / kWeightsFile, &image.geometry, 0);
    return &*weightsCache;
  }
  int modelDims() const { return doc.at("model").at("dims").get<int>(); }
  int modelAxis() const { return doc.at("model").at("axis").get<int>(); }

  const model::Model& loadedModel() {
    if (model) return *model;
    const fs::path path = doc.at("model").at("path").get<std::string>();
    auto loaded = model::loadModel(path);
    const std::string expected = doc.at("model").at("weights_sha256").get<std::string>();
    if (loaded.weightsSha256() != expected) {
      throw Error(ErrorCode::Conflict, path.string() + ": the model's weights changed since the session started (SHA-256 " +
                                           loaded.weightsSha256().substr(0, 12) + "…, session expects " +
                                           expected.substr(0, 12) + "…); start a new session");
    }
    model = std::move(loaded);
    return *model;
  }

  // The files of a new revision and the committed session.json pointing at it. Files not given are
  // linked from the current revision. On any failure before session.json is replaced, the
  // half-written revision is removed and the session is as it was.
  struct Change {
    const image::Volume* mask = nullptr;  // required
    const image::Volume* entropy = nullptr;
    const image::Volume* weights = nullptr;
    std::vector<nn::Click> clicks;
    std::vector<DrawnSlice> drawn;
  };

  // Steps on one session from several processes (a shell and a web UI) take turns, and a step
  // computed from a state another process has replaced since is refused instead of undoing it.
  std::unique_ptr<DirectoryLock> lockUnchanged() const {
    auto lock = std::make_unique<DirectoryLock>(dir);
    std::string onDisk;
    try {
      onDisk = common::readFile(dir / kSessionFile);
    } catch (const Error&) {
    }
    if (onDisk != committedText) {
      throw Error(ErrorCode::Conflict, (dir / kSessionFile).string() +
                                           ": another step changed the session since it was opened; open it again and retry");
    }
    return lock;
  }

  void writeSessionFile(const json& updated) {
    std::string text = updated.dump(2) + "\n";
    common::writeFileAtomically(dir / kSessionFile, text);
    committedText = std::move(text);
  }

  void commit(const Change& change, StepReport& report, Clock::time_point started) {
    const auto lock = lockUnchanged();
    const int64_t current = revision();
    const int64_t next = doc.at("next_revision").get<int64_t>();
    const fs::path from = revisionDir(current), to = revisionDir(next);
    const bool hadWeights = doc.at("has_weights").get<bool>();
    const bool hasWeights = change.weights != nullptr || hadWeights;
    json updated = doc;
    try {
      fs::remove_all(to);  // a revision a crash left behind before its commit
      fs::create_directories(to);
      image::writeImage(*change.mask, to / kMaskFile, image::PixelType::UInt8);
      if (change.entropy) {
        image::writeImage(*change.entropy, to / kEntropyFile, image::PixelType::UInt8);
      } else {
        linkOrCopy(from / kEntropyFile, to / kEntropyFile);
      }
      if (change.weights) {
        image::writeImage(*change.weights, to / kWeightsFile, image::PixelType::Float32);
      } else if (hadWeights) {
        linkOrCopy(from / kWeightsFile, to / kWeightsFile);
      }
      linkOrCopy(from / kMaskFile, to / kPreviousFile);
      const json state = {{"revision", next},
                          {"clicks", clicksToJson(change.clicks)},
                          {"drawn", drawnToJson(change.drawn)},
                          {"has_weights", hasWeights}};
      common::writeFileAtomically(to / kStateFile, state.dump(2) + "\n");
      common::fsyncDirectory(to);
      common::fsyncDirectory(to.parent_path());

      report.revision = next;
      report.seconds = secondsSince(started);
      auto history = updated.at("history").get<std::vector<int64_t>>();
      history.push_back(next);
      const auto depth = static_cast<size_t>(updated.at("history_depth").get<int>());
      std::vector<int64_t> dropped;
      while (history.size() > depth + 1) {
        dropped.push_back(history.front());
        history.erase(history.begin());
      }
      updated["revision"] = next;
      updated["next_revision"] = next + 1;
      updated["history"] = history;
      updated["clicks"] = clicksToJson(change.clicks);
      updated["drawn"] = drawnToJson(change.drawn);
      updated["has_weights"] = hasWeights;
      updated["steps"].push_back(toJson(report));
      writeSessionFile(updated);  // the commit point
      doc = std::move(updated);
      for (int64_t r : dropped) fs::remove_all(revisionDir(r));
    } catch (...) {
      if (doc.at("revision").get<int64_t>() != next) {
        std::error_code ignored;
        fs::remove_all(to, ignored);
      }
      throw;
    }
    publishCurrent();
    previousCache = std::move(mask);
    mask = *change.mask;
    if (change.entropy) entropyCache = *change.entropy;
    if (change.weights) weightsCache = *change.weights;
    clicks = change.clicks;
    drawn = change.drawn;
  }

  // Points the top-level mask/entropy/weights at the current revision's files.
  void publishCurrent() const {
    const fs::path current = revisionDir(revision());
    publish(current / kMaskFile, dir / kMaskFile);
    publish(current / kEntropyFile, dir / kEntropyFile);
    if (fs::exists(current / kWeightsFile)) {
      publish(current / kWeightsFile, dir / kWeightsFile);
    } else {
      fs::remove(dir / kWeightsFile);
    }
    common::fsyncDirectory(dir);
  }
};

namespace {

// Reads a stored volume; any problem is the session's damage, named by file.
image::Volume readStored(const fs::path& path, const image::Geometry* grid, int classes) {
  if (!fs::exists(path)) throw Error(ErrorCode::Corrupt, path.string() + ": missing (damaged session)");
  image::Volume v;
  try {
    v = image::readImage(path);
  } catch (const Error& e) {
    throw Error(ErrorCode::Corrupt, std::string("damaged session: ") + e.what());
  }
  if (grid && v.geometry.size != grid->size) {
    throw Error(ErrorCode::Corrupt, path.string() + ": size " + describeSize(v.geometry) + " differs from the image's " +
                                        describeSize(*grid) + " (damaged session)");
  }
  if (classes > 0) {
    for (float value : v.voxels) {
      if (value < 0 || value >= static_cast<float>(classes) || value != std::floor(value)) {
        throw Error(ErrorCode::Corrupt, path.string() + ": label " + std::to_string(value) + " is not 0.." +
                                            std::to_string(classes - 1) + " (damaged session)");
      }
    }
  }
  return v;
}

}  // namespace

Session::Session(std::unique_ptr<State> state) : s_(std::move(state)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

Session Session::start(const fs::path& directory, const fs::path& modelPath, const fs::path& imagePath,
                       const SessionOptions& options) {
  if (fs::exists(directory) && !(fs::is_directory(directory) && fs::is_empty(directory))) {
    throw Error(ErrorCode::Conflict, directory.string() + ": exists and is not an empty directory; choose a new session directory");
  }
  const auto volume = image::readImage(imagePath);
  return start(directory, modelPath, volume, fs::absolute(imagePath).lexically_normal().string(), options);
}

Session Session::start(const fs::path& directory, const fs::path& modelPath, const image::Volume& input,
                       const std::string& imageSource, const SessionOptions& options) {
  const auto started = Clock::now();
  if (fs::exists(directory) && !(fs::is_directory(directory) && fs::is_empty(directory))) {
    throw Error(ErrorCode::Conflict, directory.string() + ": exists and is not an empty directory; choose a new session directory");
  }
  if (options.historyDepth < 1) {
    throw Error(ErrorCode::BadRequest, "history depth " + std::to_string(options.historyDepth) + ": must be at least 1");
  }
  auto model = model::loadModel(modelPath);
  fs::path finalDir = fs::absolute(directory).lexically_normal();
  if (finalDir.filename().empty()) finalDir = finalDir.parent_path();  // "DIR/" names DIR
  const fs::path parent = finalDir.parent_path();
  fs::create_directories(parent);
  // Built beside its final place and renamed into it: a start that fails leaves nothing.
  const fs::path staging = parent / ("." + finalDir.filename().string() + ".starting-" + std::to_string(::getpid()));
  auto state = std::make_unique<State>();
  state->dir = staging;
  try {
    fs::remove_all(staging);
    fs::create_directories(staging / "history" / "0");
    image::writeImage(input, staging / kImageFile, image::PixelType::Float32);
    // What a later `open` reads, bit for bit: sessions behave the same in one process or many.
    state->image = image::readImage(staging / kImageFile);
    state->classes = model.spec.classes;

    nn::InferenceOptions inference;
    inference.batchSize = options.inferenceBatchSize;
    const auto computeStarted = Clock::now();
    auto segmentation = nn::segmentDetailed(model, state->image, nn::Guidance{}, inference);
    const double computeSeconds = secondsSince(computeStarted);
    const double maxNats = std::log(static_cast<double>(std::max(2, model.spec.classes)));
    for (auto& v : segmentation.entropy.voxels) v = quantizeEntropy(v, maxNats);

    const fs::path rev0 = staging / "history" / "0";
    image::writeImage(segmentation.labels, rev0 / kMaskFile, image::PixelType::UInt8);
    image::writeImage(segmentation.entropy, rev0 / kEntropyFile, image::PixelType::UInt8);
    linkOrCopy(rev0 / kMaskFile, rev0 / kPreviousFile);
    linkOrCopy(rev0 / kMaskFile, staging / kInitialFile);
    common::writeFileAtomically(rev0 / kStateFile, json{{"revision", 0},
                                                        {"clicks", json::array()},
                                                        {"drawn", json::array()},
                                                        {"has_weights", false}}
                                                           .dump(2) + "\n");
    int64_t foreground = 0;
    for (float v : segmentation.labels.voxels) foreground += v > 0;
    StepReport report;
    report.step = "start";
    report.voxelsChanged = foreground;
    report.computeSeconds = computeSeconds;
    report.detail = "predicted " + std::to_string(foreground) + " foreground voxels on " + state->image.geometry.describe();
    report.seconds = secondsSince(started);

    const auto& prep = model.preprocessing;
    state->doc = {{"format", kFormat},
                  {"version", kVersion},
                  {"model",
                   {{"path", fs::absolute(modelPath).lexically_normal().string()},
                    {"weights_sha256", model.weightsSha256()},
                    {"generation", model.generation},
                    {"task", model.task.name},
                    {"classes", model.spec.classes},
                    {"guidance_channels", model.spec.guidanceChannels},
                    {"dims", model.spec.dims},
                    {"axis", model.spec.axis},
                    {"keeps_slice_axis", model.spec.dims == 2 && prep.targetSpacing[static_cast<size_t>(model.spec.axis)] == 0.0}}},
                  {"image",
                   {{"source", imageSource},
                    {"file", kImageFile},
                    {"sha256", common::sha256OfFile(staging / kImageFile)},
                    {"size", state->image.geometry.size}}},
                  {"created", utcNow()},
                  {"revision", 0},
                  {"next_revision", 1},
                  {"history", {0}},
                  {"history_depth", options.historyDepth},
                  {"clicks", json::array()},
                  {"drawn", json::array()},
                  {"has_weights", false},
                  {"steps", json::array({toJson(report)})},
                  {"accepted", json::array()}};
    state->publishCurrent();
    state->committedText = state->doc.dump(2) + "\n";
    common::writeFileAtomically(staging / kSessionFile, state->committedText);
    common::fsyncDirectory(staging / "history");
    if (fs::exists(finalDir)) fs::remove(finalDir);  // empty (checked above); rename needs it gone or empty
    fs::rename(staging, finalDir);
    common::fsyncDirectory(parent);
    state->dir = finalDir;
    state->mask = std::move(segmentation.labels);
    state->entropyCache = std::move(segmentation.entropy);
    state->previousCache = state->mask;
    state->initialCache = state->mask;
    state->model = std::move(model);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    throw;
  }
  return Session(std::move(state));
}

Session Session::open(const fs::path& directory) {
  const fs::path sessionFile = directory / kSessionFile;
  if (!fs::is_regular_file(sessionFile)) {
    throw Error(ErrorCode::NotFound, directory.string() + ": no session here (" + sessionFile.string() +
                                         " missing); start one with `tessera interact start`");
  }
  auto state = std::make_unique<State>();
  state->dir = fs::absolute(directory).lexically_normal();
  const std::string where = sessionFile.string();
  try {
    state->committedText = common::readFile(sessionFile);
    state->doc = json::parse(state->committedText);
    const auto& doc = state->doc;
    if (doc.at("format").get<std::string>() != kFormat) throw Error(ErrorCode::Corrupt, "format is not " + std::string(kFormat));
    if (doc.at("version").get<int>() != kVersion) {
      throw Error(ErrorCode::Corrupt, "version " + std::to_string(doc.at("version").get<int>()) + " is not " + std::to_string(kVersion));
    }
    state->classes = doc.at("model").at("classes").get<int>();
    (void)doc.at("model").at("path").get<std::string>();
    (void)doc.at("model").at("weights_sha256").get<std::string>();
    (void)state->modelDims();
    (void)state->modelAxis();
    (void)doc.at("model").at("keeps_slice_axis").get<bool>();
    (void)doc.at("image").at("sha256").get<std::string>();
    const auto revision = doc.at("revision").get<int64_t>();
    const auto history = doc.at("history").get<std::vector<int64_t>>();
    if (history.empty() || history.back() != revision) throw Error(ErrorCode::Corrupt, "history does not end at the current revision");
    if (doc.at("next_revision").get<int64_t>() <= revision) throw Error(ErrorCode::Corrupt, "next_revision is not after revision");
    if (doc.at("history_depth").get<int>() < 1) throw Error(ErrorCode::Corrupt, "history_depth below 1");
    (void)doc.at("has_weights").get<bool>();
    for (const auto& step : doc.at("steps")) (void)stepReportFromJson(step);
    (void)doc.at("accepted").get<std::vector<std::string>>();
    state->clicks = clicksFromJson(doc.at("clicks"));
    state->drawn = drawnFromJson(doc.at("drawn"));
  } catch (const json::exception& e) {
    throw Error(ErrorCode::Corrupt, where + ": damaged session file (" + e.what() + ")");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Corrupt) throw;
    throw Error(ErrorCode::Corrupt, where + ": damaged session file (" + e.what() + ")");
  }

  const fs::path imageFile = state->dir / kImageFile;
  if (!fs::is_regular_file(imageFile)) throw Error(ErrorCode::Corrupt, imageFile.string() + ": missing (damaged session)");
  if (common::sha256OfFile(imageFile) != state->doc.at("image").at("sha256").get<std::string>()) {
    throw Error(ErrorCode::Corrupt, imageFile.string() + ": content differs from the one the session started with (damaged session)");
  }
  if (!fs::is_regular_file(state->dir / kMaskFile)) {
    throw Error(ErrorCode::Corrupt, (state->dir / kMaskFile).string() + ": missing (damaged session)");
  }
  state->image = readStored(imageFile, nullptr, 0);
  const auto& grid = state->image.geometry;
  const fs::path current = state->revisionDir(state->revision());
  state->mask = readStored(current / kMaskFile, &grid, state->classes);
  std::vector<fs::path> needed{current / kEntropyFile, current / kPreviousFile, state->dir / kInitialFile};
  if (state->doc.at("has_weights").get<bool>()) needed.push_back(current / kWeightsFile);
  for (const auto& file : needed) {
    if (!fs::is_regular_file(file)) throw Error(ErrorCode::Corrupt, file.string() + ": missing (damaged session)");
  }
  for (const auto& c : state->clicks) {
    for (int a = 0; a < 3; ++a) {
      if (c.voxel[a] < 0 || c.voxel[a] >= grid.size[a]) throw Error(ErrorCode::Corrupt, where + ": a stored click lies outside the image");
    }
  }
  for (const auto& d : state->drawn) {
    if (d.axis < 0 || d.axis > 2 || d.slice < 0 || d.slice >= grid.size[d.axis]) {
      throw Error(ErrorCode::Corrupt, where + ": a stored drawn slice lies outside the image");
    }
  }
  return Session(std::move(state));
}

StepReport Session::click(const std::array<double, 3>& position, ClickSpace space, bool positive) {
  return clickVoxel(clickedVoxel(s_->image.geometry, position, space), positive);
}

StepReport Session::clickVoxel(const std::array<int64_t, 3>& voxel, bool positive) {
  const auto started = Clock::now();
  const auto& g = s_->image.geometry;
  for (int a = 0; a < 3; ++a) {
    if (voxel[a] < 0 || voxel[a] >= g.size[a]) {
      throw Error(ErrorCode::BadRequest, "click at voxel " + std::to_string(voxel[0]) + "," + std::to_string(voxel[1]) + "," +
                                             std::to_string(voxel[2]) + " lies outside the image (" + g.describe() + ")");
    }
  }
  const auto& model = s_->loadedModel();
  if (model.spec.guidanceChannels == 0) {
    throw Error(ErrorCode::BadRequest, s_->doc.at("model").at("path").get<std::string>() + " (task '" + model.task.name +
                                           "') has no guidance channels and cannot take clicks; train one with `tessera train --guidance`");
  }
  std::vector<nn::Click> clicks = s_->clicks;
  clicks.push_back({voxel, positive});

  nn::InferenceOptions inference;
  const int axis = model.spec.axis;
  const bool partial = s_->doc.at("model").at("keeps_slice_axis").get<bool>();
  if (partial) {
    const double reach = nn::clickReachSlices(model, g);
    const auto k = static_cast<double>(voxel[static_cast<size_t>(axis)]);
    inference.firstSlice = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(k - reach)));
    inference.lastSlice = std::min<int64_t>(g.size[static_cast<size_t>(axis)] - 1, static_cast<int64_t>(std::floor(k + reach)));
  }
  // The slices around the click are computed only near it in-plane (nn::InferenceOptions'
  // focus); a change farther away than the focus radius is not worth the wait of a whole slice.
  inference.focusVoxel = voxel;
  const auto computeStarted = Clock::now();
  auto segmentation = nn::segmentDetailed(model, s_->image, nn::Guidance{clicks}, inference);

  std::array<std::vector<uint8_t>, 3> drawnAlong;
  for (int a = 0; a < 3; ++a) drawnAlong[a].assign(static_cast<size_t>(g.size[a]), 0);
  for (const auto& d : s_->drawn) drawnAlong[static_cast<size_t>(d.axis)][static_cast<size_t>(d.slice)] = 1;
  image::Volume mask = s_->mask, entropy = s_->entropy();
  const double maxNats = std::log(static_cast<double>(std::max(2, model.spec.classes)));
  const auto& box = segmentation.computed;
  const std::array<int64_t, 3> lo{box[0], box[1], box[2]}, hi{box[3], box[4], box[5]};
  for (int64_t z = lo[2]; z <= hi[2]; ++z) {
    for (int64_t y = lo[1]; y <= hi[1]; ++y) {
      for (int64_t x = lo[0]; x <= hi[0]; ++x) {
        if (drawnAlong[0][static_cast<size_t>(x)] || drawnAlong[1][static_cast<size_t>(y)] || drawnAlong[2][static_cast<size_t>(z)]) continue;
        const auto i = static_cast<size_t>(mask.index(x, y, z));
        mask.voxels[i] = segmentation.labels.voxels[i];
        entropy.voxels[i] = quantizeEntropy(segmentation.entropy.voxels[i], maxNats);
      }
    }
  }
  StepReport report;
  report.step = "click";
  report.computeSeconds = secondsSince(computeStarted);
  const auto difference = compareMasks(s_->mask, mask);
  report.voxelsChanged = difference.changed;
  report.diceToPrevious = difference.dice;
  if (partial) {
    report.axis = axis;
    report.firstSlice = inference.firstSlice;
    report.lastSlice = inference.lastSlice;
  }
  report.detail = std::string(positive ? "positive" : "negative") + " click at voxel " + std::to_string(voxel[0]) + "," +
                  std::to_string(voxel[1]) + "," + std::to_string(voxel[2]) + " (" + std::to_string(clicks.size()) +
                  " clicks so far)";
  State::Change change;
  change.mask = &mask;
  change.entropy = &entropy;
  change.clicks = std::move(clicks);
  change.drawn = s_->drawn;
  s_->commit(change, report, started);
  return report;
}

StepReport Session::scribble(int axis, int64_t slice, const image::Volume& drawn) {
  const auto started = Clock::now();
  const auto& g = s_->image.geometry;
  if (axis < 0 || axis > 2) throw Error(ErrorCode::BadRequest, "scribble: axis " + std::to_string(axis) + " is not 0, 1 or 2");
  const auto a = static_cast<size_t>(axis);
  if (slice < 0 || slice >= g.size[a]) {
    throw Error(ErrorCode::BadRequest, "scribble: slice " + std::to_string(slice) + " is outside 0.." +
                                           std::to_string(g.size[a] - 1) + " along axis " + std::to_string(axis));
  }
  const auto& d = drawn.geometry;
  bool isSlice = d.size[a] == 1, isVolume = d.size == g.size;
  for (size_t b = 0; b < 3; ++b) {
    if (b != a && d.size[b] != g.size[b]) isSlice = false;
  }
  if (!isSlice && !isVolume) {
    auto expected = g;
    expected.size[a] = 1;
    throw Error(ErrorCode::BadRequest, "scribble: the drawn mask is " + describeSize(d) + "; expected one slice across axis " +
                                           std::to_string(axis) + " (" + describeSize(expected) +
                                           ") or a volume of the image's size (" + describeSize(g) + ")");
  }
  const int64_t source = isSlice && d.size[a] == 1 ? 0 : slice;
  image::Volume mask = s_->mask;
  int64_t foreground = 0;
  std::array<int64_t, 3> lo{0, 0, 0}, hi{g.size[0] - 1, g.size[1] - 1, g.size[2] - 1};
  lo[a] = hi[a] = slice;
  for (int64_t z = lo[2]; z <= hi[2]; ++z) {
    for (int64_t y = lo[1]; y <= hi[1]; ++y) {
      for (int64_t x = lo[0]; x <= hi[0]; ++x) {
        std::array<int64_t, 3> from{x, y, z};
        from[a] = source;
        const float value = drawn.at(from[0], from[1], from[2]);
        if (!(value >= 0) || value >= static_cast<float>(s_->classes) || value != std::floor(value)) {
          throw Error(ErrorCode::BadRequest, "scribble: label " + std::to_string(value) + " is not one of 0.." +
                                                 std::to_string(s_->classes - 1) + " (the model's classes)");
        }
        mask.at(x, y, z) = value;
        foreground += value > 0;
      }
    }
  }
  StepReport report;
  report.step = "scribble";
  report.computeSeconds = secondsSince(started);
  const auto difference = compareMasks(s_->mask, mask);
  report.voxelsChanged = difference.changed;
  report.diceToPrevious = difference.dice;
  report.axis = -1;
  report.detail = "slice " + std::to_string(slice) + " across axis " + std::to_string(axis) + " drawn (" +
                  std::to_string(foreground) + " foreground voxels)";
  State::Change change;
  change.mask = &mask;
  change.clicks = s_->clicks;
  change.drawn = s_->drawn;
  if (std::find(change.drawn.begin(), change.drawn.end(), DrawnSlice{axis, slice}) == change.drawn.end()) {
    change.drawn.push_back({axis, slice});
  }
  s_->commit(change, report, started);
  return report;
}

StepReport Session::propagate() {
  const auto started = Clock::now();
  if (s_->drawn.empty()) {
    throw Error(ErrorCode::BadRequest, "propagate: no drawn slices in this session; draw some with `tessera interact scribble`");
  }
  const int axis = s_->drawn.front().axis;
  std::vector<int64_t> slices;
  for (const auto& d : s_->drawn) {
    if (d.axis != axis) {
      throw Error(ErrorCode::BadRequest, "propagate: slices were drawn across axes " + std::to_string(axis) + " and " +
                                             std::to_string(d.axis) + "; propagation works across one axis");
    }
    slices.push_back(d.slice);
  }
  const auto proxy = propagateSlices(s_->image, s_->mask, axis, slices);
  image::Volume mask = s_->mask;
  // Beyond the propagation's reach (weight 0) its labels are unknown: the model's prediction stays.
  for (size_t i = 0; i < mask.voxels.size(); ++i) {
    if (proxy.weights.voxels[i] > 0) mask.voxels[i] = proxy.labels.voxels[i];
  }
  for (const auto& d : s_->drawn) {  // drawn slices are what the person drew, whatever the proxy says
    const auto& g = mask.geometry;
    std::array<int64_t, 3> lo{0, 0, 0}, hi{g.size[0] - 1, g.size[1] - 1, g.size[2] - 1};
    lo[static_cast<size_t>(d.axis)] = hi[static_cast<size_t>(d.axis)] = d.slice;
    for (int64_t z = lo[2]; z <= hi[2]; ++z)
      for (int64_t y = lo[1]; y <= hi[1]; ++y)
        for (int64_t x = lo[0]; x <= hi[0]; ++x) mask.at(x, y, z) = s_->mask.at(x, y, z);
  }
  StepReport report;
  report.step = "propagate";
  report.computeSeconds = secondsSince(started);
  const auto difference = compareMasks(s_->mask, mask);
  report.voxelsChanged = difference.changed;
  report.diceToPrevious = difference.dice;
  report.detail = "proxy mask from " + std::to_string(slices.size()) + " drawn slices across axis " + std::to_string(axis) +
                  " (" + std::to_string(proxy.propagatedSlices) + " slices propagated)";
  State::Change change;
  change.mask = &mask;
  change.weights = &proxy.weights;
  change.clicks = s_->clicks;
  change.drawn = s_->drawn;
  s_->commit(change, report, started);
  return report;
}

std::vector<SliceSuggestion> Session::suggest(int top) const {
  if (top < 1) throw Error(ErrorCode::BadRequest, "suggest: --top " + std::to_string(top) + " must be at least 1");
  SuggestionOptions options;
  options.top = top;
  if (s_->modelDims() == 2) {
    options.axes = {s_->modelAxis()};
  } else {
    options.axes = {0, 1, 2};
  }
  return rankSlices(s_->previous(), s_->mask, normalizedEntropy(), s_->drawn, options);
}

AcceptedCase Session::accept(const fs::path& casesDir) {
  const auto started = Clock::now();
  const auto& doc = s_->doc;
  std::string stem = fs::path(doc.at("image").at("source").get<std::string>()).filename().string();
  for (const char* extension : {".gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr"}) {
    if (stem.size() > std::string(extension).size() && stem.ends_with(extension)) stem.resize(stem.size() - std::string(extension).size());
  }
  for (char& c : stem) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  }
  if (stem.empty()) stem = "case";
  const std::string base = stem + "-" + utcNow("%Y%m%dT%H%M%SZ");
  std::string name = base;
  for (int n = 2; fs::exists(casesDir / "images" / (name + ".nii.gz")) || fs::exists(casesDir / "labels" / (name + ".nii.gz")) ||
                  fs::exists(casesDir / "weights" / (name + ".nii.gz")) || fs::exists(casesDir / "interactions" / (name + ".json"));
       ++n) {
    name = base + "-" + std::to_string(n);
  }

  int clicks = 0, scribbles = 0, propagations = 0, undos = 0, steps = 0;
  double seconds = 0.0;
  for (const auto& step : doc.at("steps")) {
    const auto kind = step.at("step").get<std::string>();
    if (kind == "start" || kind == "accept") continue;
    ++steps;
    seconds += step.at("seconds").get<double>();
    clicks += kind == "click";
    scribbles += kind == "scribble";
    propagations += kind == "propagate";
    undos += kind == "undo";
  }
  const auto initialToAccepted = compareMasks(s_->initial(), s_->mask);
  const image::Volume* proxyWeights = s_->weights();
  double sessionSeconds = 0.0;
  {
    std::tm tm{};
    std::istringstream in(doc.at("created").get<std::string>());
    in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
    if (!in.fail()) sessionSeconds = std::difftime(std::time(nullptr), timegm(&tm));
  }
  const json usage = {{"format", "tessera-interaction"},
                      {"version", 1},
                      {"case", name},
                      {"image_source", doc.at("image").at("source")},
                      {"model",
                       {{"weights_sha256", doc.at("model").at("weights_sha256")},
                        {"generation", doc.at("model").at("generation")},
                        {"task", doc.at("model").at("task")}}},
                      {"clicks", clicks},
                      {"scribbles", scribbles},
                      {"propagations", propagations},
                      {"undos", undos},
                      {"steps", steps},
                      {"drawn_slices", s_->drawn.size()},
                      {"seconds", seconds},
                      {"session_seconds", sessionSeconds},
                      {"dice_initial_to_accepted", initialToAccepted.dice},
                      {"voxels_changed", initialToAccepted.changed},
                      {"accepted_at", utcNow()}};

  const auto lock = s_->lockUnchanged();
  model::TrainingCase corrected;
  corrected.image = s_->image;
  corrected.labels = s_->mask;
  model::writeCase(casesDir, name, corrected);
  AcceptedCase accepted;
  if (proxyWeights) {
    fs::create_directories(casesDir / "weights");
    accepted.weights = casesDir / "weights" / (name + ".nii.gz");
    image::writeImage(*proxyWeights, accepted.weights, image::PixelType::Float32);
  }
  fs::create_directories(casesDir / "interactions");
  common::writeFileAtomically(casesDir / "interactions" / (name + ".json"), usage.dump(2) + "\n");

  accepted.name = name;
  accepted.image = casesDir / "images" / (name + ".nii.gz");
  accepted.labels = casesDir / "labels" / (name + ".nii.gz");
  accepted.interactions = casesDir / "interactions" / (name + ".json");
  StepReport& report = accepted.report;
  report.step = "accept";
  report.revision = s_->revision();
  report.voxelsChanged = initialToAccepted.changed;
  report.diceToPrevious = initialToAccepted.dice;
  report.seconds = secondsSince(started);
  report.detail = "saved as case " + name + " in " + casesDir.string() + " (Dice of the initial prediction to it " +
                  std::to_string(initialToAccepted.dice).substr(0, 5) + ", " + std::to_string(clicks) + " clicks)";
  json updated = doc;
  updated["accepted"].push_back(name);
  updated["steps"].push_back(toJson(report));
  s_->writeSessionFile(updated);
  s_->doc = std::move(updated);
  return accepted;
}

StepReport Session::undo() {
  const auto started = Clock::now();
  auto history = s_->doc.at("history").get<std::vector<int64_t>>();
  if (history.size() < 2) {
    throw Error(ErrorCode::BadRequest, "undo: nothing to undo in " + s_->dir.string() +
                                           (s_->doc.at("steps").size() > 1 ? " (history depth reached)" : ""));
  }
  const int64_t current = history.back(), back = history[history.size() - 2];
  const fs::path backDir = s_->revisionDir(back);
  // Everything the restored revision needs, read and checked before anything changes.
  std::vector<nn::Click> clicks;
  std::vector<DrawnSlice> drawn;
  bool hasWeights = false;
  try {
    const json state = json::parse(common::readFile(backDir / kStateFile));
    clicks = clicksFromJson(state.at("clicks"));
    drawn = drawnFromJson(state.at("drawn"));
    hasWeights = state.at("has_weights").get<bool>();
  } catch (const json::exception& e) {
    throw Error(ErrorCode::Corrupt, (backDir / kStateFile).string() + ": damaged (" + e.what() + ")");
  }
  const auto& grid = s_->image.geometry;
  auto mask = readStored(backDir / kMaskFile, &grid, s_->classes);
  auto entropy = readStored(backDir / kEntropyFile, &grid, 256);
  auto previous = readStored(backDir / kPreviousFile, &grid, s_->classes);
  image::Volume weights;
  if (hasWeights) weights = readStored(backDir / kWeightsFile, &grid, 0);

  StepReport report;
  report.step = "undo";
  report.revision = back;
  const auto difference = compareMasks(s_->mask, mask);
  report.voxelsChanged = difference.changed;
  report.diceToPrevious = difference.dice;
  report.detail = "back to revision " + std::to_string(back) + " (" + std::to_string(history.size() - 2) + " more undo levels)";
  report.seconds = secondsSince(started);
  json updated = s_->doc;
  history.pop_back();
  updated["revision"] = back;
  updated["history"] = history;
  updated["clicks"] = clicksToJson(clicks);
  updated["drawn"] = drawnToJson(drawn);
  updated["has_weights"] = hasWeights;
  updated["steps"].push_back(toJson(report));
  const auto lock = s_->lockUnchanged();
  s_->writeSessionFile(updated);  // the commit point
  s_->doc = std::move(updated);
  s_->publishCurrent();
  std::error_code ignored;
  fs::remove_all(s_->revisionDir(current), ignored);
  s_->mask = std::move(mask);
  s_->entropyCache = std::move(entropy);
  s_->previousCache = std::move(previous);
  s_->weightsCache.reset();
  if (hasWeights) s_->weightsCache = std::move(weights);
  s_->clicks = std::move(clicks);
  s_->drawn = std::move(drawn);
  return report;
}

const fs::path& Session::directory() const { return s_->dir; }
const image::Volume& Session::image() const { return s_->image; }
const image::Volume& Session::mask() const { return s_->mask; }
const image::Volume& Session::previousMask() const { return s_->previous(); }
const image::Volume& Session::initialMask() const { return s_->initial(); }
image::Volume Session::normalizedEntropy() const {
  image::Volume e = s_->entropy();
  for (auto& v : e.voxels) v /= 255.0f;
  return e;
}
const std::vector<nn::Click>& Session::clicks() const { return s_->clicks; }
const std::vector<DrawnSlice>& Session::drawnSlices() const { return s_->drawn; }
int64_t Session::revision() const { return s_->revision(); }
int Session::undoLevels() const { return static_cast<int>(s_->doc.at("history").size()) - 1; }
std::vector<StepReport> Session::steps() const {
  std::vector<StepReport> steps;
  for (const auto& step : s_->doc.at("steps")) steps.push_back(stepReportFromJson(step));
  return steps;
}
int Session::defaultAxis() const { return s_->modelDims() == 2 ? s_->modelAxis() : 2; }

}  // namespace tessera::interactive
