#include "sweep/batch_pacer.hpp"

#include <algorithm>

namespace retentiond {
namespace {

// Batches aim below the target, so that ordinary variation (a page not in
// the cache, a checkpoint) keeps most of them under it.
constexpr double kAim = 0.75;
// Growth per batch at most: a rate measured on one small batch (its fixed
// cost, the commit's fsync, dominates) is a poor guide to a batch 50 times
// larger.
constexpr std::int64_t kMaxGrowth = 2;
// No batch beyond this whatever the rate: the batch's keys are held in memory.
constexpr std::int64_t kMaxLimit = 1'000'000;
// Batches after the last sign of another writer before the pauses stop: an
// application that writes now and then is still let in between its writes.
constexpr int kGentleBatches = 10;

}  // namespace

BatchPacer::BatchPacer(Duration target, std::optional<int> bound)
    : target_(std::max(target, Duration{1})),
      bound_(bound),
      limit_(std::clamp(kFirstBatch, 1, bound.value_or(kFirstBatch))) {}

void BatchPacer::record(int asked, std::int64_t done, Duration took, bool others_writing) {
  quiet_batches_ = others_writing ? 0 : std::min(quiet_batches_ + 1, kGentleBatches);
  bool gentle = quiet_batches_ < kGentleBatches;
  Duration target = gentle ? target_ / 2 : target_;
  took = std::max(took, Duration{1});
  pause_ = gentle ? took : Duration{0};

  std::int64_t next = limit_;
  double aim = kAim * static_cast<double>(target.count());
  double scale = aim / static_cast<double>(took.count());
  if (took > target && done > 0) {
    // Too long: at once down to what the measured rate fits in the target.
    next = static_cast<std::int64_t>(static_cast<double>(done) * scale);
  } else if (done >= asked) {
    // A full batch under the target: grow towards the rate it showed, never
    // shrink (it was short enough).
    next = std::clamp(static_cast<std::int64_t>(static_cast<double>(asked) * scale),
                      static_cast<std::int64_t>(asked), asked * kMaxGrowth);
  }
  next = std::clamp<std::int64_t>(next, 1, kMaxLimit);
  if (bound_) next = std::min<std::int64_t>(next, *bound_);
  limit_ = static_cast<int>(next);
}

}  // namespace retentiond
