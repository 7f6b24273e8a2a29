#include "audit/receipts.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include "audit/audit_log.hpp"
#include "util/files.hpp"

namespace retentiond {
namespace fs = std::filesystem;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

namespace {

constexpr std::size_t kSecretBytes = 32;
constexpr int kReceiptVersion = 1;

fs::path secret_path(const fs::path& state_dir) { return state_dir / "receipt.key"; }
fs::path leaves_dir(const fs::path& state_dir) { return state_dir / "receipts"; }

// The sorted leaves of the tree with `root`; nullopt when not kept.
Result<std::optional<std::vector<Hash>>> load_leaves(const fs::path& state_dir, const Hash& root) {
  fs::path file = leaves_dir(state_dir) / to_hex(root);
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::optional<std::vector<Hash>>{};
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty() || bytes.size() % 32 != 0) {
    return fail(ExitCode::data_error,
                fmt::format("{} is damaged: {} bytes, not a list of 32-byte leaves", file.string(),
                            bytes.size()));
  }
  std::vector<Hash> leaves(bytes.size() / 32);
  for (std::size_t i = 0; i < leaves.size(); ++i)
    std::copy_n(bytes.data() + 32 * i, 32, leaves[i].data());
  return std::optional<std::vector<Hash>>{std::move(leaves)};
}

std::string action_done(const std::string& action) {
  if (action == "delete") return "deleted";
  if (action == "archive") return "archived";
  if (action == "anonymize") return "anonymised";
  return action;
}

}  // namespace

Result<std::optional<std::string>> receipt_secret(const fs::path& state_dir, bool create) {
  fs::path file = secret_path(state_dir);
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return fail(ExitCode::cant_create,
                  fmt::format("{}: {}", file.string(), std::strerror(errno)));
    }
    if (!create) return std::optional<std::string>{};
    std::string secret(kSecretBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), kSecretBytes) != 1) {
      return fail(ExitCode::software, "OpenSSL could not make random bytes for receipt.key");
    }
    if (auto written = write_file_atomically(file, secret, 0600); !written)
      return std::unexpected(written.error());
    return std::optional<std::string>{std::move(secret)};
  }
  if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
    return fail(ExitCode::cant_create,
                fmt::format("{} must be a regular file that only its owner can read (chmod 600); "
                            "it is the secret that keeps keys out of the receipts' leaves",
                            file.string()));
  }
  std::ifstream in(file, std::ios::binary);
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.eof() && in.fail()) {
    return fail(ExitCode::cant_create, fmt::format("{}: cannot be read", file.string()));
  }
  if (secret.size() < kSecretBytes) {
    return fail(ExitCode::cant_create,
                fmt::format("{} holds {} bytes, at least {} expected (damaged?); the receipts of "
                            "entries made under it cannot be checked without it",
                            file.string(), secret.size(), kSecretBytes));
  }
  return std::optional<std::string>{std::move(secret)};
}

Result<ReceiptLeaves> ReceiptLeaves::open(const fs::path& state_dir) {
  ReceiptLeaves r;
  r.dir_ = leaves_dir(state_dir);
  if (auto made = ensure_private_directory(r.dir_); !made) return std::unexpected(made.error());
  auto secret = receipt_secret(state_dir, true);
  if (!secret) return std::unexpected(secret.error());
  r.secret_ = std::move(**secret);
  return r;
}

void ReceiptLeaves::save(const Hash& root, std::span<const Hash> sorted_leaves) const {
  fs::path file = dir_ / to_hex(root);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error(
        fmt::format("cannot write the receipt leaves {}: {}", file.string(), std::strerror(errno)));
  }
  const char* data = reinterpret_cast<const char*>(sorted_leaves.data());
  std::size_t left = sorted_leaves.size_bytes();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      throw std::runtime_error(
          fmt::format("cannot write the receipt leaves {}: {}", file.string(), std::strerror(err)));
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  ::close(fd);
}

Result<void> ReceiptLeaves::sync() const {
  int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  // One syncfs for every leaves file of the stage, rather than one fsync each.
  if (fd < 0 || ::syncfs(fd) != 0) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    return fail(ExitCode::cant_create, fmt::format("cannot sync the receipt leaves in {}: {}",
                                                   dir_.string(), std::strerror(err)));
  }
  ::close(fd);
  return {};
}

Result<RecordSearch> find_record(const fs::path& state_dir, const RecordQuery& query) {
  RecordSearch search;
  auto secret = receipt_secret(state_dir, false);
  if (!secret) return std::unexpected(secret.error());
  auto lines = read_audit_log(state_dir, AuditFilter{query.rule, std::nullopt});
  if (!lines) return std::unexpected(lines.error());
  if (*secret) search.leaf = KeyHasher(**secret)(query.key);
  for (auto& line : *lines) {
    if (query.store && line.value("store", "") != *query.store) continue;
    ++search.entries_searched;
    auto seq = line.value("seq", std::int64_t{0});
    auto root = hash_from_hex(line.value("keys_sha256", ""));
    std::optional<std::vector<Hash>> leaves;
    if (root && *secret) {
      auto loaded = load_leaves(state_dir, *root);
      if (!loaded) return std::unexpected(loaded.error());
      leaves = std::move(*loaded);
    }
    if (!leaves || merkle_root(*leaves) != *root) {
      // Not kept, or kept for another tree: this entry cannot be searched.
      search.entries_without_leaves.push_back(seq);
      continue;
    }
    auto it = std::lower_bound(leaves->begin(), leaves->end(), search.leaf);
    if (it == leaves->end() || *it != search.leaf) continue;
    RecordProof p;
    p.index = static_cast<std::size_t>(it - leaves->begin());
    p.size = leaves->size();
    p.proof = inclusion_proof(*leaves, p.index);
    p.line = std::move(line);
    search.found.push_back(std::move(p));
  }
  return search;
}

ordered_json receipt_json(const RecordQuery& query, const RecordSearch& search) {
  ordered_json j;
  j["receipt"] = "retentiond erasure receipt";
  j["version"] = kReceiptVersion;
  j["rule"] = query.rule;
  j["key"] = query.key;
  if (query.store) j["store"] = *query.store;
  j["found"] = !search.found.empty();
  j["leaf"] = to_hex(search.leaf);
  j["entries"] = ordered_json::array();
  for (const auto& p : search.found) {
    ordered_json e;
    e["entry"] = p.line;
    e["leaf_index"] = p.index;
    e["tree_size"] = p.size;
    e["proof"] = ordered_json::array();
    for (const auto& h : p.proof) e["proof"].push_back(to_hex(h));
    j["entries"].push_back(std::move(e));
  }
  j["entries_searched"] = search.entries_searched;
  j["entries_without_leaves"] = search.entries_without_leaves;
  return j;
}

Result<ReceiptCheck> check_receipt(const fs::path& state_dir, const json& receipt) {
  auto bad = [](std::string message) -> Result<ReceiptCheck> {
    return ReceiptCheck{false, std::move(message)};
  };
  std::string rule, key;
  Hash leaf{};
  try {
    if (receipt.at("receipt").get<std::string>() != "retentiond erasure receipt" ||
        receipt.at("version").get<int>() != kReceiptVersion) {
      return bad("not a retentiond erasure receipt of version 1");
    }
    rule = receipt.at("rule").get<std::string>();
    key = receipt.at("key").get<std::string>();
    auto parsed = hash_from_hex(receipt.at("leaf").get<std::string>());
    if (!parsed) return bad("its leaf is not 64 hex digits");
    leaf = *parsed;
    if (!receipt.at("entries").is_array() || receipt.at("entries").empty()) {
      return bad("it names no audit entry: it proves nothing (audit find found no entry)");
    }
  } catch (const json::exception& e) {
    return bad(fmt::format("a field is missing or of the wrong type ({})", e.what()));
  }

  // The key and the leaf: only the installation's secret ties them.
  auto secret = receipt_secret(state_dir, false);
  if (!secret) return std::unexpected(secret.error());
  if (!*secret) {
    return bad(fmt::format("{} does not exist: no receipt was ever made here",
                           secret_path(state_dir).string()));
  }
  if (KeyHasher(**secret)(key) != leaf) {
    return bad(fmt::format("its leaf is not key '{}' under this installation's secret", key));
  }

  // The log, whole and unbroken, and each entry the receipt quotes.
  auto verified = verify_audit_log(state_dir);
  if (!verified) return std::unexpected(verified.error());
  if (!verified->ok) return bad("the audit log itself is broken: " + verified->message);
  auto lines = read_audit_log(state_dir, AuditFilter{});
  if (!lines) return std::unexpected(lines.error());

  std::vector<std::string> proven;
  for (const auto& item : receipt.at("entries")) {
    try {
      const json& line = item.at("entry");
      auto seq = line.at("seq").get<std::int64_t>();
      std::string where = fmt::format("entry seq {}", seq);
      if (audit_line_hash(line) != line.at("hash").get<std::string>())
        return bad(where + ": its content does not match its hash (edited)");
      if (seq < 1 || seq > static_cast<std::int64_t>(lines->size()) ||
          json((*lines)[static_cast<std::size_t>(seq - 1)]) != line) {
        return bad(where + ": it is not the line of that seq in " +
                   audit_log_path(state_dir).string());
      }
      if (line.at("rule").get<std::string>() != rule)
        return bad(where + ": it is an entry of another rule");
      auto root = hash_from_hex(line.at("keys_sha256").get<std::string>());
      std::vector<Hash> proof;
      for (const auto& h : item.at("proof")) {
        auto parsed = hash_from_hex(h.get<std::string>());
        if (!parsed) return bad(where + ": a proof hash is not 64 hex digits");
        proof.push_back(*parsed);
      }
      auto got = root_from_proof(leaf, item.at("leaf_index").get<std::size_t>(),
                                 item.at("tree_size").get<std::size_t>(), proof);
      if (!root || !got || *got != *root) {
        return bad(where + ": the proof does not lead from the leaf to the entry's keys_sha256");
      }
      proven.push_back(fmt::format("{} on {} (seq {})",
                                   action_done(line.at("action").get<std::string>()),
                                   line.at("time").get<std::string>(), seq));
    } catch (const json::exception& e) {
      return bad(
          fmt::format("an entry is missing a field or has one of the wrong type ({})", e.what()));
    }
  }
  return ReceiptCheck{
      true, fmt::format("receipt valid: key '{}' of rule '{}' was {}; {} holds {} entries, hash "
                        "chain intact",
                        key, rule, fmt::join(proven, ", then "), audit_log_path(state_dir).string(),
                        verified->lines)};
}

}  // namespace retentiond
