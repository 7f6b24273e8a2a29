// The sweep's batch sizing (lib/sweep/batch_pacer.hpp): batches grow on a
// fast store, shrink at once when one runs long, keep to batch_size when the
// policy sets one, and let another writer in.
#include "sweep/batch_pacer.hpp"

#include <catch2/catch.hpp>

using namespace retentiond;
using namespace std::chrono_literals;

namespace {

// A store where every record costs `per_record` and every commit `commit`:
// feeds the pacer `batches` batches and returns the last limit it chose.
int settle(BatchPacer& pacer, std::chrono::microseconds per_record,
           std::chrono::microseconds commit, int batches, bool others_writing = false) {
  for (int i = 0; i < batches; ++i) {
    int limit = pacer.next_limit();
    pacer.record(limit, limit, commit + per_record * limit, others_writing);
  }
  return pacer.next_limit();
}

}  // namespace

TEST_CASE("sweep pacing: batches grow on a fast store until they fill the target", "[sweep]") {
  BatchPacer pacer(50ms, std::nullopt);
  CHECK(pacer.next_limit() == BatchPacer::kFirstBatch);
  // 1 µs a record, 2 ms a commit: ~48 000 records fit in 50 ms.
  int first = pacer.next_limit();
  pacer.record(first, first, 2ms + 1us * first, false);
  CHECK(pacer.next_limit() == 2 * first);  // grows fast, at most twice per batch
  int limit = settle(pacer, 1us, 2ms, 30);
  // Near the target, under it: 75 % of 50 ms at 1 µs a record after the commit.
  CHECK(limit > 25'000);
  CHECK(limit < 48'000);
  CHECK(pacer.pause() == 0us);  // nobody else writes: no pause
}

TEST_CASE("sweep pacing: a batch that runs long shrinks the next one at once", "[sweep]") {
  BatchPacer pacer(50ms, std::nullopt);
  int limit = settle(pacer, 1us, 2ms, 30);
  // The store slows down tenfold (pages no longer cached): one long batch.
  pacer.record(limit, limit, 10us * limit, false);
  int after = pacer.next_limit();
  CHECK(after < limit / 8);
  CHECK(std::chrono::microseconds(10us * after) <= 50ms);
}

TEST_CASE("sweep pacing: batch_size bounds every batch, and no batch is below one record",
          "[sweep]") {
  BatchPacer bounded(50ms, 7);
  CHECK(bounded.next_limit() == 7);
  CHECK(settle(bounded, 1us, 100us, 20) == 7);

  BatchPacer slow(1ms, std::nullopt);
  // Each record takes a second: one record a batch, never zero.
  CHECK(settle(slow, 1s, 0us, 5) == 1);
  slow.record(1, 0, 2s, false);  // nothing done, and slow: still one
  CHECK(slow.next_limit() == 1);
}

TEST_CASE("sweep pacing: the last, short batch of a stage does not resize", "[sweep]") {
  BatchPacer pacer(50ms, std::nullopt);
  int limit = settle(pacer, 1us, 2ms, 30);
  pacer.record(limit, 3, 2ms, false);  // 3 records left: says nothing of the rate
  CHECK(pacer.next_limit() == limit);
}

TEST_CASE("sweep pacing: while another connection writes, batches halve and pause", "[sweep]") {
  BatchPacer pacer(50ms, std::nullopt);
  int idle = settle(pacer, 1us, 2ms, 30);
  int shared = settle(pacer, 1us, 2ms, 30, true);
  CHECK(shared < idle);
  CHECK(std::chrono::microseconds(2ms + 1us * shared) <= 25ms);
  // The pause is as long as the last transaction: half the time left free.
  CHECK(pacer.pause() == 2ms + 1us * shared);
  // The writer stops: pauses go on for a few batches, then end.
  settle(pacer, 1us, 2ms, 20, false);
  CHECK(pacer.pause() == 0us);
}
