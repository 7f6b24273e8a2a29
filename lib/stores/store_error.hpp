// A failure inside a store, classified for the sweep's exit code. Kept apart
// from store.hpp so that the kinds' low-level wrappers can throw it.
#pragma once

#include <stdexcept>
#include <string>

namespace retentiond {

// A failure inside a store, classified for the sweep's exit code; the store
// (or explain_store_error) turns it into a message.
class StoreError : public std::runtime_error {
 public:
  enum class Kind {
    busy,         // a lock stayed taken past busy_timeout: nothing lost, retry later (75)
    unavailable,  // cannot be opened or used, a table or privilege missing (69)
    damaged,      // the store's file or data is not what a store must be (69)
  };
  StoreError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

}  // namespace retentiond
