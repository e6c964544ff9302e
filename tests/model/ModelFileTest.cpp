#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "Phantom.h"
#include "tessera/model/Model.h"
#include "tessera/common/Error.h"

using namespace tessera::model;
using namespace tessera::common;
using tessera::Error;
using tessera::ErrorCode;
namespace fs = std::filesystem;

namespace {

Model smallModel() {
  TaskInfo task;
  task.name = "brain";
  task.modality = "MR";
  task.anatomy = "BRAIN";
  task.disease = "none";
  task.labels = {{0, "background"}, {1, "brain"}};
  Preprocessing prep;
  prep.targetSpacing = {2, 2, 0};
  Model m = initialModel(tessera::test::tinySpec(), prep, task, 5);
  m.generation = 3;
  m.parentGeneration = 2;
  return m;
}

std::string errorOf(std::string_view bytes) {
  try {
    decodeModel(bytes, "m.tsm");
  } catch (const tessera::Error& e) {
    return e.what();
  }
  return "";
}

// Rewrites the JSON header of an encoded model, keeping the weights section as it is.
std::string withHeader(const std::string& encoded, const std::function<void(nlohmann::json&)>& edit) {
  uint64_t headerLength = 0;
  std::memcpy(&headerLength, encoded.data() + 12, 8);
  auto header = nlohmann::json::parse(encoded.substr(20, headerLength));
  edit(header);
  const std::string text = header.dump();
  std::string out = encoded.substr(0, 12);
  const uint64_t n = text.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += text;
  out += encoded.substr(20 + headerLength);
  return out;
}

}  // namespace

TEST(ModelFile, RoundTripKeepsEverything) {
  const Model m = smallModel();
  const Model back = decodeModel(encodeModel(m), "m.tsm");
  EXPECT_EQ(back.spec.baseFeatures, m.spec.baseFeatures);
  EXPECT_EQ(back.spec.depth, m.spec.depth);
  EXPECT_EQ(back.preprocessing.targetSpacing, m.preprocessing.targetSpacing);
  EXPECT_EQ(back.task.name, "brain");
  EXPECT_EQ(back.task.labels.at(1), "brain");
  EXPECT_EQ(back.generation, 3);
  EXPECT_EQ(back.parentGeneration, 2);
  ASSERT_EQ(back.weights.size(), m.weights.size());
  for (size_t i = 0; i < m.weights.size(); ++i) {
    EXPECT_EQ(back.weights[i].name, m.weights[i].name);
    EXPECT_EQ(back.weights[i].shape, m.weights[i].shape);
    EXPECT_EQ(back.weights[i].values, m.weights[i].values);
  }
  EXPECT_EQ(back.weightsSha256(), m.weightsSha256());
  EXPECT_EQ(m.weightsSha256().size(), 64u);
}

TEST(ModelFile, SaveAndLoadThroughTheFileSystem) {
  const auto dir = fs::temp_directory_path() / "tessera-model-file-test";
  fs::create_directories(dir);
  const Model m = smallModel();
  saveModel(m, dir / "a.tsm");
  const Model back = loadModel(dir / "a.tsm");
  EXPECT_EQ(back.weightsSha256(), m.weightsSha256());
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_FALSE(entry.path().filename().string().starts_with(".tmp")) << "temp file left behind";
  }
  try {
    loadModel(dir / "missing.tsm");
    FAIL();
  } catch (const tessera::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.tsm: no such file"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(ModelFile, EveryTruncationIsAClearError) {
  const std::string bytes = encodeModel(smallModel());
  for (size_t cut = 0; cut < bytes.size(); cut += std::max<size_t>(1, bytes.size() / 97)) {
    const std::string message = errorOf(std::string_view(bytes).substr(0, cut));
    ASSERT_FALSE(message.empty()) << "truncation at " << cut << " was accepted";
    EXPECT_EQ(message.rfind("m.tsm: ", 0), 0u) << message;
  }
  EXPECT_NE(errorOf(std::string_view(bytes).substr(0, bytes.size() - 1)).find("truncated"), std::string::npos);
}

TEST(ModelFile, AFlippedWeightByteFailsTheChecksum) {
  std::string bytes = encodeModel(smallModel());
  bytes[bytes.size() - 3] ^= 0x10;
  EXPECT_NE(errorOf(bytes).find("SHA-256"), std::string::npos) << errorOf(bytes);
}

TEST(ModelFile, ForeignFilesAreRecognised) {
  EXPECT_NE(errorOf("\x89PNG\r\n\x1a\n0000000000000").find("not a Tessera model file"), std::string::npos);
  EXPECT_NE(errorOf("").find("not a Tessera model file"), std::string::npos);
  // A Python pickle (what some tools ship as a "model") must never be interpreted.
  EXPECT_NE(errorOf("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix").find("not a Tessera model file"),
            std::string::npos);
  std::string bytes = encodeModel(smallModel());
  bytes[8] = 9;  // format version
  EXPECT_NE(errorOf(bytes).find("version 9 is not supported"), std::string::npos) << errorOf(bytes);
  bytes = encodeModel(smallModel()) + "extra";
  EXPECT_NE(errorOf(bytes).find("unexpected bytes"), std::string::npos);
}

TEST(ModelFile, HeaderProblemsNameTheField) {
  const std::string bytes = encodeModel(smallModel());
  EXPECT_NE(errorOf(withHeader(bytes, [](auto& h) { h["spec"]["depth"] = 99; })).find("'depth'"), std::string::npos);
  EXPECT_NE(errorOf(withHeader(bytes, [](auto& h) { h.erase("generation"); })).find("generation"), std::string::npos);
  EXPECT_NE(errorOf(withHeader(bytes, [](auto& h) { h["format"] = "other"; })).find("tessera-model"),
            std::string::npos);
  // Weights that belong to a different network, even with a matching checksum.
  const std::string other = withHeader(bytes, [](auto& h) { h["spec"]["base_features"] = 4; });
  EXPECT_NE(errorOf(other).find("does not match the spec"), std::string::npos) << errorOf(other);
}

TEST(ModelFile, NonFiniteWeightsAreRejected) {
  Model m = smallModel();
  m.weights[0].values[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(errorOf(encodeModel(m)).find("NaN"), std::string::npos) << errorOf(encodeModel(m));
}

TEST(Weights, HostileLengthsDoNotAllocate) {
  WeightSet w{{"a", {2, 2}, {1, 2, 3, 4}}};
  std::string bytes = encodeWeights(w);
  // dims field of the first tensor: magic 4 + count 4 + name len 2 + name 1 + dtype 1 + rank 1
  const int64_t huge = int64_t{1} << 31;
  std::memcpy(bytes.data() + 13, &huge, 8);
  EXPECT_THROW(decodeWeights(bytes, "w"), tessera::Error);
}
