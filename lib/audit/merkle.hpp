// The Merkle tree of a batch's keys, for erasure receipts.
//
// An audit entry's keys_sha256 is the root of a Merkle tree (the tree hash of
// RFC 9162, Certificate Transparency v2, section 2.1) whose leaves are keyed
// hashes of the keys the batch acted on, sorted. A receipt for one key carries
// its leaf's inclusion proof: the few hashes that lead from that leaf to the
// root, which the audit log's hash chain covers. Anyone can check the proof;
// only the installation, which holds the secret, can tell which key a leaf is,
// so member numbers cannot be found by hashing every possible number.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace retentiond {

using Hash = std::array<unsigned char, 32>;

std::string to_hex(const Hash& h);
std::optional<Hash> hash_from_hex(std::string_view hex);

// HMAC-SHA256 of keys under one secret, the keyed state computed once: a
// sweep hashes every key it acts on.
class KeyHasher {
 public:
  explicit KeyHasher(std::string_view secret);
  ~KeyHasher();  // wipes the keyed states
  KeyHasher(KeyHasher&&) noexcept;
  KeyHasher& operator=(KeyHasher&&) noexcept;
  Hash operator()(std::string_view key) const;

 private:
  struct State;  // OpenSSL's SHA-256 contexts, kept out of this header
  std::unique_ptr<State> state_;
};

// RFC 9162 MTH over `leaves` in their order: SHA-256(0x00 || leaf) for a
// leaf, SHA-256(0x01 || left || right) for a node, split at the largest
// power of two below the count. Leaves must not be empty.
Hash merkle_root(std::span<const Hash> leaves);

// The inclusion proof (RFC 9162 PATH) of leaves[index].
std::vector<Hash> inclusion_proof(std::span<const Hash> leaves, std::size_t index);

// The root that `leaf` at `index` in a tree of `size` leaves leads to through
// `proof` (RFC 9162, 2.1.3.2); nullopt when the proof cannot belong to such a
// tree (wrong length, index out of range).
std::optional<Hash> root_from_proof(const Hash& leaf, std::size_t index, std::size_t size,
                                    std::span<const Hash> proof);

}  // namespace retentiond
