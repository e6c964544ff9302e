// trainAsSite (UnlabeledSites.h): apart from the rest so that code using only the data and report
// helpers links without LibTorch.
#include "UnlabeledSites.h"

#include "tessera/nn/SemiSupervised.h"

namespace tessera::simulation {

void trainAsSite(model::Model& model, const SiteData& site, const std::vector<model::TrainingCase>& rounds,
                 const nn::TrainOptions& options) {
  if (!site.unlabeled) {
    nn::trainModel(model, rounds, options);
    return;
  }
  std::vector<image::Volume> images;
  for (const auto& r : rounds) images.push_back(r.image);
  nn::trainSemiSupervised(model, {}, images, options);
}

}  // namespace tessera::simulation
