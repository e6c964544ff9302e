// The marginal loss for partially annotated cases: a structure a site does not draw is never
// pushed towards background.
#include <gtest/gtest.h>

#include <filesystem>

#include "PartialLabelLoss.h"
#include "tessera/model/CaseFolder.h"

namespace tessera::nn::detail {
namespace {

// One sample, 3 classes (0 background, 1 annotated, 2 not annotated), 4 voxels in a 2x2 image.
struct Tiny {
  torch::Tensor logits = torch::tensor({0.3f, -0.2f, 1.1f, 0.0f,   // class 0
                                        1.2f, 0.4f, -0.5f, 0.7f,   // class 1
                                        -0.1f, 0.9f, 0.2f, 0.6f})  // class 2
                             .view({1, 3, 2, 2});
  torch::Tensor target = torch::tensor({0, 1, 0, 0}, torch::kInt64).view({1, 2, 2});
  torch::Tensor annotated = torch::tensor({1.0f, 1.0f, 0.0f}).view({1, 3});
};

TEST(PartialLabelLoss, SwappingBackgroundAndAnUnannotatedClassChangesNothing) {
  Tiny t;
  const auto swapped = torch::stack({t.logits[0][2], t.logits[0][1], t.logits[0][0]}).unsqueeze(0);
  const double a = partialLabelLoss(t.logits, t.target, {}, t.annotated).item<double>();
  const double b = partialLabelLoss(swapped, t.target, {}, t.annotated).item<double>();
  EXPECT_NEAR(a, b, 1e-6);
}

TEST(PartialLabelLoss, UnannotatedClassIsNeverPushedBelowBackground) {
  Tiny t;
  // Where background and the unannotated class tie, their gradients are equal: the loss has no
  // preference between them. The plain loss (every class annotated) pushes class 2 down.
  auto logits = t.logits.clone();
  logits[0][2] = logits[0][0];
  logits.requires_grad_(true);
  partialLabelLoss(logits, t.target, {}, t.annotated).backward();
  const auto g = logits.grad();
  EXPECT_TRUE(torch::allclose(g[0][0], g[0][2], 1e-6, 1e-7)) << g;

  auto plain = logits.detach().clone().requires_grad_(true);
  partialLabelLoss(plain, t.target, {}, torch::ones({1, 3})).backward();
  // Gradient descent lowers a logit with a positive gradient: the full loss does exactly that to
  // class 2 on the voxels labelled 0.
  EXPECT_GT(plain.grad()[0][2].sum().item<double>(), 0.0);
  EXPECT_LT(plain.grad()[0][0].sum().item<double>(), 0.0);
}

TEST(PartialLabelLoss, FullyAnnotatedMaskIsTheUsualCrossEntropyOnTheCrossEntropyPart) {
  Tiny t;
  // With every class annotated the merged probabilities are the softmax itself.
  const auto ce = torch::nn::functional::cross_entropy(t.logits, t.target).item<double>();
  const auto full = partialLabelLoss(t.logits, t.target, {}, torch::ones({1, 3})).item<double>();
  EXPECT_GT(full, ce);  // plus the soft-Dice term, which is positive
  EXPECT_LT(full, ce + 1.0);
}

TEST(PartialLabelLoss, AnnotatedLabelsSurviveTheCaseFolder) {
  const auto dir = std::filesystem::temp_directory_path() / "tessera-partial-label-test";
  std::filesystem::remove_all(dir);
  model::TrainingCase c;
  c.image.geometry.size = {4, 4, 1};
  c.image.voxels.assign(16, 1.0f);
  c.labels = c.image;
  c.labels.voxels.assign(16, 0.0f);
  c.annotatedLabels = {1, 3};
  model::writeCase(dir, "partial", c);
  c.annotatedLabels.clear();
  model::writeCase(dir, "full", c);
  const auto cases = model::readCaseFolder(dir);
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_TRUE(cases[0].data.annotatedLabels.empty());  // "full"
  EXPECT_EQ(cases[1].data.annotatedLabels, (std::vector<int>{1, 3}));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera::nn::detail
