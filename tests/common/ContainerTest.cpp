// The one envelope and the one weight-record reader/writer shared by models and updates.
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tessera/common/Container.h"
#include "tessera/common/WeightRecords.h"

namespace common = tessera::common;
using tessera::Error;
using tessera::ErrorCode;
namespace fs = std::filesystem;

namespace {

common::WeightSet sampleWeights() {
  return {{"enc0.0.conv.weight", {2, 1, 3, 3}, std::vector<float>(18)},
          {"enc0.0.conv.bias", {2}, {0.5f, -0.25f}},
          {"enc0.0.norm.num_batches_tracked", {}, {7.0f}}};
}

std::string sampleFile(common::ContainerKind kind) {
  auto w = sampleWeights();
  for (size_t i = 0; i < w[0].values.size(); ++i) w[0].values[i] = static_cast<float>(i) * 0.125f;
  const std::string records = common::encodeWeights(w);
  return common::encodeContainerPrefix(kind, {{"format", "x"}, {"n", 1}}, records.size()) + records;
}

ErrorCode codeOf(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::Internal;  // nothing thrown
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("tessera-container-" + std::to_string(std::random_device{}()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST(WeightRecords, EncodeDecodeRoundTripKeepsNamesShapesAndBits) {
  auto w = sampleWeights();
  w[0].values[3] = -1.5e-38f;
  const auto back = common::decodeWeights(common::encodeWeights(w), "w");
  ASSERT_EQ(back.size(), w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(back[i].name, w[i].name);
    EXPECT_EQ(back[i].shape, w[i].shape);
    EXPECT_EQ(back[i].values, w[i].values);
  }
}

TEST(WeightRecords, FileWriterAndStringEncoderProduceTheSameBytesAndHash) {
  TempDir dir;
  const auto w = sampleWeights();
  common::WeightFileWriter writer(dir.path, static_cast<uint32_t>(w.size()));
  for (const auto& t : w) {
    writer.beginTensor(t.name, t.shape);
    writer.write(t.values.data(), static_cast<int64_t>(t.values.size()));
  }
  const std::string hash = writer.finishHash();
  writer.file().commit(dir.path / "w.bin");
  const std::string expected = common::encodeWeights(w);
  EXPECT_EQ(common::readFile(dir.path / "w.bin"), expected);
  EXPECT_EQ(hash, common::sha256Hex(expected));
  EXPECT_EQ(writer.bytesWritten(), expected.size());
}

TEST(WeightRecords, WritersRefuseWhatTheReaderWouldRefuse) {
  common::WeightSet longName{{std::string(2000, 'a'), {1}, {1.0f}}};
  EXPECT_EQ(codeOf([&] { common::encodeWeights(longName); }), ErrorCode::BadModel);
  common::WeightSet wrongCount{{"t", {2, 2}, {1.0f}}};
  EXPECT_EQ(codeOf([&] { common::encodeWeights(wrongCount); }), ErrorCode::ShapeMismatch);
  common::WeightSet deep{{"t", std::vector<int64_t>(9, 1), {1.0f}}};
  EXPECT_EQ(codeOf([&] { common::encodeWeights(deep); }), ErrorCode::BadModel);
}

TEST(WeightRecords, FormatErrorsCarryTheCallersCode) {
  std::string bytes = common::encodeWeights(sampleWeights());
  bytes[0] = 'X';
  EXPECT_EQ(codeOf([&] { common::decodeWeights(bytes, "m", ErrorCode::BadModel); }), ErrorCode::BadModel);
  EXPECT_EQ(codeOf([&] { common::decodeWeights(bytes, "u", ErrorCode::BadUpdate); }), ErrorCode::BadUpdate);
  auto nan = sampleWeights();
  nan[1].values[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(codeOf([&] { common::decodeWeights(common::encodeWeights(nan), "n"); }), ErrorCode::NonFinite);
}

TEST(WeightRecords, MemoryAndFileReadersAgreeOnEveryTruncation) {
  TempDir dir;
  const std::string bytes = common::encodeWeights(sampleWeights());
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    const std::string part = bytes.substr(0, cut);
    std::ofstream(dir.path / "cut.bin", std::ios::binary) << part;
    const auto fromMemory = codeOf([&] { common::decodeWeights(part, "mem", ErrorCode::BadUpdate); });
    const auto fromFile = codeOf([&] {
      common::WeightRecordReader r(common::WeightsLocation{dir.path / "cut.bin", 0, 0}, "file", ErrorCode::BadUpdate);
      std::vector<float> buffer;
      while (r.next()) {
        buffer.resize(static_cast<size_t>(r.tensor().elements));
        r.read(buffer.data(), r.tensor().elements);
      }
    });
    EXPECT_EQ(fromMemory, ErrorCode::BadUpdate) << "cut at " << cut;
    EXPECT_EQ(fromFile, ErrorCode::BadUpdate) << "cut at " << cut;
  }
}

TEST(Container, ModelAndUpdateFramingReadBackFromMemoryAndFile) {
  TempDir dir;
  for (auto kind : {common::ContainerKind::Model, common::ContainerKind::Update}) {
    const std::string file = sampleFile(kind);
    std::ofstream(dir.path / "f.bin", std::ios::binary) << file;
    const auto a = common::readContainerLayout(file, kind, "mem");
    const auto b = common::readContainerFileLayout(dir.path / "f.bin", kind, "file");
    EXPECT_EQ(a.headerText, b.headerText);
    EXPECT_EQ(a.weightsOffset, b.weightsOffset);
    EXPECT_EQ(a.weightsLength, b.weightsLength);
    EXPECT_EQ(nlohmann::json::parse(a.headerText).at("n"), 1);
    EXPECT_EQ(a.weightsOffset + a.weightsLength, file.size());
    const auto header = common::parseContainerHeader(a.headerText, kind, "x", "mem");
    EXPECT_EQ(header.at("format"), "x");
  }
}

TEST(Container, AKindIsNotTheOther) {
  const std::string model = sampleFile(common::ContainerKind::Model);
  try {
    common::readContainerLayout(model, common::ContainerKind::Update, "upload");
    FAIL() << "a model read as an update";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadUpdate);
    EXPECT_NE(std::string(e.what()).find("TSUPDATE"), std::string::npos) << e.what();
  }
}

TEST(Container, EveryTruncationAndTrailingByteIsRefused) {
  const std::string file = sampleFile(common::ContainerKind::Model);
  for (size_t cut = 0; cut < file.size(); ++cut) {
    EXPECT_EQ(codeOf([&] { common::readContainerLayout(file.substr(0, cut), common::ContainerKind::Model, "m"); }),
              ErrorCode::BadModel)
        << "cut at " << cut;
  }
  EXPECT_EQ(codeOf([&] { common::readContainerLayout(file + "x", common::ContainerKind::Model, "m"); }), ErrorCode::BadModel);
}

TEST(Container, HeaderLimitIsTheSameForWritingAndReading) {
  const nlohmann::json big{{"format", "x"}, {"pad", std::string(common::ContainerLimits::maxHeaderBytes, 'p')}};
  EXPECT_EQ(codeOf([&] { common::encodeContainerPrefix(common::ContainerKind::Update, big, 0); }), ErrorCode::BadUpdate);
  // A hand-made prefix declaring a header one byte over the limit.
  std::string file = sampleFile(common::ContainerKind::Update);
  const uint64_t huge = common::ContainerLimits::maxHeaderBytes + 1;
  std::memcpy(file.data() + 12, &huge, 8);
  try {
    common::readContainerLayout(file, common::ContainerKind::Update, "u");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("over the limit"), std::string::npos) << e.what();
  }
}

TEST(Container, BadHeadersNameTheProblem) {
  const std::string records = common::encodeWeights({});
  auto framed = [&](const std::string& header) {
    std::string out = common::encodeContainerPrefix(common::ContainerKind::Model, nlohmann::json::object(), records.size());
    // Replace the "{}" header by `header`, fixing the length.
    const uint64_t length = header.size();
    return out.substr(0, 12) + std::string(reinterpret_cast<const char*>(&length), 8) + header +
           out.substr(out.size() - 8) + records;
  };
  for (const std::string& header : {std::string("{not json"), std::string("[1]"), std::string(R"({"format": 3})"),
                                     std::string(R"({"format": "other"})")}) {
    const auto layout = common::readContainerLayout(framed(header), common::ContainerKind::Model, "m");
    EXPECT_EQ(codeOf([&] { common::parseContainerHeader(layout.headerText, common::ContainerKind::Model, "x", "m"); }),
              ErrorCode::BadModel)
        << header;
  }
}
