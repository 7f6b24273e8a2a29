// OpenSSL's low-level SHA-256 (deprecated in 3.0 in favour of EVP, not
// removed): a sweep hashes every key it acts on about five times (HMAC, leaf,
// node), and through EVP each call costs more than the hashing itself (1.2 us
// a key against 0.2 us here, measured on 1 M keys). Its context is a plain
// struct, so HMAC's keyed inner and outer states are computed once and copied
// for each key.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "audit/merkle.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <bit>
#include <cstring>
#include <stdexcept>

namespace retentiond {
namespace {

// SHA-256 of a prefix byte and one or two hashes.
Hash tagged_hash(unsigned char tag, const Hash& a, const Hash* b = nullptr) {
  unsigned char buffer[1 + 2 * 32];
  buffer[0] = tag;
  std::memcpy(buffer + 1, a.data(), 32);
  std::size_t n = 1 + 32;
  if (b) {
    std::memcpy(buffer + n, b->data(), 32);
    n += 32;
  }
  // SHA256_Init/Update/Final: the one-shot SHA256() goes through EVP in 3.0.
  Hash out{};
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, buffer, n);
  SHA256_Final(out.data(), &c);
  return out;
}

Hash leaf_hash(const Hash& leaf) { return tagged_hash(0x00, leaf); }
Hash node_hash(const Hash& left, const Hash& right) { return tagged_hash(0x01, left, &right); }

// The largest power of two strictly below n (n >= 2).
std::size_t split_point(std::size_t n) { return std::bit_floor(n - 1); }

}  // namespace

std::string to_hex(const Hash& h) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned char c : h) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

std::optional<Hash> hash_from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  Hash h{};
  for (std::size_t i = 0; i < 32; ++i) {
    int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    h[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return h;
}

struct KeyHasher::State {
  SHA256_CTX inner;  // after the key XOR ipad block
  SHA256_CTX outer;  // after the key XOR opad block
};

// HMAC (RFC 2104) over SHA-256, its two keyed states kept; tests check it
// against OpenSSL's own HMAC.
KeyHasher::KeyHasher(std::string_view secret) : state_(std::make_unique<State>()) {
  unsigned char block[SHA256_CBLOCK] = {};
  if (secret.size() > SHA256_CBLOCK) {
    SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), block);
  } else {
    std::memcpy(block, secret.data(), secret.size());
  }
  unsigned char pad[SHA256_CBLOCK];
  for (std::size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&state_->inner);
  SHA256_Update(&state_->inner, pad, sizeof pad);
  for (std::size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&state_->outer);
  SHA256_Update(&state_->outer, pad, sizeof pad);
  OPENSSL_cleanse(block, sizeof block);
  OPENSSL_cleanse(pad, sizeof pad);
}

KeyHasher::~KeyHasher() {
  if (state_) OPENSSL_cleanse(state_.get(), sizeof(State));
}
KeyHasher::KeyHasher(KeyHasher&&) noexcept = default;
KeyHasher& KeyHasher::operator=(KeyHasher&&) noexcept = default;

Hash KeyHasher::operator()(std::string_view key) const {
  Hash inner{}, out{};
  SHA256_CTX c = state_->inner;
  SHA256_Update(&c, key.data(), key.size());
  SHA256_Final(inner.data(), &c);
  c = state_->outer;
  SHA256_Update(&c, inner.data(), inner.size());
  SHA256_Final(out.data(), &c);
  return out;
}

Hash merkle_root(std::span<const Hash> leaves) {
  if (leaves.empty()) throw std::invalid_argument("merkle_root of no leaves");
  if (leaves.size() == 1) return leaf_hash(leaves[0]);
  std::size_t k = split_point(leaves.size());
  return node_hash(merkle_root(leaves.first(k)), merkle_root(leaves.subspan(k)));
}

std::vector<Hash> inclusion_proof(std::span<const Hash> leaves, std::size_t index) {
  if (index >= leaves.size()) throw std::invalid_argument("inclusion_proof: index out of range");
  std::vector<Hash> path;
  // Built from the root down, so the sibling nearest the leaf ends up last;
  // the proof lists it first.
  while (leaves.size() > 1) {
    std::size_t k = split_point(leaves.size());
    if (index < k) {
      path.push_back(merkle_root(leaves.subspan(k)));
      leaves = leaves.first(k);
    } else {
      path.push_back(merkle_root(leaves.first(k)));
      leaves = leaves.subspan(k);
      index -= k;
    }
  }
  return {path.rbegin(), path.rend()};
}

std::optional<Hash> root_from_proof(const Hash& leaf, std::size_t index, std::size_t size,
                                    std::span<const Hash> proof) {
  if (index >= size) return std::nullopt;
  std::size_t fn = index, sn = size - 1;
  Hash r = leaf_hash(leaf);
  for (const Hash& p : proof) {
    if (sn == 0) return std::nullopt;
    if ((fn & 1) || fn == sn) {
      r = node_hash(p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return std::nullopt;
  return r;
}

}  // namespace retentiond
