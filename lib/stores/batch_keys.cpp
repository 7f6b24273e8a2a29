#include "stores/batch_keys.hpp"

#include <algorithm>
#include <stdexcept>
#include <system_error>

#include "audit/receipts.hpp"
#include "stores/store_error.hpp"

namespace retentiond {

BatchKeys::BatchKeys(const ReceiptLeaves* receipts)
    : receipts_(receipts), hasher_(receipts ? receipts->secret() : std::string_view{}) {}

void BatchKeys::add(std::string_view key) {
  if (root_.valid()) throw std::logic_error("BatchKeys::add after hash_in_background");
  keys_.emplace_back(key);
}

Hash BatchKeys::hash_all() {
  leaves_.reserve(keys_.size());
  for (const auto& key : keys_) leaves_.push_back(hasher_(key));
  // Sorted, so that the tree does not depend on the order rows were read in
  // and `audit find` looks a leaf up by bisection.
  std::sort(leaves_.begin(), leaves_.end());
  return merkle_root(leaves_);
}

void BatchKeys::hash_in_background() {
  if (root_.valid()) return;
  try {
    root_ = std::async(std::launch::async, [this] { return hash_all(); });
  } catch (const std::system_error&) {
    // No thread to be had: finish() hashes on this one.
  }
}

std::string BatchKeys::finish() {
  Hash root = root_.valid() ? root_.get() : hash_all();
  if (receipts_) {
    try {
      receipts_->save(root, leaves_);
    } catch (const std::runtime_error& e) {
      throw StoreError(StoreError::Kind::unavailable,
                       std::string(e.what()) + "; the batch was not done");
    }
  }
  return to_hex(root);
}

}  // namespace retentiond
