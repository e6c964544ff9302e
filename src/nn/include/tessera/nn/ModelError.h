#pragma once
// Errors about models: specs, model files, weights. The message names the file or field.

#include <stdexcept>

namespace tessera::nn {

class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tessera::nn
