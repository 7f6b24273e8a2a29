#include "stores/batch_keys.hpp"

#include <algorithm>
#include <stdexcept>

#include "audit/receipts.hpp"
#include "stores/store_error.hpp"

namespace retentiond {

BatchKeys::BatchKeys(const ReceiptLeaves* receipts)
    : receipts_(receipts), hasher_(receipts ? receipts->secret() : std::string_view{}) {}

void BatchKeys::add(std::string_view key) { leaves_.push_back(hasher_(key)); }

std::string BatchKeys::finish() {
  // Sorted, so that the tree does not depend on the order rows were read in
  // and `audit find` looks a leaf up by bisection.
  std::sort(leaves_.begin(), leaves_.end());
  Hash root = merkle_root(leaves_);
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
