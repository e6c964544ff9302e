// Slice-to-slice deformable registration with ITK's demons. Demons suits this job: neighbouring
// slices of one scan share intensities (no metric beyond the squared difference is needed) and
// differ by small, smooth deformations, and a few dozen iterations on a 2D slice take
// milliseconds. Of ITK's variants, the fast symmetric-forces (ESM) filter was chosen by
// bench/propagate_bench.cpp on Colin27, every 10th slice drawn, 16/8/4 iterations: it gave the
// brain-mask Dice of the diffeomorphic filter (0.981) in about half its time and matched plain and
// symmetric-forces demons within 0.001 Dice at equal or lower cost.

#include <algorithm>
#include <cmath>

#include <itkFastSymmetricForcesDemonsRegistrationFilter.h>
#include <itkImage.h>
#include <itkImageRegionConstIterator.h>
#include <itkMultiResolutionPDEDeformableRegistration.h>
#include <itkMultiThreaderBase.h>
#include <itkVector.h>

#include "SliceFields.h"

namespace tessera::interactive::detail {

namespace {

using Slice = itk::Image<float, 2>;
using Displacement = itk::Image<itk::Vector<float, 2>, 2>;
using Demons = itk::FastSymmetricForcesDemonsRegistrationFilter<Slice, Slice, Displacement>;
using Pyramid = itk::MultiResolutionPDEDeformableRegistration<Slice, Slice, Displacement, float>;

Slice::Pointer toItk(const float* pixels, int width, int height) {
  auto image = Slice::New();
  Slice::RegionType region;
  region.SetSize({{static_cast<itk::SizeValueType>(width), static_cast<itk::SizeValueType>(height)}});
  image->SetRegions(region);
  image->Allocate();
  std::copy(pixels, pixels + static_cast<size_t>(width) * height, image->GetBufferPointer());
  return image;
}

}  // namespace

SliceField registerSlicePair(const float* fixed, const float* moving, int width, int height,
                             const DemonsSettings& settings) {
  // The coarsest level keeps at least 8 pixels a side; smaller slices get fewer levels (the
  // finest ones), and slices too small to register at all are taken as not moving.
  const int shortSide = std::min(width, height);
  int levels = 0;
  while (levels < static_cast<int>(settings.iterations.size()) && (shortSide >> levels) >= 8) ++levels;
  if (levels == 0) return SliceField::identity(width, height);
  std::vector<unsigned> iterations(settings.iterations.end() - levels, settings.iterations.end());

  auto demons = Demons::New();
  demons->SetStandardDeviations(settings.fieldSigma);
  demons->SetMaximumUpdateStepLength(2.0);
  demons->SetNumberOfWorkUnits(1);
  auto pyramid = Pyramid::New();
  pyramid->SetRegistrationFilter(demons);
  pyramid->SetNumberOfLevels(static_cast<unsigned>(levels));
  pyramid->SetNumberOfIterations(iterations.data());
  pyramid->SetNumberOfWorkUnits(1);
  pyramid->GetModifiableFixedImagePyramid()->SetNumberOfWorkUnits(1);
  pyramid->GetModifiableMovingImagePyramid()->SetNumberOfWorkUnits(1);
  pyramid->GetModifiableFieldExpander()->SetNumberOfWorkUnits(1);
  pyramid->SetFixedImage(toItk(fixed, width, height));
  pyramid->SetMovingImage(toItk(moving, width, height));
  pyramid->Update();

  SliceField field = SliceField::identity(width, height);
  const auto* out = pyramid->GetOutput()->GetBufferPointer();
  for (size_t i = 0; i < field.dx.size(); ++i) {
    // A diverged pair (NaN) is taken as not moving rather than poisoning the chain.
    const float dx = out[i][0], dy = out[i][1];
    field.dx[i] = std::isfinite(dx) ? dx : 0.0f;
    field.dy[i] = std::isfinite(dy) ? dy : 0.0f;
  }
  return field;
}

int defaultWorkerCount() {
  return std::max(1, static_cast<int>(itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads()));
}

}  // namespace tessera::interactive::detail
