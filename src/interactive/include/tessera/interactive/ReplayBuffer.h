#pragma once
// Which earlier cases a continual fine-tuning step rehearses. Fine-tuning on new cases alone
// pulls the network towards them and away from what it knew (catastrophic forgetting); mixing in
// a few earlier cases keeps the old decision boundaries in the loss. The buffer holds case names
// oldest first; sampling returns a subset of them, also oldest first.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::interactive {

enum class ReplaySampling {
  Uniform,     // any earlier case equally likely: the default, no assumption about drift
  Recent,      // the newest cases: follows a site whose scanner or population moves on
  Stratified,  // one case from each of `size` equal stretches of time: old and new alike
};

// "uniform", "recent", "stratified". Throws Error(BadRequest) naming the value for anything else.
ReplaySampling replaySamplingFromName(std::string_view name);
std::string_view replaySamplingName(ReplaySampling sampling);

class ReplayBuffer {
 public:
  ReplayBuffer() = default;
  explicit ReplayBuffer(std::vector<std::string> oldestFirst) : names_(std::move(oldestFirst)) {}

  // Appends a case as the newest.
  void add(std::string name) { names_.push_back(std::move(name)); }
  size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }

  // At most `count` distinct names (all of them when the buffer holds no more), oldest first.
  // The same seed gives the same choice; Recent ignores the seed.
  std::vector<std::string> sample(size_t count, ReplaySampling sampling, uint64_t seed) const;

 private:
  std::vector<std::string> names_;
};

}  // namespace tessera::interactive
