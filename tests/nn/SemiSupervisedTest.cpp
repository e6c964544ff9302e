// Semi-supervised training: the EMA teacher's arithmetic, the confidence filter, the consistency
// term, and that unlabelled scans of a shifted scanner help the model on that scanner.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ConsistencyLoss.h"
#include "EmaTeacher.h"
#include "IntensityPerturbation.h"
#include "Phantom.h"
#include "PseudoLabels.h"
#include "VolumeTensors.h"
#include "tessera/common/Error.h"
#include "tessera/image/Metrics.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Runtime.h"
#include "tessera/nn/SemiSupervised.h"

namespace tessera::nn {
namespace {

using test::makePhantom;
using test::tinySpec;

common::WeightTensor tensor(const std::string& name, std::vector<float> values) {
  return {name, {static_cast<int64_t>(values.size())}, std::move(values)};
}

TEST(EmaTeacher, AfterTwoStepsTheTeacherIsTheHandComputedAverage) {
  common::WeightSet teacher{tensor("conv.weight", {1.0f, -2.0f}), tensor("bn.num_batches_tracked", {0.0f})};
  const common::WeightSet s1{tensor("conv.weight", {3.0f, 3.0f}), tensor("bn.num_batches_tracked", {1.0f})};
  const common::WeightSet s2{tensor("conv.weight", {0.0f, 4.0f}), tensor("bn.num_batches_tracked", {2.0f})};
  const double d = 0.9;
  updateEmaTeacher(teacher, s1, d);
  updateEmaTeacher(teacher, s2, d);
  // t2 = d²·t0 + d(1−d)·s1 + (1−d)·s2
  EXPECT_NEAR(teacher[0].values[0], 0.81 * 1 + 0.09 * 3 + 0.1 * 0, 1e-6);
  EXPECT_NEAR(teacher[0].values[1], 0.81 * -2 + 0.09 * 3 + 0.1 * 4, 1e-6);
  EXPECT_EQ(teacher[1].values[0], 2.0f);  // a step counter is copied, not averaged
}

TEST(EmaTeacher, MismatchedTensorsAreRefused) {
  common::WeightSet teacher{tensor("a", {1.0f})};
  EXPECT_THROW(updateEmaTeacher(teacher, {tensor("b", {1.0f})}, 0.9), Error);
  EXPECT_THROW(updateEmaTeacher(teacher, {tensor("a", {1.0f, 2.0f})}, 0.9), Error);
}

TEST(EmaTeacher, NetworkUpdateIsTheSameArithmeticAsOnWeightRecords) {
  const auto spec = tinySpec();
  const auto start = model::initialModel(spec, {}, {}, 1).weights;
  const auto other = model::initialModel(spec, {}, {}, 2).weights;
  detail::EmaTeacher teacher(spec, start, 0.75);
  auto student = detail::buildNetwork(spec, other);
  teacher.update(student);
  common::WeightSet expected = start;
  updateEmaTeacher(expected, other, 0.75);
  const auto got = detail::extractWeights(teacher.network());
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    for (size_t k = 0; k < got[i].values.size(); ++k) {
      ASSERT_NEAR(got[i].values[k], expected[i].values[k], 1e-5) << got[i].name;
    }
  }
}

TEST(ConfidenceFilter, KeepsExactlyTheVoxelsAtOrAboveTheThreshold) {
  // 2 classes, 4 voxels: the teacher's largest probability is 0.95, 0.9, 0.6, 0.89.
  const auto background = torch::tensor({0.95f, 0.1f, 0.4f, 0.89f});
  const auto probs = torch::stack({background, 1 - background}).view({1, 2, 2, 2});
  const auto p = detail::confidentPseudoLabels(probs, 0.9);
  EXPECT_TRUE(torch::equal(p.labels.flatten(), torch::tensor({0, 1, 1, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(p.weights.flatten(), torch::tensor({1.0f, 1.0f, 0.0f, 0.0f})));
  EXPECT_EQ(p.kept, 2);
  EXPECT_EQ(p.seen, 4);
  // Padding is never pseudo-labelled.
  const auto valid = torch::tensor({0.0f, 1.0f, 1.0f, 1.0f}).view({1, 2, 2});
  const auto q = detail::confidentPseudoLabels(probs, 0.9, valid);
  EXPECT_TRUE(torch::equal(q.weights.flatten(), torch::tensor({0.0f, 1.0f, 0.0f, 0.0f})));
  EXPECT_EQ(q.kept, 1);
  EXPECT_EQ(q.seen, 3);
}

TEST(ConfidenceFilter, FilteredVoxelsGiveNoGradient) {
  const auto background = torch::tensor({0.95f, 0.1f, 0.6f, 0.7f});
  const auto pseudo = detail::confidentPseudoLabels(torch::stack({background, 1 - background}).view({1, 2, 2, 2}), 0.9);
  auto logits = torch::randn({1, 2, 2, 2}).requires_grad_(true);
  detail::pseudoLabelLoss(logits, pseudo).backward();
  const auto g = logits.grad().abs().sum(1).flatten();
  EXPECT_GT(g[0].item<float>(), 0.0f);
  EXPECT_GT(g[1].item<float>(), 0.0f);
  EXPECT_EQ(g[2].item<float>(), 0.0f);
  EXPECT_EQ(g[3].item<float>(), 0.0f);
}

TEST(ConsistencyLoss, ZeroForIdenticalPredictionsPositiveOtherwise) {
  const auto a = torch::randn({2, 3, 4, 4});
  EXPECT_EQ(detail::consistencyLoss(a, a.clone()).item<double>(), 0.0);
  auto b = a.clone();
  b[0][1][2][2] += 3.0f;
  EXPECT_GT(detail::consistencyLoss(a, b).item<double>(), 0.0);
  // A difference only where the mask says padding counts for nothing.
  auto valid = torch::ones({2, 4, 4});
  valid[0][2][2] = 0.0f;
  EXPECT_EQ(detail::consistencyLoss(a, b, valid).item<double>(), 0.0);
}

TEST(IntensityPerturbation, KeepsTheGridChangesTheValues) {
  torch::manual_seed(3);
  const auto x = torch::rand({2, 1, 8, 8});
  const auto y = detail::perturbIntensity(x);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_FALSE(torch::allclose(x, y));
  // Contrast survives: perturbed intensities still rise with the originals.
  const auto xs = x.flatten(), ys = y.flatten();
  const auto cx = xs - xs.mean(), cy = ys - ys.mean();
  EXPECT_GT(((cx * cy).sum() / (cx.norm() * cy.norm())).item<double>(), 0.8);
}

// A different scanner for the phantoms: darker (gamma), a strong bias field and more noise.
image::Volume shiftedScanner(const image::Volume& image, uint64_t seed) {
  image::Volume out = image;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 12.0);
  const auto& g = image.geometry;
  for (int64_t z = 0; z < g.size[2]; ++z)
    for (int64_t y = 0; y < g.size[1]; ++y)
      for (int64_t x = 0; x < g.size[0]; ++x) {
        const double v = std::max(0.0, static_cast<double>(image.at(x, y, z))) / 150.0;
        const double bias = 1.0 + 0.6 * (static_cast<double>(x) / static_cast<double>(g.size[0]) - 0.5);
        out.at(x, y, z) = static_cast<float>(150.0 * std::pow(v, 2.0) * bias + noise(rng));
      }
  return out;
}

double meanDiceOnShifted(const model::Model& model, const std::vector<model::TrainingCase>& test) {
  double sum = 0;
  for (const auto& c : test) sum += image::diceScore(segment(model, c.image), c.labels, 1);
  return sum / static_cast<double>(test.size());
}


// A model trained on the reference scanner, the unlabelled scans of a shifted one and held-out
// shifted cases: made once, shared by the end-to-end tests.
struct ShiftedSite {
  std::vector<model::TrainingCase> labelled{makePhantom(1), makePhantom(2)};
  model::Model root = model::initialModel(tinySpec(), {}, {}, 11);
  std::vector<image::Volume> unlabeled;
  std::vector<model::TrainingCase> test;
  double rootDice = 0;

  ShiftedSite() {
    TrainOptions options;
    options.epochs = 12;
    trainModel(root, labelled, options);
    for (uint64_t s = 10; s < 13; ++s) unlabeled.push_back(shiftedScanner(makePhantom(s).image, s));
    for (uint64_t s = 100; s < 103; ++s) {
      auto c = makePhantom(s);
      c.image = shiftedScanner(c.image, s);
      test.push_back(c);
    }
    rootDice = meanDiceOnShifted(root, test);
  }
};

const ShiftedSite& shiftedSite() {
  static const ShiftedSite site;
  return site;
}

TEST(SemiSupervised, ConfidentPseudoLabelsOnTheShiftedScannerAgreeWithTheTruth) {
  const auto& site = shiftedSite();
  detail::EmaTeacher teacher(site.root.spec, site.root.weights, 0.99);
  int64_t kept = 0, keptRight = 0, all = 0, allRight = 0;
  for (uint64_t s = 10; s < 13; ++s) {
    const auto truth = makePhantom(s);
    const auto x = detail::slicesAcross(detail::toTensor(model::preprocessImage(site.unlabeled[s - 10], site.root.preprocessing)), 2);
    const auto y = detail::slicesAcross(detail::toTensor(truth.labels), 2).round().to(torch::kInt64);
    const auto p = detail::confidentPseudoLabels(teacher.probabilities(x.unsqueeze(1)), 0.9);
    const auto right = p.labels == y;
    kept += p.kept;
    keptRight += (right & (p.weights > 0)).sum().item<int64_t>();
    all += y.numel();
    allRight += right.sum().item<int64_t>();
  }
  ASSERT_GT(kept, 0);
  const double keptAccuracy = static_cast<double>(keptRight) / static_cast<double>(kept);
  EXPECT_GE(keptAccuracy, 0.995);
  EXPECT_GE(keptAccuracy, static_cast<double>(allRight) / static_cast<double>(all));
}

TEST(SemiSupervised, LabelledAndUnlabelledTrainingReportsTheFilteredVoxels) {
  const auto& site = shiftedSite();
  model::Model model = site.root;
  TrainOptions options;
  options.epochs = 4;
  options.learningRate = 1e-3;
  std::vector<TrainProgress> epochs;
  options.onEpoch = [&](const TrainProgress& p) { epochs.push_back(p); };
  const auto result = trainSemiSupervised(model, site.labelled, site.unlabeled, options);
  ASSERT_EQ(epochs.size(), 4u);
  for (const auto& p : epochs) {
    EXPECT_EQ(p.unlabeledVoxels, 3 * 48 * 48 * 16);  // every slice of every unlabelled image once
    EXPECT_GT(p.pseudoLabelledVoxels, 0);
    EXPECT_LT(p.pseudoLabelledVoxels, p.unlabeledVoxels);
  }
  EXPECT_EQ(result.pseudoLabelledVoxels, epochs.back().pseudoLabelledVoxels);
  EXPECT_GE(meanDiceOnShifted(model, site.test), 0.95);
}

TEST(SemiSupervised, ASiteWithOnlyUnlabelledScansTrainsWithoutLosingTheStructure) {
  const auto& site = shiftedSite();
  model::Model model = site.root;
  TrainOptions options;
  options.epochs = 4;
  options.learningRate = 1e-3;
  const auto result = trainSemiSupervised(model, {}, site.unlabeled, options);
  EXPECT_GT(result.pseudoLabelledVoxels, 0);
  EXPECT_NE(model.weights[0].values, site.root.weights[0].values);
  // Self-training alone cannot add what no label says; it must not destroy what the model knew
  // (two student outputs pulled together instead of the teacher's target fell to Dice 0.56-0.81).
  EXPECT_GE(meanDiceOnShifted(model, site.test), 0.8) << "before: " << site.rootDice;
}

TEST(SemiSupervised, BadOptionsAndNothingToLearnAreRefused) {
  model::Model model = model::initialModel(tinySpec(), {}, {}, 1);
  SemiSupervisedOptions bad;
  bad.confidence = 1.5;
  EXPECT_THROW(validateSemiSupervisedOptions(bad), Error);
  bad = {};
  bad.teacherDecay = -0.1;
  EXPECT_THROW(trainSemiSupervised(model, {makePhantom(1)}, {makePhantom(2).image}, {}, bad), Error);
  try {
    trainSemiSupervised(model, {}, {}, {});
    FAIL() << "nothing to learn was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadModel);
  }
  try {
    trainSemiSupervised(model, {}, {makePhantom(1, {4, 4, 2}).image}, {});
    FAIL() << "an image too small for the network was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadImage);
    EXPECT_NE(std::string(e.what()).find("unlabeled image 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::nn
