// The keys one batch acts on, given one by one: every store uses it where a
// batch's audit entry gets its keys_sha256, the Merkle root of the keys'
// keyed hashes (audit/merkle.hpp), whose leaves are kept for erasure
// receipts (audit/receipts.hpp).
#pragma once

#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/merkle.hpp"

namespace retentiond {

class ReceiptLeaves;

class BatchKeys {
 public:
  // `receipts` null: the root only, under an empty secret (a store used
  // without a sweep, in tests).
  explicit BatchKeys(const ReceiptLeaves* receipts);
  // The key as text, as `audit find --key` is given it: an integer in
  // decimal, text as it is, a file's path relative to its store's root.
  void add(std::string_view key);
  // Hashes the keys added so far on another thread, while the caller goes on
  // with the batch's statement: the hashing (about half a microsecond a key)
  // then costs the sweep no time on a machine with a core to spare. No key
  // may be added after.
  void hash_in_background();
  // The batch's keys_sha256 (lower-case hex of the root), the leaves saved
  // first. Call inside the batch's transaction, before it commits. Throws
  // StoreError when the leaves cannot be saved: the batch is then rolled back.
  std::string finish();

 private:
  // Hashes keys_ into leaves_, sorted, and returns their root.
  Hash hash_all();

  const ReceiptLeaves* receipts_;
  KeyHasher hasher_;
  std::vector<std::string> keys_;
  std::vector<Hash> leaves_;
  // Last: destroyed (and so waited for) before what it works on.
  std::future<Hash> root_;
};

}  // namespace retentiond
