// YAML -> Policy. Every problem becomes one line "FILE:LINE:COLUMN: what is
// wrong; what is accepted", because an administrator fixing a policy at 3 a.m.
// must be able to jump straight to it. Unknown keys are errors: a typo such
// as `keep_fro` must never silently keep data forever.
#include <fmt/format.h>
#include <sys/stat.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

#include "policy/conninfo.hpp"
#include "policy/policy.hpp"
#include "time/calendar.hpp"
#include "time/duration.hpp"
#include "util/digest.hpp"
#include "util/glob.hpp"

namespace retentiond {
namespace {

namespace fs = std::filesystem;

// A policy file larger than this is not a policy (and YAML parsing of it
// would eat memory): refuse before parsing.
constexpr std::uintmax_t kMaxPolicyBytes = 1024 * 1024;
constexpr int kMaxBatchSize = 1'000'000;
// Longer would lock the application out for longer than its busy timeout.
constexpr std::chrono::milliseconds kMaxTransaction = std::chrono::minutes{1};
constexpr int kMaxCacheMib = 4096;
constexpr std::chrono::minutes kMaxBusyTimeout{10};
constexpr std::size_t kMinKeyBytes = 32;

struct LoadError {
  SourceLocation at;
  std::string message;
};

SourceLocation location_of(const YAML::Node& node) {
  auto mark = node.Mark();
  return {mark.line + 1, mark.column + 1};
}

[[noreturn]] void error_at(const YAML::Node& node, std::string message) {
  throw LoadError{location_of(node), std::move(message)};
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return fmt::format("'{}'", node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

// Checks that `map` is a mapping whose keys are all in `allowed` and none is
// repeated (yaml-cpp keeps duplicates; the second would silently win).
void expect_keys(const YAML::Node& map, std::string_view what,
                 std::initializer_list<std::string_view> allowed) {
  if (!map.IsMap())
    error_at(map, fmt::format("{} must be a mapping, found {}", what, describe(map)));
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    YAML::Node key = it->first;
    if (!key.IsScalar()) error_at(key, fmt::format("{} has a key that is not a plain name", what));
    const std::string& k = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      error_at(key, fmt::format("unknown key '{}' in {}; accepted keys: {}", k, what,
                                fmt::join(allowed, ", ")));
    }
    if (!seen.insert(k).second) error_at(key, fmt::format("key '{}' appears twice in {}", k, what));
  }
}

// Finds the key node itself, to point messages at the key when the value is absent.
YAML::Node key_node(const YAML::Node& map, std::string_view key) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return it->first;
  }
  return map;
}

YAML::Node require(const YAML::Node& map, std::string_view key, std::string_view what) {
  YAML::Node value = map[std::string(key)];
  if (!value) error_at(map, fmt::format("{} has no '{}'", what, key));
  return value;
}

std::string text(const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar())
    error_at(node, fmt::format("{} must be text, found {}", what, describe(node)));
  return node.Scalar();
}

std::string identifier(const YAML::Node& node, std::string_view what) {
  std::string name = text(node, what);
  if (!is_plain_identifier(name)) {
    error_at(node, fmt::format("{} '{}' is not a plain SQL identifier; accepted: letters, digits "
                               "and '_', not starting with a digit, at most 63 characters",
                               what, name));
  }
  return name;
}

Period period(const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar())
    error_at(node, fmt::format("{} must be a period, found {}", what, describe(node)));
  auto parsed = parse_period(node.Scalar());
  if (!parsed) error_at(node, parsed.error());
  return *parsed;
}

std::int64_t integer(const YAML::Node& node, std::string_view what) {
  std::string s = text(node, what);
  std::int64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    error_at(node, fmt::format("{} must be a whole number, found '{}'", what, s));
  }
  return n;
}

// A duration setting from 1 ms to `max` (written `max_text` in the message),
// with examples of what is accepted.
std::chrono::milliseconds duration(const YAML::Node& node, std::string_view what,
                                   std::chrono::milliseconds max, std::string_view max_text,
                                   std::string_view examples) {
  auto d = parse_duration(text(node, what));
  if (!d || *d > max) {
    error_at(node, fmt::format("{} must be a duration from 1 ms to {}; accepted: {}", what,
                               max_text, examples));
  }
  return *d;
}

// A YAML scalar as a database value: quoted text stays text; plain scalars
// that read as numbers or booleans become numbers (SQLite stores booleans as 0/1).
Scalar scalar(const YAML::Node& node, std::string_view what) {
  if (node.IsNull()) return std::monostate{};
  std::string s = text(node, what);
  if (node.Tag() == "!") return s;  // quoted
  std::int64_t n = 0;
  if (auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      ec == std::errc() && ptr == s.data() + s.size()) {
    return n;
  }
  double d = 0;
  if (auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      ec == std::errc() && ptr == s.data() + s.size()) {
    return d;
  }
  if (s == "true" || s == "True" || s == "TRUE") return std::int64_t{1};
  if (s == "false" || s == "False" || s == "FALSE") return std::int64_t{0};
  return s;
}

fs::path resolve(const fs::path& base_dir, const std::string& p) {
  fs::path path(p);
  return path.is_absolute() ? path : (base_dir / path).lexically_normal();
}

// A folder's path without "." and ".." steps or a trailing '/', for comparisons.
fs::path normal_folder(const fs::path& p) {
  fs::path n = p.lexically_normal();
  if (!n.has_filename() && n.has_relative_path()) n = n.parent_path();
  return n;
}

// Whether folder `inner` is `outer` or lies below it, as written.
bool folder_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

StoreSpec load_store(const std::string& name, const YAML::Node& node, const fs::path& base_dir) {
  StoreSpec store;
  store.name = name;
  store.location = location_of(node);
  if (!node.IsMap()) error_at(node, fmt::format("store '{}' must be a mapping with 'kind'", name));
  std::string kind = text(require(node, "kind", fmt::format("store '{}'", name)), "kind");
  std::string what = fmt::format("store '{}'", name);
  if (kind == "sqlite") {
    expect_keys(node, what, {"kind", "path"});
    store.kind = StoreKind::sqlite;
    store.path = resolve(base_dir, text(require(node, "path", what), "path"));
  } else if (kind == "postgresql") {
    expect_keys(node, what, {"kind", "dsn", "schema"});
    store.kind = StoreKind::postgresql;
    YAML::Node dsn = require(node, "dsn", what);
    store.dsn = text(dsn, "dsn");
    // The connection string is never echoed: it may carry a password.
    auto parsed = check_conninfo(store.dsn);
    if (parsed.error) {
      error_at(dsn, fmt::format("{}: dsn is not a libpq connection string or URI ({}); accepted: "
                                "\"host=... dbname=... user=...\" or postgresql://user@host/db",
                                what, *parsed.error));
    }
    if (parsed.has_password) {
      error_at(dsn, fmt::format("{}: dsn carries a password, which a policy file must not hold; "
                                "accepted: a passfile (~/.pgpass, PGPASSFILE or passfile=PATH in "
                                "the dsn, mode 0600), a service file, or systemd's "
                                "LoadCredential= for the passfile",
                                what));
    }
    store.schema = node["schema"] ? identifier(node["schema"], "schema") : "public";
  } else if (kind == "files") {
    // The pattern belongs to each rule: one tree may hold files of several rules.
    expect_keys(node, what, {"kind", "root"});
    store.kind = StoreKind::files;
    YAML::Node root = require(node, "root", what);
    std::string root_text = text(root, "root");
    if (root_text.empty())
      error_at(root, fmt::format("{}: root is empty; accepted: a folder", what));
    store.root = normal_folder(resolve(base_dir, root_text));
    if (store.root == store.root.root_path()) {
      error_at(root, fmt::format("{}: root '{}' is the filesystem's root; accepted: the folder "
                                 "that holds the store's files",
                                 what, store.root.string()));
    }
  } else {
    error_at(node["kind"],
             fmt::format("unknown store kind '{}'; accepted: sqlite, postgresql, files", kind));
  }
  return store;
}

Action action(const YAML::Node& node) {
  std::string a = text(node, "action");
  if (a == "delete") return Action::erase;
  if (a == "archive") return Action::archive;
  if (a == "anonymize" || a == "anonymise") return Action::anonymize;
  error_at(node, fmt::format("unknown action '{}'; accepted: delete, archive, anonymize", a));
}

AnonymizeMethod method(const YAML::Node& node, const std::string& column) {
  using K = AnonymizeMethod::Kind;
  constexpr std::string_view kAccepted =
      "accepted: \"null\", hmac, year, month, { value: X }, { truncate: N }";
  AnonymizeMethod m;
  if (node.IsNull()) return m;  // an unquoted null means the same as "null"
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    if (s == "null")
      m.kind = K::null;
    else if (s == "hmac")
      m.kind = K::hmac;
    else if (s == "year")
      m.kind = K::year;
    else if (s == "month")
      m.kind = K::month;
    else
      error_at(node, fmt::format("unknown anonymisation method '{}' for column '{}'; {}", s, column,
                                 kAccepted));
    return m;
  }
  if (node.IsMap() && node.size() == 1) {
    std::string name = node.begin()->first.as<std::string>();
    // A copy: the iterator's proxy, and so any reference into it, dies with the statement.
    const YAML::Node arg = node.begin()->second;
    if (name == "value") {
      m.kind = K::value;
      m.value = scalar(arg, "value");
      return m;
    }
    if (name == "truncate") {
      std::int64_t n = integer(arg, "truncate");
      if (n < 0 || n > 1'000'000)
        error_at(arg, "truncate must keep between 0 and 1000000 characters");
      m.kind = K::truncate;
      m.truncate = static_cast<int>(n);
      return m;
    }
    error_at(node.begin()->first,
             fmt::format("unknown anonymisation method '{}' for column '{}'; {}", name, column,
                         kAccepted));
  }
  error_at(node, fmt::format("anonymisation method for column '{}' must be one of: {}", column,
                             kAccepted));
}

Anonymization anonymization(const YAML::Node& node) {
  if (!node.IsMap()) error_at(node, "anonymize must be a mapping of column: method");
  Anonymization a;
  std::set<std::string> seen;
  YAML::Node mark_key;
  std::optional<YAML::Node> first_hmac;  // where to point when the mark is missing
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string column = identifier(it->first, "column");
    if (!seen.insert(column).second)
      error_at(it->first, fmt::format("column '{}' appears twice in anonymize", column));
    if (column == "mark") {
      a.mark = identifier(it->second, "mark column");
      mark_key = it->first;
      continue;
    }
    a.columns.push_back({column, method(it->second, column)});
    if (a.columns.back().method.kind == AnonymizeMethod::Kind::hmac && !first_hmac)
      first_hmac.emplace(it->second);
  }
  if (a.columns.empty()) error_at(node, "anonymize names no column to anonymise");
  if (first_hmac && !a.mark) {
    error_at(*first_hmac,
             "the hmac method needs 'mark: COLUMN' in the same anonymize block (hmac is not "
             "idempotent: without a mark a second sweep would code the code)");
  }
  if (a.mark) {
    for (const auto& c : a.columns) {
      if (c.column == *a.mark)
        error_at(mark_key, fmt::format("the mark column '{}' is also anonymised", c.column));
    }
  }
  return a;
}

std::vector<WhereCondition> where(const YAML::Node& node) {
  if (!node.IsMap()) error_at(node, "where must be a mapping of column: value or column: [values]");
  std::vector<WhereCondition> out;
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    WhereCondition c;
    c.column = identifier(it->first, "where column");
    if (!seen.insert(c.column).second)
      error_at(it->first, fmt::format("column '{}' appears twice in where", c.column));
    // A copy: ranging over it->second directly would use the iterator's
    // proxy after its lifetime ended (caught by AddressSanitizer).
    const YAML::Node value = it->second;
    if (value.IsSequence()) {
      if (value.size() == 0) error_at(value, "an empty list in where would select nothing");
      for (const auto& v : value) c.values.push_back(scalar(v, "where value"));
    } else {
      c.values.push_back(scalar(value, "where value"));
    }
    out.push_back(std::move(c));
  }
  return out;
}

Hold hold(const YAML::Node& node) {
  if (node.IsMap() && (node["file"] || node["list"])) {
    error_at(node,
             "hold { file: NAME } and { list: PATH } go with rules on files stores; accepted on a "
             "table: { column: C } or { table: T, key: K }");
  }
  if (node.IsMap() && node["column"]) {
    expect_keys(node, "hold", {"column"});
    return HoldByColumn{identifier(node["column"], "hold column")};
  }
  if (node.IsMap() && node["table"]) {
    expect_keys(node, "hold", {"table", "key"});
    return HoldByTable{identifier(node["table"], "hold table"),
                       identifier(require(node, "key", "hold"), "hold key")};
  }
  error_at(node, "hold must be { column: C } or { table: T, key: K }");
}

// Stage periods must grow: compared on the calendar over four years of
// anchors, since "1 month" and "30 days" are not comparable in general.
bool always_later(const Period& later, const Period& earlier) {
  using namespace date;
  Day start = sys_days{2000_y / January / 1};
  for (Day d = start; d < start + days{4 * 366}; d += days{1}) {
    if (expiry_of(d, later) <= expiry_of(d, earlier)) return false;
  }
  return true;
}

class Loader {
 public:
  Loader(fs::path file, const LoadOptions& options) : file_(std::move(file)), options_(options) {}

  Policy load(const std::string& bytes) {
    Policy p;
    p.file = file_;
    p.sha256 = sha256_hex(bytes);
    YAML::Node root = YAML::Load(bytes);
    if (!root.IsMap()) error_at(root, "a policy must be a mapping with timezone, stores and rules");
    expect_keys(root, "the policy",
                {"version", "timezone", "schedule", "batch_size", "max_transaction", "busy_timeout",
                 "cache_mib", "hmac_key_file", "metrics_file", "approval", "require_approval",
                 "stores", "rules"});
    if (auto v = root["version"]) {
      if (integer(v, "version") != 1) error_at(v, "unsupported version; accepted: 1");
    }
    YAML::Node tz = require(root, "timezone", "the policy");
    p.timezone = text(tz, "timezone");
    try {
      p.zone = date::locate_zone(p.timezone);
    } catch (const std::exception&) {
      error_at(tz, fmt::format(
                       "unknown time zone '{}'; accepted: an IANA zone such as Europe/Paris or UTC",
                       p.timezone));
    }
    if (auto s = root["schedule"]) {
      auto parsed = parse_schedule(text(s, "schedule"));
      if (!parsed) error_at(s, parsed.error());
      p.schedule = *parsed;
    }
    if (auto b = root["batch_size"]) {
      auto n = integer(b, "batch_size");
      if (n < 1 || n > kMaxBatchSize)
        error_at(b, fmt::format("batch_size must be between 1 and {}", kMaxBatchSize));
      p.batch_size = static_cast<int>(n);
    }
    if (auto m = root["max_transaction"]) {
      p.max_transaction =
          duration(m, "max_transaction", kMaxTransaction, "1 min", "20ms, 50ms, 1s");
    }
    if (auto b = root["busy_timeout"]) {
      p.busy_timeout = duration(b, "busy_timeout", kMaxBusyTimeout, "10 min", "500ms, 5s, 2 min");
    }
    if (auto c = root["cache_mib"]) {
      auto n = integer(c, "cache_mib");
      if (n < 1 || n > kMaxCacheMib)
        error_at(c, fmt::format(
                        "cache_mib must be between 1 and {} (MiB of SQLite page cache per store)",
                        kMaxCacheMib));
      p.cache_mib = static_cast<int>(n);
    }
    if (auto m = root["metrics_file"])
      p.metrics_file = resolve(base_dir(), text(m, "metrics_file"));

    load_approval(root, p);

    YAML::Node stores = require(root, "stores", "the policy");
    // An empty policy (no stores, no rules) is valid and acts on nothing: the
    // packaged example is one, until the administrator edits it.
    if (!stores.IsMap() && !(stores.IsSequence() && stores.size() == 0)) {
      error_at(stores, "stores must be a mapping of name: { kind: ..., ... }");
    }
    for (auto it = stores.begin(); it != stores.end(); ++it) {
      std::string name = text(it->first, "store name");
      if (p.find_store(name)) error_at(it->first, fmt::format("store '{}' is defined twice", name));
      p.stores.push_back(load_store(name, it->second, base_dir()));
    }

    YAML::Node rules = require(root, "rules", "the policy");
    if (!rules.IsSequence()) error_at(rules, "rules must be a list of rules");
    for (const auto& r : rules) {
      Rule rule = load_rule(r, p);
      if (p.find_rule(rule.name))
        error_at(r["name"],
                 fmt::format("rule name '{}' is used twice; names must be unique", rule.name));
      p.rules.push_back(std::move(rule));
    }

    bool uses_hmac = false;
    for (const auto& rule : p.rules) {
      if (!rule.anonymize) continue;
      for (const auto& c : rule.anonymize->columns)
        uses_hmac |= c.method.kind == AnonymizeMethod::Kind::hmac;
    }
    YAML::Node key_file = root["hmac_key_file"];
    if (key_file) p.hmac_key_file = resolve(base_dir(), text(key_file, "hmac_key_file"));
    if (uses_hmac) {
      if (!key_file && !credential_key()) {
        error_at(root, "a rule uses the hmac method but the policy has no hmac_key_file");
      }
      p.hmac_key = read_key(key_file, p.hmac_key_file);
    }
    return p;
  }

 private:
  void load_approval(const YAML::Node& root, Policy& p) const {
    if (auto a = root["approval"]) {
      expect_keys(a, "approval", {"allowed_signers", "max_age", "tolerance"});
      ApprovalSettings settings;
      settings.allowed_signers =
          resolve(base_dir(), text(require(a, "allowed_signers", "approval"), "allowed_signers"));
      if (auto m = a["max_age"]) settings.max_age = period(m, "max_age");
      if (auto t = a["tolerance"]) {
        settings.tolerance = integer(t, "tolerance");
        if (settings.tolerance < 0)
          error_at(t, "tolerance must be 0 or more (records a stage may match beyond the plan)");
      }
      p.approval = settings;
    }
    if (auto r = root["require_approval"]) {
      std::string v = text(r, "require_approval");
      if (v != "true" && v != "false")
        error_at(r, fmt::format("require_approval must be true or false, found '{}'", v));
      p.require_approval = v == "true";
      if (p.require_approval && !p.approval) {
        error_at(r,
                 "require_approval: true needs approval: { allowed_signers: FILE } to check "
                 "plans against");
      }
    }
  }

  fs::path base_dir() const {
    if (options_.base_dir) return *options_.base_dir;
    return file_.parent_path().empty() ? fs::path(".") : file_.parent_path();
  }

  std::optional<fs::path> credential_key() const {
    if (!options_.credentials_directory) return std::nullopt;
    fs::path candidate = *options_.credentials_directory / "hmac-key";
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate;
    return std::nullopt;
  }

  std::string read_key(const YAML::Node& node, const std::optional<fs::path>& configured) const {
    // systemd's LoadCredential= hands the key over in $CREDENTIALS_DIRECTORY;
    // it wins over the path in the policy, which the service cannot read.
    auto from_credentials = credential_key();
    fs::path path = from_credentials ? *from_credentials : *configured;
    auto fail_key = [&](std::string why) -> void {
      if (node) error_at(node, why);
      throw LoadError{{1, 1}, std::move(why)};
    };
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      fail_key(
          fmt::format("hmac key file '{}' does not exist or cannot be reached; accepted: a file of "
                      "at least {} bytes, mode 0600 or 0400",
                      path.string(), kMinKeyBytes));
    }
    if (!S_ISREG(st.st_mode))
      fail_key(fmt::format("hmac key file '{}' is not a regular file", path.string()));
    if (!from_credentials && (st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)) != 0) {
      fail_key(fmt::format(
          "hmac key file '{}' is accessible by group or others (mode {:04o}); run chmod 600 on it",
          path.string(), st.st_mode & 07777));
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) fail_key(fmt::format("hmac key file '{}' cannot be read", path.string()));
    std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (key.size() < kMinKeyBytes) {
      fail_key(
          fmt::format("hmac key file '{}' holds {} bytes; accepted: at least {} bytes (e.g. head "
                      "-c 32 /dev/urandom)",
                      path.string(), key.size(), kMinKeyBytes));
    }
    return key;
  }

  Rule load_rule(const YAML::Node& node, const Policy& p) const {
    expect_keys(node, "a rule",
                {"name", "category", "basis", "store", "table", "key", "anchor", "anchor_format",
                 "where", "hold", "keep_for", "action", "to", "stages", "anonymize", "pattern",
                 "remove_empty_folders"});
    Rule r;
    r.location = location_of(node);
    YAML::Node name = require(node, "name", "a rule");
    r.name = text(name, "rule name");
    bool name_ok = !r.name.empty() && std::all_of(r.name.begin(), r.name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    });
    if (!name_ok)
      error_at(name,
               fmt::format(
                   "rule name '{}' is not accepted; accepted: lower-case letters, digits and '-'",
                   r.name));
    std::string what = fmt::format("rule '{}'", r.name);
    if (auto c = node["category"]) r.category = text(c, "category");
    if (auto b = node["basis"]) r.basis = text(b, "basis");
    YAML::Node store = require(node, "store", what);
    r.store = text(store, "store");
    const StoreSpec* spec = p.find_store(r.store);
    if (!spec)
      error_at(store, fmt::format("{} names store '{}', which is not defined under stores", what,
                                  r.store));
    if (spec->kind == StoreKind::files) {
      load_file_selection(node, r, what);
    } else {
      load_table_selection(node, r, what);
    }
    load_stages(node, p, r, what);
    return r;
  }

  // A rule on a files store: `pattern` instead of table, key and where.
  void load_file_selection(const YAML::Node& node, Rule& r, const std::string& what) const {
    for (const char* key : {"table", "key", "where", "anchor_format"}) {
      if (node[key]) {
        error_at(key_node(node, key),
                 fmt::format("{}: '{}' goes with tables, but store '{}' is of kind files; "
                             "accepted: pattern, anchor (mtime or name), hold ({{ file: NAME }} "
                             "or {{ list: PATH }}), remove_empty_folders",
                             what, key, r.store));
      }
    }
    if (node["anonymize"]) {
      error_at(key_node(node, "anonymize"),
               fmt::format("{}: files cannot be anonymised (store '{}' is of kind files); "
                           "accepted actions: delete, archive",
                           what, r.store));
    }
    FileSelection files;
    YAML::Node pattern = node["pattern"];
    if (!pattern) {
      error_at(key_node(node, "name"),
               fmt::format("{} has no 'pattern': the glob, relative to the root of store '{}', "
                           "of the files it acts on (such as \"*/identity-*.pdf\")",
                           what, r.store));
    }
    files.pattern = text(pattern, "pattern");
    if (auto glob = Glob::compile(files.pattern); !glob)
      error_at(pattern, fmt::format("{}: {}", what, glob.error()));
    YAML::Node anchor = node["anchor"];
    if (!anchor) {
      error_at(key_node(node, "name"),
               fmt::format("{} has no 'anchor'; accepted: mtime (the file's modification time) "
                           "or name (a date written in its path)",
                           what));
    }
    std::string anchor_name = text(anchor, "anchor");
    if (anchor_name == "mtime") {
      files.anchor = FileAnchor::mtime;
    } else if (anchor_name == "name") {
      files.anchor = FileAnchor::name;
    } else {
      error_at(anchor, fmt::format("unknown anchor '{}' for files; accepted: mtime (the file's "
                                   "modification time) or name (a date written in its path)",
                                   anchor_name));
    }
    if (auto h = node["hold"]) files.hold = file_hold(h);
    if (auto e = node["remove_empty_folders"]) {
      std::string v = text(e, "remove_empty_folders");
      if (v == "true" || v == "True" || v == "TRUE") {
        files.remove_empty_folders = true;
      } else if (!(v == "false" || v == "False" || v == "FALSE")) {
        error_at(e, fmt::format("remove_empty_folders must be true or false, found '{}'", v));
      }
    }
    // Reports and the audit log show the pattern where a table rule shows its table.
    r.table = files.pattern;
    r.anchor = std::string(to_string(files.anchor));
    r.files = std::move(files);
  }

  FileHold file_hold(const YAML::Node& node) const {
    constexpr std::string_view kAccepted =
        "accepted: { file: NAME } (a file of that name in the file's folder or one above it) or "
        "{ list: PATH } (a list of relative paths or globs, one a line)";
    if (node.IsMap() && node["file"]) {
      expect_keys(node, "hold", {"file"});
      YAML::Node n = node["file"];
      std::string name = text(n, "hold file");
      if (name.empty() || name == "." || name == ".." ||
          name.find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
        error_at(n, fmt::format("hold file '{}' is not a file name; accepted: a name without "
                                "'/', such as .hold",
                                name));
      }
      return HoldByFile{name};
    }
    if (node.IsMap() && node["list"]) {
      expect_keys(node, "hold", {"list"});
      YAML::Node n = node["list"];
      std::string list = text(n, "hold list");
      if (list.empty()) error_at(n, fmt::format("hold list is empty; {}", kAccepted));
      return HoldByList{resolve(base_dir(), list)};
    }
    if (node.IsMap() && (node["column"] || node["table"])) {
      error_at(node, fmt::format("hold {{ column }} and {{ table, key }} go with tables; on a "
                                 "files store, {}",
                                 kAccepted));
    }
    error_at(node, fmt::format("hold on a files store is not understood; {}", kAccepted));
  }

  // A rule on a table (SQLite, PostgreSQL).
  void load_table_selection(const YAML::Node& node, Rule& r, const std::string& what) const {
    for (const char* key : {"pattern", "remove_empty_folders"}) {
      if (node[key]) {
        error_at(key_node(node, key),
                 fmt::format("{}: '{}' goes with files stores, but store '{}' holds tables; "
                             "accepted: table, key, anchor, anchor_format, where, hold",
                             what, key, r.store));
      }
    }
    r.table = identifier(require(node, "table", what), "table");
    r.key = identifier(require(node, "key", what), "key");
    YAML::Node anchor = node["anchor"];
    if (!anchor)
      error_at(key_node(node, "name"),
               fmt::format("{} has no 'anchor': the column its period counts from", what));
    r.anchor = identifier(anchor, "anchor");
    if (auto f = node["anchor_format"]) {
      r.anchor_format_set = true;
      std::string fmt_name = text(f, "anchor_format");
      if (fmt_name == "date")
        r.anchor_format = AnchorFormat::date;
      else if (fmt_name == "datetime")
        r.anchor_format = AnchorFormat::datetime;
      else if (fmt_name == "unixepoch")
        r.anchor_format = AnchorFormat::unixepoch;
      else
        error_at(f, fmt::format("unknown anchor_format '{}'; accepted: date, datetime, unixepoch",
                                fmt_name));
    }
    if (auto w = node["where"]) r.where = where(w);
    if (auto h = node["hold"]) r.hold = hold(h);
  }

  void load_stages(const YAML::Node& node, const Policy& p, Rule& r,
                   const std::string& what) const {
    bool short_form = node["keep_for"] || node["action"] || node["to"];
    if (node["stages"] && short_form) {
      error_at(
          key_node(node, "stages"),
          fmt::format("{} has both 'stages' and keep_for/action/to; accepted: one or the other",
                      what));
    }
    if (node["stages"]) {
      YAML::Node stages = node["stages"];
      if (!stages.IsSequence() || stages.size() == 0)
        error_at(stages, "stages must be a list of { after, action }");
      for (const auto& s : stages) {
        expect_keys(s, "a stage", {"after", "action", "to"});
        r.stages.push_back(
            load_stage(s, require(s, "after", "a stage"), require(s, "action", "a stage"), p, r));
      }
    } else {
      if (!node["keep_for"]) {
        error_at(
            key_node(node, "name"),
            fmt::format("{} has no 'keep_for' (or 'stages'): how long its records are kept", what));
      }
      r.stages.push_back(load_stage(node, node["keep_for"], require(node, "action", what), p, r));
    }
    for (std::size_t i = 0; i < r.stages.size(); ++i) r.stages[i].number = static_cast<int>(i + 1);
    check_stages(node, r);

    bool anonymizes = std::any_of(r.stages.begin(), r.stages.end(),
                                  [](const Stage& s) { return s.action == Action::anonymize; });
    if (auto a = node["anonymize"]) {
      if (!anonymizes)
        error_at(key_node(node, "anonymize"),
                 fmt::format("{} has an anonymize block but no stage anonymizes", what));
      r.anonymize = anonymization(a);
    } else if (anonymizes) {
      error_at(key_node(node, "action"),
               fmt::format("{} anonymizes but has no 'anonymize' block naming the columns", what));
    }
  }

  Stage load_stage(const YAML::Node& node, const YAML::Node& after, const YAML::Node& act,
                   const Policy& p, const Rule& r) const {
    Stage s;
    s.location = location_of(node);
    s.after = period(after, "period");
    s.action = action(act);
    const StoreSpec* live = p.find_store(r.store);
    if (live && live->kind == StoreKind::files && s.action == Action::anonymize) {
      error_at(act, fmt::format("files cannot be anonymised (store '{}' is of kind files); "
                                "accepted: delete, archive",
                                r.store));
    }
    if (s.action == Action::archive) {
      YAML::Node to = node["to"];
      if (!to) error_at(act, "archive needs 'to: STORE', the store the rows move to");
      s.to = text(to, "to");
      const StoreSpec* dest = p.find_store(s.to);
      if (!dest)
        error_at(to, fmt::format("archive destination '{}' is not defined under stores", s.to));
      if (s.to == r.store) error_at(to, "the archive must be another store than the rule's own");
      if (live && dest->kind != live->kind) {
        error_at(to,
                 fmt::format("archive destination '{}' is a {} store, but the rule's store '{}' "
                             "is {}; accepted: a store of the same kind",
                             s.to, to_string(dest->kind), r.store, to_string(live->kind)));
      }
      if (live && dest->kind == StoreKind::postgresql && dest->dsn == live->dsn &&
          dest->schema == live->schema) {
        error_at(to, fmt::format("archive destination '{}' is the same database and schema as "
                                 "store '{}'; accepted: another schema or another database",
                                 s.to, r.store));
      }
      if (live && dest->kind == StoreKind::files &&
          (folder_within(dest->root, live->root) || folder_within(live->root, dest->root))) {
        error_at(to, fmt::format("archive root '{}' (store '{}') and live root '{}' (store '{}') "
                                 "lie one inside the other; accepted: two separate folders",
                                 dest->root.string(), s.to, live->root.string(), r.store));
      }
    } else if (node["to"]) {
      error_at(key_node(node, "to"),
               fmt::format("'to' goes only with action archive, not {}", to_string(s.action)));
    }
    return s;
  }

  void check_stages(const YAML::Node& node, const Rule& r) const {
    int archives = 0;
    for (std::size_t i = 0; i < r.stages.size(); ++i) {
      const Stage& s = r.stages[i];
      archives += s.action == Action::archive;
      YAML::Node at = node["stages"] ? node["stages"][i] : node;
      if (archives > 1) error_at(at, "a rule archives at most once");
      if (i > 0 && !always_later(s.after, r.stages[i - 1].after)) {
        error_at(at, fmt::format("stage {} ({}) must come after stage {} ({}); stages are listed "
                                 "in order of their periods",
                                 i + 1, to_string(s.after), i, to_string(r.stages[i - 1].after)));
      }
      if (s.action == Action::erase && i + 1 < r.stages.size()) {
        error_at(at, "nothing is left after a delete stage: it must be the last stage");
      }
    }
  }

  fs::path file_;
  const LoadOptions& options_;
};

// The first byte that is not valid UTF-8, as a line and column, if any.
std::optional<SourceLocation> invalid_utf8(std::string_view s) {
  int line = 1, column = 1;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80           ? 1
                      : (c >> 5) == 0x6  ? 2
                      : (c >> 4) == 0xe  ? 3
                      : (c >> 3) == 0x1e ? 4
                                         : 0;
    bool ok = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k)
      ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    if (!ok) return SourceLocation{line, column};
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += len;
  }
  return std::nullopt;
}

}  // namespace

Result<std::shared_ptr<const Policy>> load_policy(const fs::path& file,
                                                  const LoadOptions& options) {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec)
    return fail(ExitCode::no_input,
                fmt::format("{}: cannot read the policy file: {}", file.string(), ec.message()));
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return fail(ExitCode::no_input,
                fmt::format("{}: cannot read the policy file: permission denied or not a file",
                            file.string()));
  if (size > kMaxPolicyBytes) {
    return fail(ExitCode::config,
                fmt::format("{}:1:1: the policy file is {} bytes; accepted: at most {} bytes",
                            file.string(), size, kMaxPolicyBytes));
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad())
    return fail(ExitCode::no_input, fmt::format("{}: cannot read the policy file", file.string()));
  if (auto at = invalid_utf8(bytes)) {
    return fail(ExitCode::config,
                fmt::format("{}:{}:{}: the policy file is not valid UTF-8 text; accepted: UTF-8",
                            file.string(), at->line, at->column));
  }
  try {
    Loader loader(file, options);
    return std::make_shared<const Policy>(loader.load(bytes));
  } catch (const LoadError& e) {
    return fail(ExitCode::config,
                fmt::format("{}:{}:{}: {}", file.string(), e.at.line, e.at.column, e.message));
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp stops at its depth limit with the message "bad file".
    return fail(ExitCode::config,
                fmt::format("{}:{}:{}: the YAML is nested too deeply here (at least {} levels); a "
                            "policy needs only a few",
                            file.string(), e.mark.line + 1, e.mark.column + 1, e.depth() / 2));
  } catch (const YAML::Exception& e) {
    return fail(ExitCode::config, fmt::format("{}:{}:{}: malformed YAML: {}", file.string(),
                                              e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

}  // namespace retentiond
