#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tessera/common/Error.h"
#include "tessera/model/Model.h"
#include "tessera/model/NetworkSpec.h"
#include "tessera/model/Preprocessing.h"
#include "tessera/model/TaskInfo.h"
#include "tessera/model/WeightLayout.h"

using namespace tessera::model;
using tessera::Error;
using tessera::ErrorCode;

TEST(NetworkSpec, JsonRoundTripKeepsEveryField) {
  NetworkSpec spec;
  spec.dims = 3;
  spec.inChannels = 2;
  spec.classes = 4;
  spec.baseFeatures = 12;
  spec.depth = 3;
  spec.norm = Normalization::Instance;
  spec.patch = {32, 64, 16};
  const auto back = networkSpecFromJson(toJson(spec));
  EXPECT_EQ(back.dims, 3);
  EXPECT_EQ(back.inChannels, 2);
  EXPECT_EQ(back.classes, 4);
  EXPECT_EQ(back.baseFeatures, 12);
  EXPECT_EQ(back.depth, 3);
  EXPECT_EQ(back.norm, Normalization::Instance);
  EXPECT_EQ(back.patch, (std::array<int, 3>{32, 64, 16}));
}

TEST(NetworkSpec, GuidanceChannelsRoundTripAndOldFilesReadAsNone) {
  NetworkSpec spec;
  spec.guidanceChannels = 2;
  const auto json = toJson(spec);
  EXPECT_EQ(json.at("guidance_channels"), 2);
  EXPECT_EQ(networkSpecFromJson(json).guidanceChannels, 2);
  // Specs written before guidance existed have no such field: automatic-only models.
  nlohmann::json old{{"architecture", "unet"}, {"dims", 2}, {"axis", 2}, {"in_channels", 1}, {"classes", 2},
                     {"base_features", 16}, {"depth", 4}, {"norm", "batch"}};
  EXPECT_EQ(networkSpecFromJson(old).guidanceChannels, 0);
  // ... and such a model writes exactly the old JSON back, so its file's bytes do not change.
  EXPECT_EQ(toJson(networkSpecFromJson(old)).dump(), old.dump());
}

TEST(NetworkSpec, GuidanceChannelsChangeOnlyTheFirstConvolution) {
  NetworkSpec plain;
  NetworkSpec guided = plain;
  guided.guidanceChannels = 2;
  const auto a = weightLayout(plain), b = weightLayout(guided);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(b[0].name, "enc0.0.conv.weight");
  EXPECT_EQ(b[0].shape, (std::vector<int64_t>{16, 3, 3, 3}));
  EXPECT_EQ(b[0].fanIn, 3 * 9);
  for (size_t i = 1; i < a.size(); ++i) EXPECT_EQ(a[i].shape, b[i].shape) << a[i].name;
  const auto model = initialModel(guided, {}, {}, 1);
  EXPECT_EQ(model.weights[0].shape, b[0].shape);
}

TEST(NetworkSpec, ErrorsNameTheField) {
  auto expectError = [](const nlohmann::json& j, const std::string& needle) {
    try {
      networkSpecFromJson(j);
      FAIL() << "accepted " << j.dump();
    } catch (const tessera::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expectError({{"dims", 4}}, "'dims'");
  expectError({{"classes", 1}}, "'classes'");
  expectError({{"norm", "group"}}, "'norm'");
  expectError({{"depth", 0}}, "'depth'");
  expectError({{"guidance_channels", 1}}, "'guidance_channels' must be 0 or 2");
  expectError({{"dims", 3}, {"depth", 4}, {"patch", {20, 64, 64}}}, "'patch'");
  expectError({{"dims", "two"}}, "wrong type");
  expectError({{"layers", 3}}, "unknown field 'layers'");
  expectError({{"architecture", "resnet"}}, "'architecture'");
  expectError(nlohmann::json::array(), "JSON object");
}

TEST(Preprocessing, JsonRoundTripAndValidation) {
  Preprocessing p;
  p.targetSpacing = {1.5, 1.5, 0};
  p.clipLowPercentile = 1;
  p.clipHighPercentile = 99;
  const auto back = preprocessingFromJson(toJson(p));
  EXPECT_EQ(back.targetSpacing, p.targetSpacing);
  EXPECT_DOUBLE_EQ(back.clipLowPercentile, 1);
  EXPECT_THROW(preprocessingFromJson({{"target_spacing", {-1, 1, 1}}}), tessera::Error);
  EXPECT_THROW(preprocessingFromJson({{"clip_percentiles", {50, 10}}}), tessera::Error);
  EXPECT_THROW(preprocessingFromJson({{"normalization", "minmax"}}), tessera::Error);
}

TEST(Preprocessing, ZScoreGivesZeroMeanUnitVariance) {
  tessera::image::Geometry g;
  g.size = {10, 10, 10};
  tessera::image::Volume v(g);
  for (size_t i = 0; i < v.voxels.size(); ++i) v.voxels[i] = static_cast<float>(i % 37);
  Preprocessing p;
  p.clipLowPercentile = 0;
  p.clipHighPercentile = 100;
  const auto out = preprocessImage(v, p);
  double sum = 0, sq = 0;
  for (float x : out.voxels) {
    sum += x;
    sq += x * x;
  }
  EXPECT_NEAR(sum / 1000, 0.0, 1e-5);
  EXPECT_NEAR(sq / 1000, 1.0, 1e-4);
}

TEST(Preprocessing, ResamplesOnlyAxesWithATargetSpacing) {
  tessera::image::Geometry g;
  g.size = {40, 20, 7};
  g.spacing = {1, 1, 3};
  tessera::image::Volume v(g, 1.0f);
  Preprocessing p;
  p.targetSpacing = {2, 2, 0};
  const auto out = preprocessLabels(v, p);
  EXPECT_EQ(out.geometry.size, (std::array<int64_t, 3>{20, 10, 7}));
  EXPECT_DOUBLE_EQ(out.geometry.spacing[2], 3.0);
}

TEST(TaskInfo, JsonRoundTripAndBadLabelKeys) {
  TaskInfo t;
  t.name = "brain";
  t.modality = "MR";
  t.anatomy = "BRAIN";
  t.disease = "none";
  t.labels = {{0, "background"}, {1, "brain"}, {7, "lesion"}};
  const auto back = taskInfoFromJson(toJson(t));
  EXPECT_EQ(back.name, "brain");
  EXPECT_EQ(back.anatomy, "BRAIN");
  EXPECT_EQ(back.labels, t.labels);
  EXPECT_THROW(taskInfoFromJson({{"labels", {{"x1", "bad"}}}}), tessera::Error);
}
