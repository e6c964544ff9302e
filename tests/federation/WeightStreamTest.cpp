#include <cmath>
#include <limits>

#include "FederationTestSupport.h"
#include "tessera/common/WeightRecords.h"

using namespace tessera;
using namespace tessera::common;
namespace fs = std::filesystem;
using tessera::test::readBytes;
using tessera::test::TempDir;
using tessera::test::tinyWeights;
using tessera::test::updateErrorOf;
using tessera::test::writeBytes;

namespace {

// Reads everything a reader offers, the way the merge does (optionally with the finite check).
common::WeightSet readAll(common::WeightRecordReader& reader, int64_t chunk, bool requireFinite = false) {
  common::WeightSet out;
  while (reader.next()) {
    common::WeightTensor t{reader.tensor().name, reader.tensor().shape, {}};
    t.values.resize(static_cast<size_t>(reader.tensor().elements));
    int64_t done = 0;
    while (reader.valuesLeft() > 0) {
      const int64_t n = std::min(chunk, reader.valuesLeft());
      reader.read(t.values.data() + done, n, requireFinite);
      done += n;
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

TEST(WeightFileWriter, OutputAndHashEqualEncodeWeights) {
  TempDir dir;
  const auto w = tinyWeights(-1.5f);
  const std::string expected = common::encodeWeights(w);
  common::WeightFileWriter writer(dir.path(), static_cast<uint32_t>(w.size()));
  for (const auto& t : w) {
    writer.beginTensor(t.name, t.shape);
    // In uneven pieces, as a merge writes chunk by chunk.
    size_t done = 0;
    while (done < t.values.size()) {
      const size_t n = std::min<size_t>(done == 0 ? 1 : 2, t.values.size() - done);
      writer.write(t.values.data() + done, static_cast<int64_t>(n));
      done += n;
    }
  }
  EXPECT_EQ(writer.finishHash(), common::sha256Hex(expected));
  EXPECT_EQ(writer.bytesWritten(), expected.size());
  writer.file().commit(dir / "out.bin");
  EXPECT_EQ(readBytes(dir / "out.bin"), expected);
}

TEST(WeightFileWriter, RefusesMisuse) {
  TempDir dir;
  {
    common::WeightFileWriter writer(dir.path(), 1);
    writer.beginTensor("a", {2});
    const float v[3] = {1, 2, 3};
    EXPECT_THROW(writer.write(v, 3), std::logic_error);  // more values than the tensor holds
    writer.write(v, 1);
    EXPECT_THROW(writer.beginTensor("b", {1}), std::logic_error);  // previous tensor unfinished
    EXPECT_THROW(writer.finishHash(), std::logic_error);
  }
  {
    common::WeightFileWriter writer(dir.path(), 1);
    writer.beginTensor("a", {1});
    const float v = 1;
    writer.write(&v, 1);
    EXPECT_THROW(writer.beginTensor("b", {1}), std::logic_error);  // more tensors than announced
  }
  // Uncommitted writers leave nothing behind.
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(WeightRecordReader, ReadsTensorsChunkByChunk) {
  TempDir dir;
  const auto w = tinyWeights(0.5f, -0.75f);
  writeBytes(dir / "w.bin", common::encodeWeights(w));
  common::WeightRecordReader reader({dir / "w.bin", 0, 0}, "test weights");
  EXPECT_EQ(reader.tensorCount(), 3u);
  EXPECT_EQ(reader.source(), "test weights");
  for (int64_t chunk : {1, 2, 4, 1000}) {
    common::WeightRecordReader r({dir / "w.bin", 0, 0}, "w");
    const auto back = readAll(r, chunk);
    ASSERT_EQ(back.size(), w.size()) << "chunk " << chunk;
    for (size_t i = 0; i < w.size(); ++i) {
      EXPECT_EQ(back[i].name, w[i].name);
      EXPECT_EQ(back[i].shape, w[i].shape);
      EXPECT_EQ(back[i].values, w[i].values) << "chunk " << chunk << " tensor " << w[i].name;
    }
  }
  ASSERT_TRUE(reader.next());
  EXPECT_EQ(reader.tensor().name, "enc.conv.weight");
  EXPECT_EQ(reader.tensor().shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(reader.tensor().elements, 6);
  EXPECT_EQ(reader.valuesLeft(), 6);
  float v[2];
  reader.read(v, 2);
  EXPECT_EQ(v[0], w[0].values[0]);
  EXPECT_EQ(v[1], w[0].values[1]);
  EXPECT_EQ(reader.valuesLeft(), 4);
  EXPECT_THROW(reader.read(v, 5), std::logic_error);  // past the tensor's end
  // next() skips the unread values.
  ASSERT_TRUE(reader.next());
  EXPECT_EQ(reader.tensor().name, "enc.norm.weight");
  reader.read(v, 1);
  EXPECT_EQ(v[0], w[1].values[0]);
  ASSERT_TRUE(reader.next());
  EXPECT_EQ(reader.tensor().name, "dec.conv.bias");
  EXPECT_FALSE(reader.next());
}

TEST(WeightRecordReader, ReadsASectionInsideALargerFile) {
  TempDir dir;
  const auto w = tinyWeights(3.0f);
  const std::string section = common::encodeWeights(w);
  const std::string prefix = "HEADER-BYTES-", suffix = "TRAILER";
  writeBytes(dir / "f.bin", prefix + section + suffix);
  common::WeightRecordReader r({dir / "f.bin", prefix.size(), section.size()}, "inner");
  const auto back = readAll(r, 3);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[2].values, w[2].values);
  // Without the length the trailer counts as part of the section: unexpected bytes.
  const auto message = updateErrorOf(
      [&] {
        common::WeightRecordReader all({dir / "f.bin", prefix.size(), 0}, "inner");
        readAll(all, 3);
      },
      "bad_update");
  EXPECT_NE(message.find("unexpected bytes"), std::string::npos) << message;
}

TEST(WeightRecordReader, TruncatedContentIsBadUpdateAtEveryLength) {
  TempDir dir;
  const std::string bytes = common::encodeWeights(tinyWeights(1.0f));
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    writeBytes(dir / "t.bin", bytes.substr(0, cut));
    const auto message = updateErrorOf(
        [&] {
          common::WeightRecordReader r({dir / "t.bin", 0, 0}, "cut");
          readAll(r, 2);
        },
        "bad_update");
    EXPECT_EQ(message.rfind("cut: ", 0), 0u) << "cut at " << cut << ": " << message;
  }
  // A declared length beyond the file's end.
  writeBytes(dir / "t.bin", bytes);
  updateErrorOf([&] { common::WeightRecordReader r({dir / "t.bin", 0, bytes.size() + 1}, "long"); }, "bad_update");
  updateErrorOf([&] { common::WeightRecordReader r({dir / "t.bin", bytes.size() + 10, 0}, "far"); }, "bad_update");
  // An offset + length that wraps around 2^64 must not pass as "inside the file".
  writeBytes(dir / "t.bin", "8 bytes:" + bytes.substr(0, bytes.size() / 2));
  updateErrorOf(
      [&] {
        common::WeightRecordReader r({dir / "t.bin", 8, ~uint64_t{0} - 3}, "wrap");
        readAll(r, 2);
      },
      "bad_update");
}

TEST(WeightRecordReader, ForeignContentIsBadUpdate) {
  TempDir dir;
  writeBytes(dir / "f.bin", "this is a text file, not weights");
  auto message = updateErrorOf([&] { common::WeightRecordReader r({dir / "f.bin", 0, 0}, "foreign"); }, "bad_update");
  EXPECT_NE(message.find("TSWT"), std::string::npos) << message;

  // Right magic, implausible contents.
  std::string bytes = common::encodeWeights(tinyWeights(1.0f));
  std::string badCount = bytes;
  const uint32_t huge = 5'000'000;
  std::memcpy(badCount.data() + 4, &huge, 4);
  writeBytes(dir / "f.bin", badCount);
  updateErrorOf([&] { common::WeightRecordReader r({dir / "f.bin", 0, 0}, "count"); }, "bad_update");

  std::string badDtype = bytes;
  badDtype[4 + 4 + 2 + std::string("enc.conv.weight").size()] = 7;
  writeBytes(dir / "f.bin", badDtype);
  message = updateErrorOf(
      [&] {
        common::WeightRecordReader r({dir / "f.bin", 0, 0}, "dtype");
        readAll(r, 4);
      },
      "bad_update");
  EXPECT_NE(message.find("dtype"), std::string::npos) << message;

  // Trailing garbage after the last tensor.
  writeBytes(dir / "f.bin", bytes + "xx");
  updateErrorOf(
      [&] {
        common::WeightRecordReader r({dir / "f.bin", 0, 0}, "trailing");
        readAll(r, 4);
      },
      "bad_update");
}

TEST(WeightRecordReader, ManyRefusedFilesDoNotLeakDescriptors) {
  TempDir dir;
  writeBytes(dir / "f.bin", "not weights at all");
  // Far more than any descriptor limit: a reader that throws from its constructor must close
  // its file.
  for (int i = 0; i < 5000; ++i) {
    try {
      common::WeightRecordReader r({dir / "f.bin", 0, 0}, "foreign");
    } catch (const tessera::Error&) {
    }
  }
  std::error_code ec;
  size_t open = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd", ec)) {
    (void)e;
    ++open;
  }
  EXPECT_LT(open, 100u);
}

TEST(WeightRecordReader, NonFiniteValuesWithRequireFinite) {
  TempDir dir;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    auto w = tinyWeights(1.0f);
    w[2].values[3] = bad;
    writeBytes(dir / "n.bin", common::encodeWeights(w));
    {
      common::WeightRecordReader r({dir / "n.bin", 0, 0}, "site");
      const auto message = updateErrorOf([&] { readAll(r, 2, true); }, "non_finite");
      EXPECT_NE(message.find("dec.conv.bias"), std::string::npos) << message;
    }
    // Without the check the value is passed through as it is.
    common::WeightRecordReader r({dir / "n.bin", 0, 0}, "site");
    const auto back = readAll(r, 2, false);
    EXPECT_FALSE(std::isfinite(back[2].values[3]));
  }
}
