#include <cmath>
#include <limits>

#include "FederationTestSupport.h"
#include "tessera/federation/ModelUpdate.h"

using namespace tessera;
using namespace tessera::federation;
namespace fs = std::filesystem;
using tessera::test::readBytes;
using tessera::test::setU64;
using tessera::test::u64At;
using tessera::test::withHeader;
using tessera::test::withHeaderText;
using tessera::test::TempDir;
using tessera::test::tinyWeights;
using tessera::test::updateErrorOf;
using tessera::test::writeBytes;

namespace {

ModelUpdate sampleUpdate() {
  ModelUpdate u;
  u.header.task = "brain";
  u.header.baseGeneration = 4;
  u.header.kind = UpdateKind::Delta;
  u.header.samples = 12.5;
  u.header.metrics = {{"dice", 0.8125}, {"loss", 0.25}};
  u.weights = tinyWeights(0.125f, -0.0625f);
  return u;
}

std::string decodeError(const std::string& bytes, const std::string& code = "bad_update") {
  return updateErrorOf([&] { decodeUpdate(bytes, "upload.tsu"); }, code);
}

std::string fileError(const TempDir& dir, const std::string& bytes, const std::string& code = "bad_update") {
  writeBytes(dir / "u.tsu", bytes);
  return updateErrorOf([&] { readUpdateFileInfo(dir / "u.tsu", "stored update"); }, code);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(ModelUpdate, KindNames) {
  EXPECT_EQ(toString(UpdateKind::Delta), "delta");
  EXPECT_EQ(toString(UpdateKind::Weights), "weights");
  EXPECT_EQ(updateKindFromString("delta"), UpdateKind::Delta);
  EXPECT_EQ(updateKindFromString("weights"), UpdateKind::Weights);
  updateErrorOf([] { updateKindFromString("gradient"); }, "bad_update");
}

TEST(ModelUpdate, EncodeDecodeRoundTrip) {
  const ModelUpdate u = sampleUpdate();
  const std::string bytes = encodeUpdate(u);
  ASSERT_GE(bytes.size(), 28u);
  EXPECT_EQ(bytes.substr(0, 8), "TSUPDATE");
  uint32_t version = 0;
  std::memcpy(&version, bytes.data() + 8, 4);
  EXPECT_EQ(version, 1u);

  const ModelUpdate back = decodeUpdate(bytes, "rt");
  const std::string weights = common::encodeWeights(u.weights);
  EXPECT_EQ(back.header.task, "brain");
  EXPECT_EQ(back.header.baseGeneration, 4);
  EXPECT_EQ(back.header.kind, UpdateKind::Delta);
  EXPECT_EQ(back.header.samples, 12.5);
  EXPECT_EQ(back.header.metrics, u.header.metrics);
  EXPECT_EQ(back.header.parameters, 6 + 3 + 4);
  EXPECT_EQ(back.header.weightsBytes, weights.size());
  EXPECT_EQ(back.header.weightsSha256, common::sha256Hex(weights));
  ASSERT_EQ(back.weights.size(), u.weights.size());
  for (size_t i = 0; i < u.weights.size(); ++i) {
    EXPECT_EQ(back.weights[i].name, u.weights[i].name);
    EXPECT_EQ(back.weights[i].shape, u.weights[i].shape);
    EXPECT_EQ(back.weights[i].values, u.weights[i].values);
  }
  // A full-weights update keeps its kind.
  ModelUpdate full = sampleUpdate();
  full.header.kind = UpdateKind::Weights;
  EXPECT_EQ(decodeUpdate(encodeUpdate(full), "rt").header.kind, UpdateKind::Weights);
}

TEST(ModelUpdate, FileInfoLocatesTheWeightsSection) {
  TempDir dir;
  const ModelUpdate u = sampleUpdate();
  const std::string bytes = encodeUpdate(u);
  writeBytes(dir / "u.tsu", bytes);
  const auto info = readUpdateFileInfo(dir / "u.tsu", "stored");
  const uint64_t headerLength = u64At(bytes, 12);
  const std::string weights = common::encodeWeights(u.weights);
  EXPECT_EQ(info.weightsOffset, 8 + 4 + 8 + headerLength + 8);
  EXPECT_EQ(info.weightsLength, weights.size());
  EXPECT_EQ(info.weightsOffset + info.weightsLength, bytes.size());
  EXPECT_EQ(bytes.substr(info.weightsOffset, info.weightsLength), weights);
  EXPECT_EQ(u64At(bytes, info.weightsOffset - 8), weights.size());
  EXPECT_EQ(info.header.task, "brain");
  EXPECT_EQ(info.header.samples, 12.5);
  EXPECT_EQ(info.header.weightsSha256, common::sha256Hex(weights));
  EXPECT_EQ(info.header.parameters, 13);
}

TEST(ModelUpdate, WrongMagicOrVersion) {
  TempDir dir;
  const std::string good = encodeUpdate(sampleUpdate());
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_TRUE(contains(decodeError(magic), "TSUPDATE")) << decodeError(magic);
  EXPECT_TRUE(contains(fileError(dir, magic), "TSUPDATE"));
  // A model file is not an update.
  std::string model = good;
  std::memcpy(model.data(), "TSMODEL\0", 8);
  EXPECT_TRUE(contains(decodeError(model), "TSUPDATE"));

  std::string version = good;
  const uint32_t two = 2;
  std::memcpy(version.data() + 8, &two, 4);
  const auto message = decodeError(version);
  EXPECT_TRUE(contains(message, "version 2")) << message;
  EXPECT_TRUE(contains(fileError(dir, version), "version 2"));
  EXPECT_TRUE(contains(message, "upload.tsu: ")) << "messages name the source: " << message;
}

TEST(ModelUpdate, TruncatedAnywhereIsBadUpdate) {
  TempDir dir;
  const std::string good = encodeUpdate(sampleUpdate());
  for (size_t cut = 0; cut < good.size(); ++cut) {
    const std::string part = good.substr(0, cut);
    decodeError(part);
    // The file reader looks only at the framing, so every cut shows as a length mismatch there.
    fileError(dir, part);
  }
  // Cut inside the header specifically.
  const auto message = decodeError(good.substr(0, 25));
  EXPECT_TRUE(contains(message, "header")) << message;
}

TEST(ModelUpdate, ImplausibleHeaderLength) {
  TempDir dir;
  std::string bytes = encodeUpdate(sampleUpdate());
  setU64(bytes, 12, ~uint64_t{0});
  decodeError(bytes);
  fileError(dir, bytes);
  setU64(bytes, 12, uint64_t{1} << 40);
  decodeError(bytes);
}

TEST(ModelUpdate, HeaderThatIsNotJson) {
  TempDir dir;
  const std::string good = encodeUpdate(sampleUpdate());
  const std::string bad = withHeaderText(good, "{\"format\": \"tessera-update\", oops");
  EXPECT_TRUE(contains(decodeError(bad), "not valid JSON")) << decodeError(bad);
  EXPECT_TRUE(contains(fileError(dir, bad), "not valid JSON"));
  // Valid JSON, but not an object.
  decodeError(withHeaderText(good, "[1, 2, 3]"));
  decodeError(withHeaderText(good, "\"tessera-update\""));
}

TEST(ModelUpdate, MissingOrMistypedHeaderFields) {
  TempDir dir;
  const std::string good = encodeUpdate(sampleUpdate());
  for (const char* field : {"task", "base_generation", "kind", "samples", "parameters", "weights_bytes", "weights_sha256"}) {
    const std::string bytes = withHeader(good, [&](nlohmann::json& h) { h.erase(field); });
    const auto message = decodeError(bytes);
    EXPECT_TRUE(contains(message, field)) << field << ": " << message;
    fileError(dir, bytes);
  }
  EXPECT_TRUE(contains(decodeError(withHeader(good, [](auto& h) { h.erase("format"); })), "format"));
  EXPECT_TRUE(contains(decodeError(withHeader(good, [](auto& h) { h["format"] = "tessera-model"; })), "format"));
  // A format field of the wrong type is a malformed header too, not some other exception.
  decodeError(withHeader(good, [](auto& h) { h["format"] = 7; }));
  fileError(dir, withHeader(good, [](auto& h) { h["format"] = nlohmann::json::array(); }));
  decodeError(withHeader(good, [](auto& h) { h["samples"] = "many"; }));
  decodeError(withHeader(good, [](auto& h) { h["task"] = 3; }));
  decodeError(withHeader(good, [](auto& h) { h["metrics"] = {{"dice", "high"}}; }));
  EXPECT_TRUE(contains(decodeError(withHeader(good, [](auto& h) { h["kind"] = "gradient"; })), "gradient"));
  EXPECT_TRUE(contains(decodeError(withHeader(good, [](auto& h) { h["task"] = ""; })), "task"));
  EXPECT_TRUE(contains(decodeError(withHeader(good, [](auto& h) { h["base_generation"] = -1; })), "base_generation"));
  // Metrics are optional.
  EXPECT_TRUE(decodeUpdate(withHeader(good, [](auto& h) { h.erase("metrics"); }), "x").header.metrics.empty());
}

TEST(ModelUpdate, NonPositiveSamples) {
  TempDir dir;
  const std::string good = encodeUpdate(sampleUpdate());
  for (double samples : {0.0, -3.0}) {
    const std::string bytes = withHeader(good, [&](auto& h) { h["samples"] = samples; });
    const auto message = decodeError(bytes);
    EXPECT_TRUE(contains(message, "samples")) << message;
    EXPECT_TRUE(contains(fileError(dir, bytes), "samples"));
  }
  // And through encodeUpdate, which does not police the header.
  ModelUpdate u = sampleUpdate();
  u.header.samples = 0;
  EXPECT_TRUE(contains(decodeError(encodeUpdate(u)), "samples"));
}

TEST(ModelUpdate, WeightsLengthMismatch) {
  TempDir dir;
  const std::string good = encodeUpdate(sampleUpdate());
  const size_t lengthAt = 20 + u64At(good, 12);
  std::string shorter = good;
  setU64(shorter, lengthAt, u64At(good, lengthAt) - 4);
  auto message = decodeError(shorter);
  EXPECT_TRUE(contains(message, "weights section")) << message;
  EXPECT_TRUE(contains(fileError(dir, shorter), "weights section"));
  // Extra bytes appended after the section.
  message = decodeError(good + "junk");
  EXPECT_TRUE(contains(message, "weights section")) << message;
  fileError(dir, good + "junk");
  // Length field consistent with the file, header field 'weights_bytes' not.
  const std::string header = withHeader(good, [](auto& h) { h["weights_bytes"] = h["weights_bytes"].template get<uint64_t>() + 1; });
  message = decodeError(header);
  EXPECT_TRUE(contains(message, "weights_bytes")) << message;
  EXPECT_TRUE(contains(fileError(dir, header), "weights_bytes"));
}

TEST(ModelUpdate, ShaMismatch) {
  const std::string good = encodeUpdate(sampleUpdate());
  std::string flipped = good;
  flipped[flipped.size() - 2] ^= 0x10;  // inside the last float value
  const auto message = decodeError(flipped);
  EXPECT_TRUE(contains(message, "SHA-256")) << message;
  const auto other = withHeader(good, [](auto& h) { h["weights_sha256"] = std::string(64, '0'); });
  EXPECT_TRUE(contains(decodeError(other), "SHA-256"));
}

TEST(ModelUpdate, ParametersFieldMustMatch) {
  const std::string good = encodeUpdate(sampleUpdate());
  const auto message = decodeError(withHeader(good, [](auto& h) { h["parameters"] = 14; }));
  EXPECT_TRUE(contains(message, "parameters")) << message;
}

TEST(ModelUpdate, NonFiniteWeights) {
  ModelUpdate u = sampleUpdate();
  u.weights[0].values[2] = std::numeric_limits<float>::quiet_NaN();
  decodeError(encodeUpdate(u), "non_finite");
  u.weights[0].values[2] = std::numeric_limits<float>::infinity();
  decodeError(encodeUpdate(u), "non_finite");
}

TEST(ModelUpdate, CorruptWeightsSectionWithMatchingShaIsBadUpdate) {
  ModelUpdate u = sampleUpdate();
  std::string bytes = encodeUpdate(u);
  const size_t weightsOffset = 28 + u64At(bytes, 12);
  bytes[weightsOffset] = 'X';  // the TSWT magic; then make the header agree with the corruption
  const std::string fixed = withHeader(bytes, [&](auto& h) { h["weights_sha256"] = common::sha256Hex(std::string_view(bytes).substr(weightsOffset)); });
  const auto message = decodeError(fixed);
  EXPECT_TRUE(contains(message, "TSWT")) << message;
}

TEST(ModelUpdate, MakeDeltaUpdateIsTrainedMinusBase) {
  model::Model base, trained;
  base.task.name = "liver";
  base.generation = 7;
  base.weights = tinyWeights(1.0f, 0.5f);
  trained = base;
  trained.weights = tinyWeights(-2.0f, 0.125f);
  const auto u = makeDeltaUpdate(trained, base, 42, {{"dice", 0.5}});
  EXPECT_EQ(u.header.task, "liver");
  EXPECT_EQ(u.header.baseGeneration, 7);
  EXPECT_EQ(u.header.kind, UpdateKind::Delta);
  EXPECT_EQ(u.header.samples, 42);
  EXPECT_EQ(u.header.metrics.at("dice"), 0.5);
  ASSERT_EQ(u.weights.size(), 3u);
  // Independently: value i of base is 1 + 0.5 i, of trained −2 + 0.125 i (all exact in float).
  int i = 0;
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_EQ(u.weights[t].name, base.weights[t].name);
    EXPECT_EQ(u.weights[t].shape, base.weights[t].shape);
    for (float v : u.weights[t].values) {
      EXPECT_FLOAT_EQ(v, (-2.0f + 0.125f * i) - (1.0f + 0.5f * i)) << "value " << i;
      ++i;
    }
  }
  // The delta survives encoding.
  EXPECT_EQ(decodeUpdate(encodeUpdate(u), "d").weights[2].values, u.weights[2].values);
}

TEST(ModelUpdate, MakeDeltaUpdateDetectsAnotherNetwork) {
  model::Model base;
  base.weights = tinyWeights(1.0f);
  model::Model shape = base;
  shape.weights[1].shape = {1, 3};
  auto message = updateErrorOf([&] { makeDeltaUpdate(shape, base, 1); }, "shape_mismatch");
  EXPECT_TRUE(contains(message, "enc.norm.weight")) << message;
  model::Model name = base;
  name.weights[2].name = "head.bias";
  updateErrorOf([&] { makeDeltaUpdate(name, base, 1); }, "shape_mismatch");
  model::Model fewer = base;
  fewer.weights.pop_back();
  message = updateErrorOf([&] { makeDeltaUpdate(fewer, base, 1); }, "shape_mismatch");
  EXPECT_TRUE(contains(message, "2 tensors")) << message;
}

// The server checks an upload from its first bytes, before any of it reaches the disk.
TEST(ModelUpdate, PrefixOfAStreamIsReadAsItArrives) {
  ModelUpdate u = sampleUpdate();
  u.header.idempotencyKey = "push-0f1e2d3c";
  const std::string bytes = encodeUpdate(u);
  const auto whole = decodeUpdate(bytes, "upload");
  EXPECT_EQ(whole.header.idempotencyKey, "push-0f1e2d3c");
  std::optional<UpdateFileInfo> info;
  size_t needed = 0;
  for (size_t n = 0; n <= bytes.size() && !info; ++n) {
    info = readUpdatePrefix(std::string_view(bytes).substr(0, n), "upload");
    needed = n;
  }
  ASSERT_TRUE(info);
  EXPECT_LT(needed, bytes.size()) << "the header must be known before the weights arrive";
  EXPECT_EQ(needed, info->weightsOffset);
  EXPECT_EQ(info->weightsOffset + info->weightsLength, bytes.size());
  EXPECT_EQ(info->header.samples, 12.5);
  EXPECT_EQ(info->header.idempotencyKey, "push-0f1e2d3c");
  // A stream that is not an update is refused from its first byte, whatever length it claims.
  EXPECT_TRUE(contains(updateErrorOf([] { readUpdatePrefix("x", "upload"); }, "bad_update"), "TSUPDATE"));
  EXPECT_TRUE(contains(updateErrorOf([] { readUpdatePrefix("TSUPDATX", "upload"); }, "bad_update"), "TSUPDATE"));
  std::string badVersion = bytes.substr(0, 20);
  badVersion[8] = 9;
  EXPECT_TRUE(contains(updateErrorOf([&] { readUpdatePrefix(badVersion, "upload"); }, "bad_update"), "version"));
  std::string hugeHeader = bytes.substr(0, 20);
  setU64(hugeHeader, 12, uint64_t{1} << 40);
  EXPECT_TRUE(contains(updateErrorOf([&] { readUpdatePrefix(hugeHeader, "upload"); }, "bad_update"), "header length"));
  // Without an idempotency key the header has no such field: old files stay byte for byte.
  EXPECT_FALSE(contains(encodeUpdate(sampleUpdate()), "idempotency_key"));
}

TEST(ModelUpdate, IdempotencyKeyMustBeAKey) {
  EXPECT_EQ(idempotencyKeyProblem("push-0123:abc_D.e"), "");
  EXPECT_NE(idempotencyKeyProblem(""), "");
  EXPECT_NE(idempotencyKeyProblem(std::string(129, 'a')), "");
  EXPECT_EQ(idempotencyKeyProblem(std::string(128, 'a')), "");
  EXPECT_NE(idempotencyKeyProblem("a b"), "");
  EXPECT_NE(idempotencyKeyProblem("a/b"), "");
  for (const std::string key : {std::string(""), std::string(200, 'k'), std::string("new\nline")}) {
    ModelUpdate u = sampleUpdate();
    u.header.idempotencyKey = key;
    std::string bytes = encodeUpdate(u);
    if (key.empty()) {
      // Empty means none: an explicit empty key in the header is refused.
      bytes = withHeader(bytes, [](nlohmann::json& h) { h["idempotency_key"] = ""; });
    }
    EXPECT_TRUE(contains(decodeError(bytes), "idempotency_key")) << key.size();
  }
  EXPECT_TRUE(contains(decodeError(withHeader(encodeUpdate(sampleUpdate()), [](nlohmann::json& h) { h["idempotency_key"] = 5; })),
                       "idempotency_key"));
}
