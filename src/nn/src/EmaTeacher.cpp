#include "EmaTeacher.h"

#include <string_view>

#include "tessera/nn/SemiSupervised.h"

namespace tessera::nn::detail {

namespace {

bool isStepCounter(std::string_view name) {
  constexpr std::string_view counter = "num_batches_tracked";
  return name.size() >= counter.size() && name.substr(name.size() - counter.size()) == counter;
}

}  // namespace

EmaTeacher::EmaTeacher(const NetworkSpec& spec, const WeightSet& start, double decay)
    : net_(buildNetwork(spec, start)), decay_(decay) {
  net_->eval();
  for (auto& p : net_->parameters()) p.set_requires_grad(false);
}

void EmaTeacher::update(UNet& student) {
  torch::NoGradGuard noGrad;
  const auto teacherParams = net_->parameters();
  const auto studentParams = student->parameters();
  for (size_t i = 0; i < teacherParams.size(); ++i) {
    teacherParams[i].mul_(decay_).add_(studentParams[i].detach(), 1.0 - decay_);
  }
  const auto teacherBuffers = net_->named_buffers();
  const auto studentBuffers = student->named_buffers();
  for (size_t i = 0; i < teacherBuffers.size(); ++i) {
    auto t = teacherBuffers[i].value();
    const auto s = studentBuffers[i].value();
    if (isStepCounter(teacherBuffers[i].key()) || !t.is_floating_point()) {
      t.copy_(s);
    } else {
      t.mul_(decay_).add_(s, 1.0 - decay_);
    }
  }
}

torch::Tensor EmaTeacher::logits(const torch::Tensor& x) {
  torch::NoGradGuard noGrad;
  return net_->forward(x);
}

torch::Tensor EmaTeacher::probabilities(const torch::Tensor& x) { return torch::softmax(logits(x), 1); }

}  // namespace tessera::nn::detail

namespace tessera::nn {

void updateEmaTeacher(common::WeightSet& teacher, const common::WeightSet& student, double decay) {
  if (teacher.size() != student.size()) {
    throw Error(ErrorCode::BadModel, "EMA teacher: the teacher holds " + std::to_string(teacher.size()) +
                                         " tensors, the student " + std::to_string(student.size()));
  }
  for (size_t i = 0; i < teacher.size(); ++i) {
    auto& t = teacher[i];
    const auto& s = student[i];
    if (t.name != s.name || t.shape != s.shape) {
      throw Error(ErrorCode::BadModel, "EMA teacher: tensor '" + t.name + "' does not match the student's '" + s.name + "'");
    }
    if (detail::isStepCounter(t.name)) {
      t.values = s.values;
      continue;
    }
    for (size_t k = 0; k < t.values.size(); ++k) {
      t.values[k] = static_cast<float>(decay * t.values[k] + (1.0 - decay) * s.values[k]);
    }
  }
}

}  // namespace tessera::nn
