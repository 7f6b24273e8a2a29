// Erasure receipts: proof, for one record, that a sweep acted on it.
//
// Every batch's keys_sha256 is the Merkle root (merkle.hpp) of keyed hashes of
// the keys it acted on. The sorted leaves of each batch are kept in
// STATE_DIR/receipts/ROOT (32 bytes each, never a key in clear), under the
// installation's secret STATE_DIR/receipt.key. `audit find` hashes the key it
// is asked about, looks for its leaf in the trees of that rule's entries, and
// gives the entry with the leaf's inclusion proof; `audit check-receipt`
// checks such a receipt against the audit log. docs/audit-protocol.md has the
// format.
#pragma once

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "audit/merkle.hpp"
#include "util/error.hpp"

namespace retentiond {

// The secret of an installation's receipts, STATE_DIR/receipt.key: made on
// first use (32 random bytes, mode 0600); the same rules as the hmac key when
// read (at least 32 bytes, its owner's alone). nullopt when `create` is false
// and there is none yet (no sweep has acted).
Result<std::optional<std::string>> receipt_secret(const std::filesystem::path& state_dir,
                                                  bool create);

// The leaves of each batch's tree, in STATE_DIR/receipts.
class ReceiptLeaves {
 public:
  // Creates STATE_DIR/receipts (0700) and the secret when missing.
  static Result<ReceiptLeaves> open(const std::filesystem::path& state_dir);

  const std::string& secret() const { return secret_; }
  // Writes the sorted leaves of the tree with this root. Written before the
  // batch commits, so that a committed entry has its leaves; not synced here
  // (see sync()). Throws std::runtime_error when the file cannot be written.
  void save(const Hash& root, std::span<const Hash> sorted_leaves) const;
  // Makes every leaves file written so far durable: called with the audit
  // log's own sync, once per stage.
  Result<void> sync() const;

 private:
  std::filesystem::path dir_;
  std::string secret_;
};

// What `audit find` is asked.
struct RecordQuery {
  std::string rule;
  std::string key;
  std::optional<std::string> store;
};

// One entry that acted on the record, with the proof.
struct RecordProof {
  nlohmann::ordered_json line;  // the audit log's line, seq/prev/hash included
  std::size_t index = 0;        // the leaf's position among the sorted leaves
  std::size_t size = 0;         // how many leaves the tree has
  std::vector<Hash> proof;
};

struct RecordSearch {
  Hash leaf{};
  std::vector<RecordProof> found;  // in log order
  std::int64_t entries_searched = 0;
  // Entries of the rule whose leaves are not kept: written before receipts
  // existed, or lost with a power cut before the stage's end.
  std::vector<std::int64_t> entries_without_leaves;
};

// Looks for the record in the entries of its rule (and store).
Result<RecordSearch> find_record(const std::filesystem::path& state_dir, const RecordQuery& query);

// The receipt as `audit find --format json` prints it.
nlohmann::ordered_json receipt_json(const RecordQuery& query, const RecordSearch& search);

struct ReceiptCheck {
  bool ok = false;
  std::string message;  // what was proven, or what is wrong
};

// Checks a receipt: each entry's line against its hash and against the line
// of the same seq in the log (whose chain is verified), the leaf's proof
// against the entry's keys_sha256, and the leaf against the key under the
// installation's secret.
Result<ReceiptCheck> check_receipt(const std::filesystem::path& state_dir,
                                   const nlohmann::json& receipt);

}  // namespace retentiond
