#pragma once
// The clicks a person would give, simulated on training batches so that one network learns both
// automatic segmentation and correction from clicks (DeepEdit's recipe).

#include <random>

#include <torch/torch.h>

#include "UNet.h"
#include "tessera/nn/Training.h"

namespace tessera::nn::detail {

// Guidance maps [N, 2, ...spatial] for a batch (images [N, 1, ...spatial], labels [N, ...spatial]):
// zeros with probability options.noClickProbability; otherwise options.clickIterations rounds of
// predicting (no gradient) with the clicks so far and clicking on that prediction's errors.
torch::Tensor simulateClicks(UNet& net, const torch::Tensor& images, const torch::Tensor& labels,
                             const TrainOptions::ClickSimulation& options, bool channelsLast, std::mt19937_64& rng);

// One round: per sample, 1..maxClicks positive clicks in the part of the structure `prediction`
// misses and as many negative ones where it finds structure that is not there, each deep inside
// its error region, added to `guidance` [N, 2, ...spatial] as Gaussians (kClickSigmaVoxels) clamped to 1.
void clickOnErrors(torch::Tensor& guidance, const torch::Tensor& prediction, const torch::Tensor& labels, int maxClicks,
                   std::mt19937_64& rng);

// One round of the simulated user's protocol: per sample with any error, one click at the deepest
// error voxel (random among equally deep ones), positive in a miss, negative in a false positive.
void clickOnLargestError(torch::Tensor& guidance, const torch::Tensor& prediction, const torch::Tensor& labels);

}  // namespace tessera::nn::detail
