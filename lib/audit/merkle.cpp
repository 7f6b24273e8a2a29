#include "audit/merkle.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <bit>
#include <stdexcept>

namespace retentiond {
namespace {

// SHA-256 of a prefix byte and one or two hashes.
Hash tagged_hash(unsigned char tag, const Hash& a, const Hash* b = nullptr) {
  unsigned char buffer[1 + 2 * 32];
  buffer[0] = tag;
  std::copy(a.begin(), a.end(), buffer + 1);
  std::size_t n = 1 + 32;
  if (b) {
    std::copy(b->begin(), b->end(), buffer + n);
    n += 32;
  }
  Hash out{};
  unsigned int len = 0;
  if (EVP_Digest(buffer, n, out.data(), &len, EVP_sha256(), nullptr) != 1 || len != out.size())
    throw std::runtime_error("OpenSSL SHA-256 failed");
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

KeyHasher::KeyHasher(std::string_view secret) : ctx_(nullptr, EVP_MAC_CTX_free) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!mac) throw std::runtime_error("OpenSSL has no HMAC");
  ctx_.reset(EVP_MAC_CTX_new(mac));
  EVP_MAC_free(mac);  // the context keeps its own reference
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  // HMAC refuses an empty key; the secret of an installation never is.
  static const unsigned char kNoSecret = 0;
  const auto* key =
      secret.empty() ? &kNoSecret : reinterpret_cast<const unsigned char*>(secret.data());
  if (!ctx_ || EVP_MAC_init(ctx_.get(), key, secret.empty() ? 1 : secret.size(), params) != 1)
    throw std::runtime_error("OpenSSL HMAC-SHA256 init failed");
}

Hash KeyHasher::operator()(std::string_view key) {
  Hash out{};
  std::size_t len = 0;
  // A null key re-initialises with the key given first, without hashing it again.
  if (EVP_MAC_init(ctx_.get(), nullptr, 0, nullptr) != 1 ||
      EVP_MAC_update(ctx_.get(), reinterpret_cast<const unsigned char*>(key.data()), key.size()) !=
          1 ||
      EVP_MAC_final(ctx_.get(), out.data(), &len, out.size()) != 1 || len != out.size())
    throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
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
