#pragma once
// The model description types the network code works with, under their short names inside nn's
// own implementation files (public headers spell them model::…).

#include "tessera/common/Error.h"
#include "tessera/common/WeightRecords.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/model/Model.h"

namespace tessera::nn {
using common::WeightSet;
using common::WeightTensor;
using model::Model;
using model::NetworkSpec;
using model::Normalization;
using model::Preprocessing;
using model::TaskInfo;
using model::TrainingCase;
}  // namespace tessera::nn
