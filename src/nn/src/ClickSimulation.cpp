#include "ClickSimulation.h"

#include <algorithm>

#include "tessera/nn/Guidance.h"

namespace tessera::nn::detail {

namespace {

// How many 3^d erosions each voxel of `region` [N, ...spatial] survives, up to kErosions: a
// cheap stand-in for the distance to the region's border. A person clicks in the middle of an
// error, not on its rim, and rims are where labels themselves are uncertain.
constexpr int kErosions = 4;

torch::Tensor depthInside(const torch::Tensor& region) {
  auto eroded = region.unsqueeze(1).to(torch::kFloat32);
  auto depth = eroded.clone();
  const bool planar = eroded.dim() == 4;
  for (int i = 0; i < kErosions; ++i) {
    eroded = planar ? -torch::max_pool2d(-eroded, 3, 1, 1) : -torch::max_pool3d(-eroded, 3, 1, 1);
    depth += eroded;
  }
  return depth.squeeze(1);
}

// Adds up to counts[n] clicks to channel [N, ...spatial] for sample n, at the deepest voxels
// of region n (random among equally deep ones), each at least ~2 sigma from the others.
void addClicks(torch::Tensor channel, const torch::Tensor& region, const std::vector<int64_t>& counts) {
  const int64_t n = region.size(0);
  const auto spatial = region.sizes().slice(1);
  const int maxCount = static_cast<int>(*std::max_element(counts.begin(), counts.end()));
  const auto inside = region.to(torch::kFloat32);
  if (maxCount == 0 || inside.sum().item<double>() == 0.0) return;
  auto score = ((depthInside(region) + torch::rand(region.sizes()) * 0.5) * inside).reshape({n, -1});
  const auto allowed = torch::tensor(counts);
  const double sigma = kClickSigmaVoxels;
  std::vector<int64_t> perSample(static_cast<size_t>(region.dim()), 1);
  perSample[0] = n;
  for (int j = 0; j < maxCount; ++j) {
    auto [best, flat] = score.max(1);
    const auto valid = ((best > 0) & (allowed > j)).to(torch::kFloat32).view(perSample);
    auto distance2 = torch::zeros(region.sizes(), torch::kFloat32);
    int64_t stride = score.size(1);
    auto rest = flat;
    for (size_t k = 0; k < spatial.size(); ++k) {
      stride /= spatial[k];
      const auto coordinate = rest.div(stride, "floor");
      rest = rest - coordinate * stride;
      std::vector<int64_t> axisShape(static_cast<size_t>(region.dim()), 1);
      axisShape[k + 1] = spatial[k];
      const auto axis = torch::arange(spatial[k], torch::kFloat32).view(axisShape);
      distance2 += (axis - coordinate.to(torch::kFloat32).view(perSample)).pow(2);
    }
    // Cut at 3 sigma as the inference-time encoding does.
    const auto gaussian =
        torch::exp(distance2 / (-2.0 * sigma * sigma)) * (distance2 <= 9.0 * sigma * sigma).to(torch::kFloat32) * valid;
    channel.add_(gaussian);
    score = score * (gaussian.reshape({n, -1}) < 0.1).to(torch::kFloat32);
  }
  channel.clamp_max_(1.0f);
}

}  // namespace

void clickOnErrors(torch::Tensor& guidance, const torch::Tensor& prediction, const torch::Tensor& labels, int maxClicks,
                   std::mt19937_64& rng) {
  const auto missed = (labels > 0) & (prediction != labels);
  const auto falsePositive = (labels == 0) & (prediction > 0);
  const auto n = static_cast<size_t>(labels.size(0));
  std::uniform_int_distribution<int64_t> count(1, std::max(1, maxClicks));
  std::vector<int64_t> positive(n), negative(n);
  for (size_t i = 0; i < n; ++i) {
    positive[i] = count(rng);
    negative[i] = count(rng);
  }
  addClicks(guidance.select(1, 0), missed, positive);
  addClicks(guidance.select(1, 1), falsePositive, negative);
}

void clickOnLargestError(torch::Tensor& guidance, const torch::Tensor& prediction, const torch::Tensor& labels) {
  const auto missed = (labels > 0) & (prediction != labels);
  const auto falsePositive = (labels == 0) & (prediction > 0);
  const auto n = labels.size(0);
  // Depth is capped at kErosions + 1, so among regions thicker than that the random tie-break
  // picks; the simulated user picks the largest, which is usually also among the thickest.
  const auto depthMissed = (depthInside(missed) * missed.to(torch::kFloat32)).reshape({n, -1});
  const auto depthFalse = (depthInside(falsePositive) * falsePositive.to(torch::kFloat32)).reshape({n, -1});
  const auto bestMissed = (depthMissed + torch::rand(depthMissed.sizes()) * 0.5 * (depthMissed > 0)).amax(1);
  const auto bestFalse = (depthFalse + torch::rand(depthFalse.sizes()) * 0.5 * (depthFalse > 0)).amax(1);
  std::vector<int64_t> positive(static_cast<size_t>(n)), negative(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double m = bestMissed[i].item<double>(), f = bestFalse[i].item<double>();
    positive[static_cast<size_t>(i)] = m > 0 && m >= f ? 1 : 0;
    negative[static_cast<size_t>(i)] = f > 0 && f > m ? 1 : 0;
  }
  if (*std::max_element(positive.begin(), positive.end()) > 0) addClicks(guidance.select(1, 0), missed, positive);
  if (*std::max_element(negative.begin(), negative.end()) > 0) addClicks(guidance.select(1, 1), falsePositive, negative);
}

torch::Tensor simulateClicks(UNet& net, const torch::Tensor& images, const torch::Tensor& labels,
                             const TrainOptions::ClickSimulation& options, bool channelsLast, std::mt19937_64& rng) {
  auto shape = images.sizes().vec();
  shape[1] = 2;
  auto guidance = torch::zeros(shape, torch::kFloat32);
  if (std::uniform_real_distribution<double>(0.0, 1.0)(rng) < options.noClickProbability) return guidance;
  torch::NoGradGuard noGrad;
  for (int round = 0; round < options.clickIterations; ++round) {
    auto x = torch::cat({images, guidance}, 1);
    if (channelsLast) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    const auto prediction = net->forward(x).argmax(1);
    if (options.oneClickAtLargestError) {
      clickOnLargestError(guidance, prediction, labels);
    } else {
      clickOnErrors(guidance, prediction, labels, options.maxClicksPerIteration, rng);
    }
  }
  return guidance;
}

}  // namespace tessera::nn::detail
