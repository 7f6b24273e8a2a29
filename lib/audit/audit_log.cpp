#include "audit/audit_log.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/digest.hpp"
#include "util/files.hpp"

namespace retentiond {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kGenesis(64, '0');

std::string errno_text() { return std::strerror(errno); }

// The log's complete lines; `torn` is set when the file ends inside a line.
Result<std::vector<std::string>> read_lines(const fs::path& path, bool* torn = nullptr) {
  // A directory opens as a stream, and reading it then throws.
  if (std::error_code ec; fs::exists(path, ec) && !fs::is_regular_file(path, ec)) {
    return fail(ExitCode::no_input,
                fmt::format("cannot read the audit log {}: not a regular file", path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!fs::exists(path)) return std::vector<std::string>{};
    return fail(ExitCode::no_input, fmt::format("cannot read the audit log {}", path.string()));
  }
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < content.size()) {
    auto nl = content.find('\n', start);
    if (nl == std::string::npos) {
      if (torn) *torn = true;
      break;
    }
    lines.push_back(content.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

json chained_line(const AuditEntry& e, std::int64_t seq, const std::string& prev) {
  json line = e.to_json();
  line["seq"] = seq;
  line["prev"] = prev;
  return line;
}

// Field order as an auditor reads it; the hash does not depend on it.
std::string dump_in_order(const json& line, const std::string& hash) {
  static const char* kOrder[] = {"seq",   "time",  "rule",   "stage",    "action",      "store",
                                 "table", "as_of", "cutoff", "affected", "keys_sha256", "prev"};
  nlohmann::ordered_json out;
  for (const char* k : kOrder) {
    if (std::string_view(k) == "prev" && line.contains("policy_sha256"))
      out["policy_sha256"] = line.at("policy_sha256");
    out[k] = line.at(k);
  }
  for (const char* k : {"plan_sha256", "approved_by"}) {
    if (line.contains(k)) out[k] = line.at(k);
  }
  out["hash"] = hash;
  return out.dump();
}

}  // namespace

fs::path audit_log_path(const fs::path& state_dir) { return state_dir / "audit.jsonl"; }

json AuditEntry::to_json() const {
  json j{{"time", time},         {"rule", rule},
         {"stage", stage},       {"action", action},
         {"store", store},       {"table", table},
         {"as_of", as_of},       {"cutoff", cutoff},
         {"affected", affected}, {"keys_sha256", keys_sha256}};
  if (!policy_sha256.empty()) j["policy_sha256"] = policy_sha256;
  if (!plan_sha256.empty()) j["plan_sha256"] = plan_sha256;
  if (!approved_by.empty()) j["approved_by"] = approved_by;
  return j;
}

std::optional<AuditEntry> AuditEntry::from_json(const json& j) {
  try {
    AuditEntry e;
    e.time = j.at("time").get<std::string>();
    e.rule = j.at("rule").get<std::string>();
    e.stage = j.at("stage").get<int>();
    e.action = j.at("action").get<std::string>();
    e.store = j.at("store").get<std::string>();
    e.table = j.at("table").get<std::string>();
    e.as_of = j.at("as_of").get<std::string>();
    e.cutoff = j.at("cutoff").get<std::string>();
    e.affected = j.at("affected").get<std::int64_t>();
    e.keys_sha256 = j.at("keys_sha256").get<std::string>();
    if (j.contains("policy_sha256")) e.policy_sha256 = j.at("policy_sha256").get<std::string>();
    e.plan_sha256 = j.value("plan_sha256", "");
    e.approved_by = j.value("approved_by", "");
    return e;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::string audit_line_hash(const json& line) {
  json copy = line;
  copy.erase("hash");
  return sha256_hex(copy.dump());  // nlohmann::json sorts keys: canonical
}

Result<AuditLog> AuditLog::open(const fs::path& state_dir) {
  if (auto made = ensure_private_directory(state_dir); !made) return std::unexpected(made.error());
  AuditLog log;
  log.path_ = audit_log_path(state_dir);
  log.head_path_ = state_dir / "audit.head";
  // Opened for appending first: a log that cannot be written is exit 73
  // (cant_create), whatever else is wrong with it.
  log.fd_ = ::open(log.path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log.fd_ < 0) {
    return fail(ExitCode::cant_create,
                fmt::format("cannot write the audit log {}: {}", log.path_.string(), errno_text()));
  }
  bool torn = false;
  auto lines = read_lines(log.path_, &torn);
  if (!lines) return std::unexpected(lines.error());
  if (torn) {
    // A crash while the last line was written: that entry is still in its
    // store's outbox and is appended again by the sweep's recovery.
    std::uintmax_t keep = 0;
    for (const auto& l : *lines) keep += l.size() + 1;
    if (::ftruncate(log.fd_, static_cast<off_t>(keep)) != 0) {
      return fail(ExitCode::cant_create, fmt::format("cannot repair the audit log {}: {}",
                                                     log.path_.string(), errno_text()));
    }
    ::fsync(log.fd_);
    log.warning_ = fmt::format(
        "the audit log {} ended in a partly written line (a crash while writing it); "
        "that line was removed and its entry is written again from the store",
        log.path_.string());
  }
  log.last_hash_ = kGenesis;
  if (!lines->empty()) {
    try {
      json last = json::parse(lines->back());
      log.last_seq_ = last.at("seq").get<std::int64_t>();
      log.last_hash_ = last.at("hash").get<std::string>();
    } catch (const json::exception&) {
      return fail(ExitCode::data_error, fmt::format("the last line ({}) of the audit log {} is not "
                                                    "an audit entry; run 'retentiond audit verify'",
                                                    lines->size(), log.path_.string()));
    }
  }
  return log;
}

AuditLog::AuditLog(AuditLog&& other) noexcept
    : path_(std::move(other.path_)),
      head_path_(std::move(other.head_path_)),
      fd_(std::exchange(other.fd_, -1)),
      last_seq_(other.last_seq_),
      last_hash_(std::move(other.last_hash_)),
      warning_(std::move(other.warning_)) {}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::int64_t> AuditLog::append(const AuditEntry& entry) {
  std::int64_t seq = last_seq_ + 1;
  json line = chained_line(entry, seq, last_hash_);
  std::string hash = audit_line_hash(line);
  std::string text = dump_in_order(line, hash) + "\n";
  // One write() of the whole line: a crash leaves either nothing or a torn
  // tail that open() repairs.
  std::size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd_, text.data() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ExitCode::cant_create, fmt::format("cannot append to the audit log {}: {}",
                                                     path_.string(), errno_text()));
    }
    written += static_cast<std::size_t>(n);
  }
  last_seq_ = seq;
  last_hash_ = hash;
  return seq;
}

Result<void> AuditLog::sync() {
  if (::fsync(fd_) != 0) {
    return fail(ExitCode::cant_create,
                fmt::format("cannot sync the audit log {}: {}", path_.string(), errno_text()));
  }
  if (last_seq_ == 0) return {};
  // The head lets verify notice removed last lines. It may lag behind the log
  // after a crash, which verify accepts; it is never ahead.
  return write_file_atomically(head_path_,
                               json{{"seq", last_seq_}, {"hash", last_hash_}}.dump() + "\n", 0600);
}

std::string AuditLog::entry_key(const AuditEntry& entry) { return entry.to_json().dump(); }

Result<std::set<std::string>> AuditLog::logged_entries() const {
  auto lines = read_lines(path_);
  if (!lines) return std::unexpected(lines.error());
  std::set<std::string> keys;
  for (const auto& text : *lines) {
    try {
      if (auto entry = AuditEntry::from_json(json::parse(text))) keys.insert(entry_key(*entry));
    } catch (const json::exception&) {
      // A damaged line is verify's business; it settles nothing.
    }
  }
  return keys;
}

Result<VerifyResult> verify_audit_log(const fs::path& state_dir) {
  fs::path path = audit_log_path(state_dir);
  if (!fs::exists(path)) {
    VerifyResult result;
    if (fs::exists(state_dir / "audit.head")) {
      // Entries were written here once: a missing log was removed.
      result.ok = false;
      result.message = fmt::format(
          "{}:1: missing: the audit log is gone but {} records that entries were written",
          path.string(), (state_dir / "audit.head").string());
    }
    return result;  // no sweep has changed anything yet: an empty chain
  }
  bool torn = false;
  auto lines = read_lines(path, &torn);
  if (!lines) return std::unexpected(lines.error());
  VerifyResult result;
  std::string prev = kGenesis;
  std::int64_t line_no = 0;
  auto bad = [&](std::string why) {
    result.ok = false;
    result.message = fmt::format("{}:{}: {}", path.string(), line_no, why);
    return result;
  };
  for (const auto& text : *lines) {
    ++line_no;
    json line;
    try {
      line = json::parse(text);
    } catch (const json::exception&) {
      return bad("not a JSON audit entry (edited or damaged)");
    }
    if (!line.is_object() || !line.contains("hash") || !line["hash"].is_string() ||
        !line.contains("prev") || !line["prev"].is_string() || !line.contains("seq") ||
        !AuditEntry::from_json(line)) {
      return bad("fields are missing (edited or damaged)");
    }
    if (audit_line_hash(line) != line["hash"].get<std::string>()) {
      return bad("its content does not match its hash (the line was edited)");
    }
    if (line["prev"].get<std::string>() != prev) {
      return bad(
          "it does not follow the line before it (a line before it was removed or the lines were "
          "reordered)");
    }
    if (!line["seq"].is_number_integer() || line["seq"].get<std::int64_t>() != line_no) {
      return bad(fmt::format("its seq is {} where {} was expected (lines removed or reordered)",
                             line["seq"].dump(), line_no));
    }
    prev = line["hash"].get<std::string>();
  }
  if (torn) {
    ++line_no;
    return bad(
        "the last line is cut off (a crash while it was written; the next sweep repairs it)");
  }
  // The head, written after every append, knows how long the log was.
  std::ifstream head_in(state_dir / "audit.head");
  if (head_in) {
    try {
      json head = json::parse(head_in);
      auto seq = head.at("seq").get<std::int64_t>();
      if (seq > line_no) {
        result.ok = false;
        result.message = fmt::format(
            "{}:{}: missing: the log ends at line {} but entry {} was written (the last lines were "
            "removed)",
            path.string(), line_no + 1, line_no, seq);
        return result;
      }
      if (seq >= 1 && (*lines)[static_cast<std::size_t>(seq - 1)].find(
                          head.at("hash").get<std::string>()) == std::string::npos) {
        line_no = seq;
        return bad("it is not the entry that was written with this seq (lines were replaced)");
      }
    } catch (const json::exception&) {
      result.ok = false;
      result.message = fmt::format("{}: the head file {} is damaged", path.string(),
                                   (state_dir / "audit.head").string());
      return result;
    }
  }
  result.lines = line_no;
  return result;
}

Result<std::vector<nlohmann::ordered_json>> read_audit_log(const fs::path& state_dir,
                                                           const AuditFilter& filter) {
  auto lines = read_lines(audit_log_path(state_dir));
  if (!lines) return std::unexpected(lines.error());
  std::vector<nlohmann::ordered_json> out;
  for (const auto& text : *lines) {
    nlohmann::ordered_json line;
    try {
      line = nlohmann::ordered_json::parse(text);
    } catch (const json::exception&) {
      continue;  // `audit verify` reports damaged lines; show prints what it can read
    }
    if (filter.rule && line.value("rule", "") != *filter.rule) continue;
    if (filter.since && line.value("time", "").substr(0, 10) < *filter.since) continue;
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace retentiond
