#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "FederationTestSupport.h"
#include "tessera/federation/Merge.h"

using namespace tessera;
using namespace tessera::federation;
namespace fs = std::filesystem;
using tessera::test::expectWeightsNear;
using tessera::test::flatten;
using tessera::test::readBytes;
using tessera::test::TempDir;
using tessera::test::tinyWeights;
using tessera::test::updateErrorOf;
using tessera::test::writeBytes;

namespace {

constexpr double kTolerance = 1e-5;

// Σ of a vector.
double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

// a + s·b element by element.
std::vector<double> axpy(std::vector<double> a, double s, const std::vector<double>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += s * b[i];
  return a;
}

std::vector<double> scaled(double s, const std::vector<double>& b) { return axpy(std::vector<double>(b.size(), 0.0), s, b); }

class MergeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int g = 0; g < 3; ++g) writeBytes(genPath(g), common::encodeWeights(generation(g)));
  }

  // Weights of generations 0, 1 and 2 (the current one): clearly different from each other, so
  // a delta applied to the wrong base shows.
  static common::WeightSet generation(int g) {
    if (g == 0) return tinyWeights(10.0f, -0.5f);
    if (g == 1) return tinyWeights(-3.0f, 0.5f);
    return tinyWeights(2.0f, -0.25f);
  }
  fs::path genPath(int g) const { return dir / ("gen" + std::to_string(g) + ".bin"); }

  // Writes `w` as an update file (the server's storage) and returns where its weights lie.
  UpdateInput update(const common::WeightSet& w, UpdateKind kind, int64_t base, double samples) {
    const int64_t id = ++updates_;
    ModelUpdate u;
    u.header.task = "brain";
    u.header.baseGeneration = base;
    u.header.kind = kind;
    u.header.samples = samples;
    u.weights = w;
    const fs::path path = dir / ("update" + std::to_string(id) + ".tsu");
    writeBytes(path, encodeUpdate(u));
    const auto info = readUpdateFileInfo(path, "u");
    UpdateInput in;
    in.id = id;
    in.weights = {path, info.weightsOffset, info.weightsLength};
    in.kind = kind;
    in.baseGeneration = base;
    in.samples = samples;
    return in;
  }

  MergeInput input(const MergePolicy& policy, std::vector<UpdateInput> updates) {
    MergeInput in;
    in.current = {genPath(2), 0, 0};
    in.currentGeneration = 2;
    in.updates = std::move(updates);
    in.policy = policy;
    in.generationWeights = [this](int64_t g) {
      requested.push_back(g);
      if (g < 0 || g > 2) throw std::out_of_range("no generation " + std::to_string(g));
      return common::WeightsLocation{genPath(static_cast<int>(g)), 0, 0};
    };
    return in;
  }

  // Merges, commits the candidate and checks its hash and size against the bytes on disk.
  std::pair<MergeOutput, common::WeightSet> merge(const MergeInput& in) {
    common::WeightFileWriter writer(dir.path(), 3);
    const MergeOutput out = mergeUpdates(in, writer);
    const fs::path path = dir / ("merged" + std::to_string(++merges_) + ".bin");
    writer.file().commit(path);
    const std::string bytes = readBytes(path);
    EXPECT_EQ(out.weightsSha256, common::sha256Hex(bytes));
    EXPECT_EQ(out.weightsBytes, bytes.size());
    EXPECT_EQ(out.parameters, 13);
    EXPECT_EQ(out.contributions.size(), in.updates.size());
    return {out, common::decodeWeights(bytes, "merged")};
  }

  static MergePolicy policy(Strategy s) {
    MergePolicy p;
    p.strategy = s;
    return p;
  }

  TempDir dir;
  std::vector<int64_t> requested;  // generations the merge asked for

 private:
  int updates_ = 0;
  int merges_ = 0;
};

// Deltas of different directions and sizes.
const common::WeightSet kDelta1 = tinyWeights(0.1f, 0.05f);
const common::WeightSet kDelta2 = tinyWeights(-0.2f, 0.03f);
const common::WeightSet kDelta3 = tinyWeights(0.5f, -0.07f);

}  // namespace

TEST_F(MergeTest, FedAvgAddsTheSampleWeightedMeanOfTheDeltasToTheCurrentWeights) {
  const auto [out, merged] = merge(input(policy(Strategy::FedAvg), {update(kDelta1, UpdateKind::Delta, 2, 10),
                                                                    update(kDelta2, UpdateKind::Delta, 2, 30),
                                                                    update(kDelta3, UpdateKind::Delta, 2, 60)}));
  auto expected = flatten(generation(2));
  expected = axpy(expected, 10.0 / 100, flatten(kDelta1));
  expected = axpy(expected, 30.0 / 100, flatten(kDelta2));
  expected = axpy(expected, 60.0 / 100, flatten(kDelta3));
  expectWeightsNear(merged, expected, kTolerance, "fedavg");
  EXPECT_NEAR(out.contributions[0], 0.1, 1e-12);
  EXPECT_NEAR(out.contributions[1], 0.3, 1e-12);
  EXPECT_NEAR(out.contributions[2], 0.6, 1e-12);
  EXPECT_NEAR(sum(out.contributions), 1.0, 1e-12);
  EXPECT_TRUE(requested.empty()) << "fresh deltas need no earlier generation";
  // The sample weighting matters here: a plain mean would be visibly different.
  auto plain = axpy(axpy(axpy(flatten(generation(2)), 1.0 / 3, flatten(kDelta1)), 1.0 / 3, flatten(kDelta2)), 1.0 / 3,
                    flatten(kDelta3));
  EXPECT_GT(std::abs(plain[0] - expected[0]), 1e-3);
}

TEST_F(MergeTest, ServerStepScalesTheMeanDeltaButNotRunningStatistics) {
  MergePolicy p = policy(Strategy::FedAvg);
  p.serverStep = 2.5;
  const auto [out, merged] = merge(input(p, {update(kDelta1, UpdateKind::Delta, 2, 10), update(kDelta3, UpdateKind::Delta, 2, 30)}));
  auto expected = flatten(generation(2));
  expected = axpy(expected, 2.5 * 10.0 / 40, flatten(kDelta1));
  expected = axpy(expected, 2.5 * 30.0 / 40, flatten(kDelta3));
  expectWeightsNear(merged, expected, kTolerance, "fedavg with server_step 2.5");
  EXPECT_NEAR(sum(out.contributions), 1.0, 1e-12) << "contributions are shares of the mean";

  // A batch-norm running statistic is an average of what the sites measured: stepping it past
  // their mean would describe no data.
  auto withRunningVar = [](common::WeightSet w) {
    w[1].name = "enc.norm.running_var";
    return w;
  };
  const auto cur = withRunningVar(generation(2)), d1 = withRunningVar(kDelta1), d3 = withRunningVar(kDelta3);
  writeBytes(genPath(2), common::encodeWeights(cur));
  const auto [out2, merged2] = merge(input(p, {update(d1, UpdateKind::Delta, 2, 10), update(d3, UpdateKind::Delta, 2, 30)}));
  for (size_t t = 0; t < 3; ++t) {
    const double step = t == 1 ? 1.0 : 2.5;
    for (size_t i = 0; i < cur[t].values.size(); ++i) {
      const double want = cur[t].values[i] + step * (0.25 * d1[t].values[i] + 0.75 * d3[t].values[i]);
      EXPECT_NEAR(merged2[t].values[i], want, kTolerance) << cur[t].name << "[" << i << "]";
    }
  }
}

TEST_F(MergeTest, BareWeightFilesWorkAsUpdates) {
  writeBytes(dir / "d.bin", common::encodeWeights(kDelta1));
  UpdateInput u;
  u.id = 1;
  u.weights = {dir / "d.bin", 0, 0};
  u.baseGeneration = 2;
  u.samples = 4;
  const auto [out, merged] = merge(input(policy(Strategy::FedAvg), {u}));
  expectWeightsNear(merged, axpy(flatten(generation(2)), 1.0, flatten(kDelta1)), kTolerance, "single delta");
  EXPECT_NEAR(out.contributions[0], 1.0, 1e-12);
}

TEST_F(MergeTest, StaleDeltaIsAppliedToTheCurrentWeights) {
  const auto [out, merged] = merge(input(policy(Strategy::FedAvg), {update(kDelta1, UpdateKind::Delta, 1, 1),
                                                                    update(kDelta2, UpdateKind::Delta, 2, 3)}));
  const auto expected = axpy(axpy(flatten(generation(2)), 0.25, flatten(kDelta1)), 0.75, flatten(kDelta2));
  expectWeightsNear(merged, expected, kTolerance, "stale delta");
  EXPECT_NEAR(out.contributions[0], 0.25, 1e-12);
  EXPECT_NEAR(out.contributions[1], 0.75, 1e-12);
  EXPECT_NEAR(sum(out.contributions), 1.0, 1e-12);
}

TEST_F(MergeTest, DownweightScalesAStaleDeltaByDecayToTheAge) {
  MergePolicy p = policy(Strategy::FedAvg);
  p.staleness = StalenessMode::Downweight;
  p.stalenessDecay = 0.5;
  const auto [out, merged] = merge(input(p, {update(kDelta1, UpdateKind::Delta, 0, 2),    // age 2
                                             update(kDelta2, UpdateKind::Delta, 1, 2),    // age 1
                                             update(kDelta3, UpdateKind::Delta, 2, 4)}));  // age 0
  auto expected = flatten(generation(2));
  expected = axpy(expected, 2.0 * 0.25 / 8, flatten(kDelta1));
  expected = axpy(expected, 2.0 * 0.5 / 8, flatten(kDelta2));
  expected = axpy(expected, 4.0 * 1.0 / 8, flatten(kDelta3));
  expectWeightsNear(merged, expected, kTolerance, "downweight");
  EXPECT_NEAR(out.contributions[0], 0.0625, 1e-12);
  EXPECT_NEAR(out.contributions[1], 0.125, 1e-12);
  EXPECT_NEAR(out.contributions[2], 0.5, 1e-12);
  EXPECT_NEAR(sum(out.contributions), 0.6875, 1e-12);

  // Another decay, to tell decay^age from a fixed factor.
  p.stalenessDecay = 0.8;
  const auto [out2, merged2] = merge(input(p, {update(kDelta1, UpdateKind::Delta, 0, 1)}));
  expectWeightsNear(merged2, axpy(flatten(generation(2)), 0.64, flatten(kDelta1)), kTolerance, "decay 0.8, age 2");
  EXPECT_NEAR(out2.contributions[0], 0.64, 1e-12);
}

TEST_F(MergeTest, FullWeightsUpdateFormsItsDeltaAgainstItsOwnBase) {
  // A site trained from generation 1 and uploaded its full weights W = gen1 + D.
  const common::WeightSet trained = [] {
    auto w = generation(1);
    for (size_t t = 0; t < w.size(); ++t) {
      for (size_t i = 0; i < w[t].values.size(); ++i) w[t].values[i] += kDelta3[t].values[i];
    }
    return w;
  }();
  const auto [out, merged] = merge(input(policy(Strategy::FedAvg), {update(trained, UpdateKind::Weights, 1, 1),
                                                                    update(kDelta2, UpdateKind::Delta, 2, 1)}));
  const auto ownDelta = axpy(flatten(trained), -1.0, flatten(generation(1)));
  const auto expected = axpy(axpy(flatten(generation(2)), 0.5, ownDelta), 0.5, flatten(kDelta2));
  expectWeightsNear(merged, expected, kTolerance, "weights update");
  EXPECT_EQ(requested, (std::vector<int64_t>{1}));
}

TEST_F(MergeTest, FedBNKeepsTheCurrentNormalizationTensors) {
  const auto [out, merged] = merge(input(policy(Strategy::FedBN), {update(kDelta1, UpdateKind::Delta, 2, 10),
                                                                   update(kDelta2, UpdateKind::Delta, 2, 30),
                                                                   update(kDelta3, UpdateKind::Delta, 2, 60)}));
  const auto current = generation(2);
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[1].name, "enc.norm.weight");
  EXPECT_EQ(merged[1].values, current[1].values) << "normalisation tensors stay as they are";
  for (size_t t : {size_t{0}, size_t{2}}) {
    for (size_t i = 0; i < merged[t].values.size(); ++i) {
      const double expected = current[t].values[i] + 0.1 * kDelta1[t].values[i] + 0.3 * kDelta2[t].values[i] +
                              0.6 * kDelta3[t].values[i];
      EXPECT_NEAR(merged[t].values[i], expected, kTolerance) << merged[t].name << "[" << i << "]";
    }
  }
  EXPECT_NEAR(sum(out.contributions), 1.0, 1e-12);
}

TEST_F(MergeTest, TrimmedMeanIgnoresAnOutlier) {
  std::vector<common::WeightSet> deltas;
  for (int i = 0; i < 4; ++i) deltas.push_back(tinyWeights(0.01f * static_cast<float>(i) - 0.015f, 0.003f * static_cast<float>(i + 1)));
  deltas.push_back(tinyWeights(1e6f, 1000.0f));  // a poisoned or broken site
  const double samples[5] = {1, 2, 3, 4, 100};
  std::vector<UpdateInput> ups;
  for (int i = 0; i < 5; ++i) ups.push_back(update(deltas[i], UpdateKind::Delta, 2, samples[i]));
  MergePolicy p = policy(Strategy::TrimmedMean);
  p.trimFraction = 0.2;  // floor(0.2 · 5) = 1 value dropped at each end
  const auto [out, merged] = merge(input(p, ups));

  const auto current = flatten(generation(2));
  std::vector<std::vector<double>> flat;
  for (const auto& d : deltas) flat.push_back(flatten(d));
  std::vector<double> expected(current.size());
  for (size_t j = 0; j < current.size(); ++j) {
    std::vector<double> column;
    for (const auto& f : flat) column.push_back(f[j]);
    std::sort(column.begin(), column.end());
    expected[j] = current[j] + (column[1] + column[2] + column[3]) / 3.0;
    EXPECT_LT(std::abs(expected[j] - current[j]), 0.5);  // nothing of the 1e6 outlier
  }
  expectWeightsNear(merged, expected, kTolerance, "trimmed mean");
  for (double c : out.contributions) EXPECT_NEAR(c, 0.2, 1e-12);

  // Without trimming the outlier dominates: the plain mean of the five deltas.
  p.trimFraction = 0;
  const auto [out0, merged0] = merge(input(p, ups));
  std::vector<double> mean(current.size());
  for (size_t j = 0; j < current.size(); ++j) {
    double s = 0;
    for (const auto& f : flat) s += f[j];
    mean[j] = current[j] + s / 5;
  }
  expectWeightsNear(merged0, mean, 0.05, "untrimmed mean");
}

// Two of five sites send huge deltas of opposite signs: the coordinate-wise median stays among
// the honest values; with an even count it is the mean of the two middle ones.
TEST_F(MergeTest, MedianIgnoresAMinorityOfOutliers) {
  std::vector<common::WeightSet> deltas;
  for (int i = 0; i < 3; ++i) deltas.push_back(tinyWeights(0.01f * static_cast<float>(i) - 0.01f, 0.002f * static_cast<float>(i + 1)));
  deltas.push_back(tinyWeights(1e6f, 1000.0f));
  deltas.push_back(tinyWeights(-1e6f, -1000.0f));
  std::vector<UpdateInput> ups;
  for (int i = 0; i < 5; ++i) ups.push_back(update(deltas[i], UpdateKind::Delta, 2, 1 + i));
  const auto current = flatten(generation(2));
  std::vector<std::vector<double>> flat;
  for (const auto& d : deltas) flat.push_back(flatten(d));
  const auto expectedMedian = [&](size_t count) {
    std::vector<double> expected(current.size());
    for (size_t j = 0; j < current.size(); ++j) {
      std::vector<double> column;
      for (size_t i = 0; i < count; ++i) column.push_back(static_cast<float>(flat[i][j]));
      std::sort(column.begin(), column.end());
      const double m = count % 2 ? column[count / 2] : (column[count / 2 - 1] + column[count / 2]) / 2;
      expected[j] = current[j] + m;
    }
    return expected;
  };
  const auto [out, merged] = merge(input(policy(Strategy::Median), ups));
  expectWeightsNear(merged, expectedMedian(5), kTolerance, "median of five");
  for (double c : out.contributions) EXPECT_NEAR(c, 0.2, 1e-12);
  for (size_t j = 0; j < current.size(); ++j) EXPECT_LT(std::abs(flatten(merged)[j] - current[j]), 0.5);

  ups.pop_back();  // four: the mean of the two middle values
  const auto [out4, merged4] = merge(input(policy(Strategy::Median), ups));
  expectWeightsNear(merged4, expectedMedian(4), kTolerance, "median of four");
  EXPECT_EQ(strategyFromString("median"), Strategy::Median);
  EXPECT_EQ(toString(Strategy::Median), "median");
}

TEST_F(MergeTest, DafneAveragesEachUploadIntoTheCurrentModelInTurn) {
  const common::WeightSet fullWeights = tinyWeights(4.0f, 0.125f);
  MergePolicy p = policy(Strategy::Dafne);
  p.dafneWeight = 0.3;
  const std::vector<UpdateInput> ups = {update(kDelta1, UpdateKind::Delta, 1, 5),         // stale delta
                                        update(fullWeights, UpdateKind::Weights, 2, 1),   // full weights
                                        update(kDelta3, UpdateKind::Delta, 2, 100)};
  const auto [out, merged] = merge(input(p, ups));
  const double w = 0.3;
  auto acc = flatten(generation(2));
  auto step = [&](const std::vector<double>& uploaded) { acc = axpy(scaled(w, acc), 1 - w, uploaded); };
  step(axpy(flatten(generation(1)), 1.0, flatten(kDelta1)));  // the site's model: its base + Δ
  step(flatten(fullWeights));
  step(axpy(flatten(generation(2)), 1.0, flatten(kDelta3)));
  expectWeightsNear(merged, acc, kTolerance, "dafne");
  EXPECT_NEAR(out.contributions[0], (1 - w) * w * w, 1e-12);
  EXPECT_NEAR(out.contributions[1], (1 - w) * w, 1e-12);
  EXPECT_NEAR(out.contributions[2], 1 - w, 1e-12);
  EXPECT_NEAR(sum(out.contributions), 1 - w * w * w, 1e-12);  // the rest stays with the current weights

  // Dafne ignores the base's age: downweighting changes nothing.
  p.staleness = StalenessMode::Downweight;
  p.stalenessDecay = 0.1;
  const auto [outDown, mergedDown] = merge(input(p, ups));
  EXPECT_EQ(outDown.weightsSha256, out.weightsSha256);
  EXPECT_EQ(outDown.contributions, out.contributions);
}

TEST_F(MergeTest, MismatchedTensorsAreShapeMismatch) {
  auto renamed = kDelta1;
  renamed[0].name = "enc.conv.kernel";
  auto message = updateErrorOf([&] { merge(input(policy(Strategy::FedAvg), {update(kDelta2, UpdateKind::Delta, 2, 1),
                                                                            update(renamed, UpdateKind::Delta, 2, 1)})); },
                               "shape_mismatch");
  EXPECT_NE(message.find("enc.conv.kernel"), std::string::npos) << message;

  auto reshaped = kDelta1;
  reshaped[2].shape = {2, 2};
  updateErrorOf([&] { merge(input(policy(Strategy::TrimmedMean), {update(reshaped, UpdateKind::Delta, 2, 1)})); }, "shape_mismatch");

  auto fewer = kDelta1;
  fewer.pop_back();
  updateErrorOf([&] { merge(input(policy(Strategy::Dafne), {update(fewer, UpdateKind::Delta, 2, 1)})); }, "shape_mismatch");
  // No candidate file is left behind by a failed merge.
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename().string().rfind("merged", 0), std::string::npos) << e.path();
  }
}

TEST_F(MergeTest, RefusesWhatCannotBeMerged) {
  EXPECT_THROW(merge(input(policy(Strategy::FedAvg), {})), std::invalid_argument);
  updateErrorOf([&] { merge(input(policy(Strategy::FedAvg), {update(kDelta1, UpdateKind::Delta, 3, 1)})); }, "unknown_base");
  auto nan = kDelta1;
  nan[1].values[0] = std::numeric_limits<float>::quiet_NaN();
  writeBytes(dir / "nan.bin", common::encodeWeights(nan));
  UpdateInput bad;
  bad.id = 99;
  bad.weights = {dir / "nan.bin", 0, 0};
  bad.baseGeneration = 2;
  bad.samples = 1;
  updateErrorOf([&] { merge(input(policy(Strategy::FedAvg), {update(kDelta2, UpdateKind::Delta, 2, 1), bad})); }, "non_finite");
  auto noSamples = update(kDelta1, UpdateKind::Delta, 2, 1);
  noSamples.samples = 0;
  EXPECT_THROW(merge(input(policy(Strategy::FedAvg), {noSamples})), std::invalid_argument);
}

// Sample counts near the top of the double range: Σn overflowed to infinity and every weight
// became 0, so the round "merged" and changed nothing. The shares must stay n_i / Σn.
TEST_F(MergeTest, SampleWeightsCannotOverflow) {
  constexpr double kHuge = 1.7e308;
  const auto [out, merged] = merge(input(policy(Strategy::FedAvg), {update(kDelta1, UpdateKind::Delta, 2, kHuge),
                                                                    update(kDelta2, UpdateKind::Delta, 2, kHuge),
                                                                    update(kDelta3, UpdateKind::Delta, 2, 1)}));
  for (const double c : out.contributions) EXPECT_TRUE(std::isfinite(c)) << c;
  EXPECT_NEAR(out.contributions[0], 0.5, 1e-12);
  EXPECT_NEAR(out.contributions[1], 0.5, 1e-12);
  EXPECT_GE(out.contributions[2], 0.0);
  EXPECT_LT(out.contributions[2], 1e-300);
  auto expected = flatten(generation(2));
  expected = axpy(expected, 0.5, flatten(kDelta1));
  expected = axpy(expected, 0.5, flatten(kDelta2));
  expectWeightsNear(merged, expected, kTolerance, "huge sample counts");
  // The result moved: the round did what it says.
  EXPECT_GT(std::abs(flatten(merged)[0] - flatten(generation(2))[0]), 1e-3);
}

TEST_F(MergeTest, SampleSharesAreExactAcrossTheWholeRange) {
  // One update at the largest finite count, one at the smallest positive: shares 1 and ~0.
  const double counts[][2] = {{std::numeric_limits<double>::max(), std::numeric_limits<double>::denorm_min()},
                              {1e-300, 3e-300},
                              {1e300, 3e300},
                              {2, 6}};
  for (const auto& c : counts) {
    const auto [out, merged] = merge(input(policy(Strategy::FedAvg), {update(kDelta1, UpdateKind::Delta, 2, c[0]),
                                                                      update(kDelta2, UpdateKind::Delta, 2, c[1])}));
    const double share0 = 1.0 / (1.0 + c[1] / c[0]);
    EXPECT_NEAR(out.contributions[0], share0, 1e-12) << c[0] << " vs " << c[1];
    EXPECT_NEAR(out.contributions[0] + out.contributions[1], 1.0, 1e-12) << c[0] << " vs " << c[1];
    auto expected = flatten(generation(2));
    expected = axpy(expected, share0, flatten(kDelta1));
    expected = axpy(expected, 1 - share0, flatten(kDelta2));
    expectWeightsNear(merged, expected, kTolerance, "counts " + std::to_string(c[0]));
  }
  // Staleness still scales a share, and the shares still come from the counts alone.
  MergePolicy down = policy(Strategy::FedAvg);
  down.staleness = StalenessMode::Downweight;
  down.stalenessDecay = 0.5;
  const auto [out, merged] = merge(input(down, {update(kDelta1, UpdateKind::Delta, 1, 1e308),
                                                 update(kDelta2, UpdateKind::Delta, 2, 1e308)}));
  EXPECT_NEAR(out.contributions[0], 0.25, 1e-12);
  EXPECT_NEAR(out.contributions[1], 0.5, 1e-12);
}

TEST_F(MergeTest, CountsThatAreNotNumbersAreRefused) {
  for (const double bad : {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(), -1.0}) {
    auto u = update(kDelta1, UpdateKind::Delta, 2, 1);
    u.samples = bad;
    updateErrorOf([&] { merge(input(policy(Strategy::FedAvg), {update(kDelta2, UpdateKind::Delta, 2, 1), u})); }, "bad_update");
  }
}

TEST(Normalization, WhichTensorsAreNormalization) {
  EXPECT_TRUE(isNormalizationTensor("enc.norm.weight"));
  EXPECT_TRUE(isNormalizationTensor("down.2.block.norm.running_mean"));
  EXPECT_TRUE(isNormalizationTensor("norm.bias"));
  EXPECT_FALSE(isNormalizationTensor("enc.conv.weight"));
  EXPECT_FALSE(isNormalizationTensor("enc.normalizer.weight"));
  EXPECT_FALSE(isNormalizationTensor("head.norm"));
}

TEST(Normalization, KeepLocalNormalizationCopiesOnlyMatchingNormTensors) {
  common::WeightSet global = tinyWeights(1.0f);
  global.push_back({"norm.bias", {2}, {7, 8}});
  global.push_back({"dec.norm.weight", {2}, {9, 10}});
  const common::WeightSet globalBefore = global;
  common::WeightSet local = tinyWeights(-5.0f, 2.0f);            // same names, other values
  local.push_back({"norm.bias", {2}, {-7, -8}});
  local.push_back({"dec.norm.weight", {3}, {1, 2, 3}});      // other shape: not taken
  std::swap(local[0], local[2]);                              // order does not matter
  keepLocalNormalization(global, local);
  const common::WeightSet localTiny = tinyWeights(-5.0f, 2.0f);
  EXPECT_EQ(global[0].values, globalBefore[0].values);         // enc.conv.weight: global
  EXPECT_EQ(global[1].values, localTiny[1].values);            // enc.norm.weight: local
  EXPECT_EQ(global[2].values, globalBefore[2].values);         // dec.conv.bias: global
  EXPECT_EQ(global[3].values, (std::vector<float>{-7, -8}));   // norm.bias: local
  EXPECT_EQ(global[4].values, globalBefore[4].values);         // shape differs: global kept
  for (size_t i = 0; i < global.size(); ++i) {
    EXPECT_EQ(global[i].name, globalBefore[i].name);
    EXPECT_EQ(global[i].shape, globalBefore[i].shape);
  }
}

// Tensors far larger than a read chunk, with enough updates that the chunk shrinks: every value
// must still be merged once, with its own update values.
TEST(MergeLarge, TensorsSpanningManyChunks) {
  TempDir dir;
  const int64_t big = 150'001;  // not a multiple of any chunk size
  auto model = [&](float seed, float step) {
    common::WeightSet w{{"enc.conv.weight", {big}, {}}, {"enc.norm.weight", {7}, {}}, {"head.weight", {3, 5}, {}}};
    float v = seed;
    for (auto& t : w) {
      t.values.resize(static_cast<size_t>(t.elementCount()));
      for (size_t i = 0; i < t.values.size(); ++i) t.values[i] = v + step * static_cast<float>(i % 1000);
      v += 1;
    }
    return w;
  };
  const auto current = model(1.0f, 0.001f);
  writeBytes(dir / "current.bin", common::encodeWeights(current));
  for (int k : {3, 20}) {
    for (Strategy s : {Strategy::FedAvg, Strategy::TrimmedMean, Strategy::Dafne}) {
      MergeInput in;
      in.current = {dir / "current.bin", 0, 0};
      in.currentGeneration = 4;
      in.policy.strategy = s;
      in.policy.trimFraction = 0.2;
      in.policy.dafneWeight = 0.5;
      in.generationWeights = [&](int64_t) { return common::WeightsLocation{dir / "current.bin", 0, 0}; };
      std::vector<std::vector<double>> deltas;
      for (int i = 0; i < k; ++i) {
        const auto d = model(0.01f * static_cast<float>(i), 0.0001f * static_cast<float>(i + 1));
        deltas.push_back(flatten(d));
        const fs::path path = dir / ("d" + std::to_string(i) + ".bin");
        writeBytes(path, common::encodeWeights(d));
        UpdateInput u;
        u.id = i;
        u.weights = {path, 0, 0};
        u.baseGeneration = 4;
        u.samples = 1 + i;
        in.updates.push_back(u);
      }
      common::WeightFileWriter writer(dir.path(), 3);
      mergeUpdates(in, writer);
      writer.file().commit(dir / "merged.bin");
      const auto merged = flatten(common::decodeWeights(readBytes(dir / "merged.bin"), "merged"));
      const auto cur = flatten(current);
      double totalSamples = 0;
      for (int i = 0; i < k; ++i) totalSamples += 1 + i;
      const size_t trim = static_cast<size_t>(std::floor(0.2 * k));
      ASSERT_EQ(merged.size(), cur.size());
      size_t wrong = 0;
      for (size_t j = 0; j < cur.size(); ++j) {
        double expected = cur[j];
        if (s == Strategy::FedAvg) {
          for (int i = 0; i < k; ++i) expected += (1 + i) / totalSamples * deltas[static_cast<size_t>(i)][j];
        } else if (s == Strategy::TrimmedMean) {
          std::vector<double> column;
          for (const auto& d : deltas) column.push_back(d[j]);
          std::sort(column.begin(), column.end());
          double sumKept = 0;
          for (size_t i = trim; i < column.size() - trim; ++i) sumKept += column[i];
          expected += sumKept / static_cast<double>(column.size() - 2 * trim);
        } else {
          for (const auto& d : deltas) expected = 0.5 * expected + 0.5 * (cur[j] + d[j]);
        }
        if (std::abs(merged[j] - expected) > 1e-4 && wrong++ < 5) {
          ADD_FAILURE() << toString(s) << " K=" << k << " value " << j << ": " << merged[j] << " != " << expected;
        }
      }
      EXPECT_EQ(wrong, 0u) << toString(s) << " K=" << k;
    }
  }
}
