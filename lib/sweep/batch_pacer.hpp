// How many records the next batch may take, and how long to wait before it:
// batches are sized by the time their write transaction takes (the policy's
// max_transaction), not by a count guessed in advance. See
// docs/sweep-pacing.md for the reasoning and how other tools do it.
//
// Pure logic: the sweep measures each transaction (BatchResult's
// write_lock_held) and reports it here; nothing in this unit reads a clock or
// sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace retentiond {

class BatchPacer {
 public:
  using Duration = std::chrono::microseconds;

  // The first batch is small: nothing is known yet about the store, and a
  // store busy with its application should not meet a long first batch.
  static constexpr int kFirstBatch = 100;

  // `target`: how long one write transaction should hold the lock.
  // `bound`: the policy's batch_size, never exceeded when set.
  BatchPacer(Duration target, std::optional<int> bound);

  // The size of the next batch: at least 1, at most the bound.
  int next_limit() const { return limit_; }

  // A batch of `asked` records (the limit it was given) took `took` from
  // BEGIN to COMMIT, and took `done` records (fewer than asked: the work's
  // last batch, which says little about the rate). `others_writing`: the
  // store saw another connection commit since the previous batch.
  void record(int asked, std::int64_t done, Duration took, bool others_writing);

  // How long to wait before the next batch begins, so that an application
  // waiting for the write lock gets it: nothing on a store nobody else writes;
  // while others write (and for a few batches after), as long as the last
  // transaction took (half the time for the sweep, half left free), and
  // transactions are kept to half the target.
  Duration pause() const { return pause_; }

 private:
  Duration target_;
  std::optional<int> bound_;
  int limit_;
  Duration pause_{0};
  // Batches since another writer was last seen; "many" at the start.
  int quiet_batches_ = 1'000;
};

}  // namespace retentiond
