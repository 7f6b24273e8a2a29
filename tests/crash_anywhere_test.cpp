// "Nothing is lost" and "the log accounts for exactly the changes that
// committed" (CONTRACT.md), under SIGKILL at any instant. A store of 200,000
// rows under three rules (archive then delete, anonymise with hmac and a mark,
// delete) is swept by the real binary in small batches; each sweep is killed
// at a random moment, at least RETENTIOND_CRASH_KILLS times (default 50), in
// two phases at two as-of days. After every kill no row is lost and the log
// verifies (or ends in a torn line that the next start repairs with a
// warning); some kills are followed by the tear of an unsynced last line, as
// a kill inside its write() would leave it. After each phase's final complete
// sweep every row is exactly where the policy puts it, hmac columns hold
// HMAC(original) exactly once, and the audit lines of the phase add up, per
// rule, stage, action and store, to the rows that actually changed.
//
// The seed is printed; RETENTIOND_CRASH_SEED=N replays a run.
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "audit/audit_log.hpp"
#include "sweep_support.hpp"

using namespace retentiond;
using namespace retentiond::test;
namespace fs = std::filesystem;
using date::days;

namespace {

constexpr int kClaims = 100'000;
constexpr int kVisits = 60'000;
constexpr int kSessions = 40'000;
constexpr int kBatch = 100;

constexpr std::string_view kPolicy = R"(version: 1
timezone: Europe/Paris
batch_size: {batch}
hmac_key_file: hmac.key
stores:
  live: {{ kind: sqlite, path: live.db }}
  archive: {{ kind: sqlite, path: archive.db }}
rules:
  - name: claims
    store: live
    table: claims
    key: claim_id
    anchor: paid_on
    hold: {{ column: on_hold }}
    stages:
      - after: 3 years
        action: archive
        to: archive
      - after: 10 years
        action: delete
  - name: visits
    store: live
    table: visits
    key: id
    anchor: visited_at
    anchor_format: datetime
    keep_for: 13 months
    action: anonymize
    anonymize: {{ visitor_id: hmac, ip: "null", mark: anonymized_at }}
  - name: sessions
    store: live
    table: sessions
    key: id
    anchor: started_at
    anchor_format: unixepoch
    keep_for: 1 year
    action: delete
)";

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  if (const char* v = std::getenv(name); v && *v) return std::strtoull(v, nullptr, 10);
  return fallback;
}

// The rows as the test wrote them, and each one's anchor day as the policy
// reads it (none: undated). Datetimes are noon UTC, the same day in Paris.
struct Claim {
  std::optional<Day> day;
  sqlite::Value paid_on;
  std::string member;
  std::int64_t amount = 0;
  bool held = false;
};
struct Visit {
  std::optional<Day> day;
  sqlite::Value visited_at;
  sqlite::Value visitor_id;
  std::string ip;
};
struct Session {
  std::optional<Day> day;
  sqlite::Value started_at;
};

struct Original {
  std::vector<Claim> claims;  // index = claim_id - 1
  std::vector<Visit> visits;
  std::vector<Session> sessions;
};

Original make_rows() {
  Original o;
  const Day claims_from = day("2012-01-01"), visits_from = day("2022-01-01"),
            sessions_from = day("2023-01-01");
  for (int i = 1; i <= kClaims; ++i) {
    Claim c;
    Day d = claims_from + days{static_cast<std::int64_t>(i) * 5265 / kClaims};
    if (i % 397 == 0) {
      c.paid_on = std::monostate{};
    } else if (i % 401 == 0) {
      c.paid_on = std::string("garbage");
    } else {
      c.day = d;
      c.paid_on = format_day(d);
    }
    c.member = fmt::format("M{:06}", i);
    c.amount = i * 37 % 10000;
    c.held = i % 101 == 0;
    o.claims.push_back(std::move(c));
  }
  for (int i = 1; i <= kVisits; ++i) {
    Visit v;
    Day d = visits_from + days{static_cast<std::int64_t>(i) * 1612 / kVisits};
    if (i % 499 == 0) {
      v.visited_at = std::monostate{};
    } else {
      v.day = d;
      v.visited_at = format_day(d) + " 12:00:00";
    }
    v.visitor_id = i % 333 == 0 ? sqlite::Value{} : sqlite::Value{fmt::format("visitor-{:08}", i)};
    v.ip = fmt::format("192.0.2.{}", i % 256);
    o.visits.push_back(std::move(v));
  }
  for (int i = 1; i <= kSessions; ++i) {
    Session s;
    Day d = sessions_from + days{static_cast<std::int64_t>(i) * 1247 / kSessions};
    if (i % 293 == 0) {
      s.started_at = std::string("soon");  // text in a unixepoch column: undated
    } else {
      s.day = d;
      auto noon = std::chrono::sys_seconds{d} + std::chrono::hours{12};
      s.started_at = static_cast<std::int64_t>(noon.time_since_epoch().count());
    }
    o.sessions.push_back(std::move(s));
  }
  return o;
}

// One transaction, prepared statements: the 200,000 rows take well under a second.
void build_store(const fs::path& file, const Original& o) {
  sqlite::Database db(file, sqlite::OpenMode::create);
  db.exec("PRAGMA journal_mode = WAL");  // the live store as applications run it
  db.exec("BEGIN");
  db.exec(R"(
    CREATE TABLE claims (claim_id INTEGER PRIMARY KEY, member TEXT, amount_cents INTEGER,
                         paid_on TEXT, on_hold INTEGER);
    CREATE INDEX claims_paid_on ON claims (paid_on);
    CREATE TABLE visits (id INTEGER PRIMARY KEY, visitor_id TEXT, ip TEXT, visited_at TEXT,
                         anonymized_at TEXT);
    CREATE INDEX visits_visited_at ON visits (visited_at);
    CREATE TABLE sessions (id INTEGER PRIMARY KEY, token TEXT, started_at INTEGER);
    CREATE INDEX sessions_started_at ON sessions (started_at);
  )");
  {
    sqlite::Statement s(db, "INSERT INTO claims VALUES (?1, ?2, ?3, ?4, ?5)");
    for (std::size_t i = 0; i < o.claims.size(); ++i) {
      const Claim& c = o.claims[i];
      s.bind(1, static_cast<std::int64_t>(i + 1))
          .bind(2, c.member)
          .bind(3, c.amount)
          .bind(4, c.paid_on)
          .bind(5, std::int64_t{c.held});
      s.step();
      s.reset();
    }
  }
  {
    sqlite::Statement s(db, "INSERT INTO visits VALUES (?1, ?2, ?3, ?4, NULL)");
    for (std::size_t i = 0; i < o.visits.size(); ++i) {
      const Visit& v = o.visits[i];
      s.bind(1, static_cast<std::int64_t>(i + 1))
          .bind(2, v.visitor_id)
          .bind(3, v.ip)
          .bind(4, v.visited_at);
      s.step();
      s.reset();
    }
  }
  {
    sqlite::Statement s(db, "INSERT INTO sessions VALUES (?1, 'token', ?2)");
    for (std::size_t i = 0; i < o.sessions.size(); ++i) {
      s.bind(1, static_cast<std::int64_t>(i + 1)).bind(2, o.sessions[i].started_at);
      s.step();
      s.reset();
    }
  }
  db.exec("COMMIT");
}

// The day `as_of` minus whole years or months (none of the test's days needs
// the end-of-month rule).
Day minus(Day as_of, date::years y, date::months m = date::months{0}) {
  date::year_month_day ymd{as_of};
  return date::sys_days{ymd - y - m};
}

struct Phase {
  std::string as_of;
  Day claims_archive, claims_delete, visits, sessions;  // cutoffs
  explicit Phase(std::string day_text) : as_of(std::move(day_text)) {
    Day d = day(as_of);
    claims_archive = minus(d, date::years{3});
    claims_delete = minus(d, date::years{10});
    visits = minus(d, date::years{1}, date::months{1});
    sessions = minus(d, date::years{1});
  }
};

enum class Where { live, archive, gone };

// Where the policy puts a claim once a phase is complete.
Where fate(const Claim& c, const Phase& p) {
  if (!c.day || c.held) return Where::live;
  if (*c.day <= p.claims_delete) return Where::gone;
  if (*c.day <= p.claims_archive) return Where::archive;
  return Where::live;
}

bool anonymised(const Visit& v, const Phase& p) { return v.day && *v.day <= p.visits; }
bool deleted(const Session& s, const Phase& p) { return s.day && *s.day <= p.sessions; }

std::string expected_hmac(const std::string& key, const std::string& value) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(value.data()), value.size(), md,
               &len) != nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

// The store as it is now. Read through a read-write connection, as the next
// sweep would open it: that rolls back what a killed transaction left behind.
struct ClaimRow {
  sqlite::Value member, amount, paid_on, on_hold;
  bool operator==(const ClaimRow&) const = default;
};
struct VisitRow {
  sqlite::Value visitor_id, ip, visited_at, mark;
};
struct State {
  std::map<std::int64_t, ClaimRow> live, archive;
  std::map<std::int64_t, VisitRow> visits;
  std::set<std::int64_t> sessions;
};

std::map<std::int64_t, ClaimRow> claims_in(const fs::path& file) {
  std::map<std::int64_t, ClaimRow> rows;
  if (!fs::exists(file)) return rows;
  sqlite::Database db(file, sqlite::OpenMode::read_write);
  if (!db.table_exists("claims")) return rows;
  sqlite::Statement s(db, "SELECT claim_id, member, amount_cents, paid_on, on_hold FROM claims");
  while (s.step()) {
    rows.emplace(s.column_int(0), ClaimRow{s.column(1), s.column(2), s.column(3), s.column(4)});
  }
  return rows;
}

State read_state(const fs::path& live, const fs::path& archive) {
  State st;
  st.live = claims_in(live);
  st.archive = claims_in(archive);
  sqlite::Database db(live, sqlite::OpenMode::read_write);
  sqlite::Statement v(db, "SELECT id, visitor_id, ip, visited_at, anonymized_at FROM visits");
  while (v.step()) {
    st.visits.emplace(v.column_int(0),
                      VisitRow{v.column(1), v.column(2), v.column(3), v.column(4)});
  }
  sqlite::Statement s(db, "SELECT id FROM sessions");
  while (s.step()) st.sessions.insert(s.column_int(0));
  return st;
}

// Rows the phase still has to change.
std::int64_t pending(const State& st, const Original& o, const Phase& p) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < o.claims.size(); ++i) {
    auto id = static_cast<std::int64_t>(i + 1);
    Where w = fate(o.claims[i], p);
    if (w != Where::live && st.live.count(id)) ++n;
    if (w == Where::gone && st.archive.count(id)) ++n;
  }
  for (std::size_t i = 0; i < o.visits.size(); ++i) {
    auto it = st.visits.find(static_cast<std::int64_t>(i + 1));
    if (anonymised(o.visits[i], p) && it != st.visits.end() &&
        std::holds_alternative<std::monostate>(it->second.mark)) {
      ++n;
    }
  }
  for (std::size_t i = 0; i < o.sessions.size(); ++i) {
    if (deleted(o.sessions[i], p) && st.sessions.count(static_cast<std::int64_t>(i + 1))) ++n;
  }
  return n;
}

// After a kill: no row is lost or out of place. `before` is the phase the
// store completed last (none: the start), `now` the one under way. A claim
// may be in both stores only while it moves.
std::size_t check_nothing_lost(const State& st, const Original& o, const Phase* before,
                               const Phase& now) {
  std::size_t lost = 0, misplaced = 0, in_both = 0;
  std::vector<std::int64_t> examples;
  for (std::size_t i = 0; i < o.claims.size(); ++i) {
    auto id = static_cast<std::int64_t>(i + 1);
    bool l = st.live.count(id) > 0, a = st.archive.count(id) > 0;
    Where from = before ? fate(o.claims[i], *before) : Where::live;
    Where to = fate(o.claims[i], now);
    bool ok = true;
    if (to == Where::live) ok = l && !a;
    if (to == Where::archive) ok = (l || a) && !(from == Where::archive && l);
    // A claim past the delete stage is deleted where it is: never moved first.
    if (to == Where::gone) ok = from == Where::live ? !a : !l;
    if (to == Where::archive && !l && !a) ++lost;
    if (!ok) {
      ++misplaced;
      if (examples.size() < 5) examples.push_back(id);
    }
    if (l && a) ++in_both;
  }
  for (std::size_t i = 0; i < o.sessions.size(); ++i) {
    auto id = static_cast<std::int64_t>(i + 1);
    if (!deleted(o.sessions[i], now) && !st.sessions.count(id)) {
      ++misplaced;
      if (examples.size() < 5) examples.push_back(-id);
    }
  }
  INFO("claims lost: " << lost << ", rows out of place: " << misplaced
                       << " (first ids, sessions negative: "
                       << fmt::format("{}", fmt::join(examples, ", ")) << ")");
  CHECK(misplaced == 0);
  CHECK(in_both <= static_cast<std::size_t>(kBatch));  // one batch at most is mid-move
  CHECK(st.visits.size() == o.visits.size());
  return in_both;
}

// Once a phase is complete: every row exactly where the policy puts it, with
// its content; hmac applied exactly once; marks of earlier phases kept.
void check_complete(const State& st, const Original& o, const Phase& p, const std::string& key,
                    const std::map<std::int64_t, sqlite::Value>& earlier_marks) {
  std::size_t wrong_claims = 0, wrong_visits = 0, wrong_sessions = 0;
  std::vector<std::string> examples;
  auto note = [&](std::string what) {
    if (examples.size() < 5) examples.push_back(std::move(what));
  };
  for (std::size_t i = 0; i < o.claims.size(); ++i) {
    const Claim& c = o.claims[i];
    auto id = static_cast<std::int64_t>(i + 1);
    ClaimRow expected{c.member, c.amount, c.paid_on, std::int64_t{c.held}};
    auto l = st.live.find(id);
    auto a = st.archive.find(id);
    bool ok = false;
    switch (fate(c, p)) {
      case Where::live:
        ok = l != st.live.end() && a == st.archive.end() && l->second == expected;
        break;
      case Where::archive:
        ok = l == st.live.end() && a != st.archive.end() && a->second == expected;
        break;
      case Where::gone:
        ok = l == st.live.end() && a == st.archive.end();
        break;
    }
    if (!ok) {
      ++wrong_claims;
      note(fmt::format("claim {}", id));
    }
  }
  for (std::size_t i = 0; i < o.visits.size(); ++i) {
    const Visit& v = o.visits[i];
    auto id = static_cast<std::int64_t>(i + 1);
    auto it = st.visits.find(id);
    bool ok = it != st.visits.end() && it->second.visited_at == v.visited_at;
    if (ok && anonymised(v, p)) {
      sqlite::Value coded = std::monostate{};
      if (auto* text = std::get_if<std::string>(&v.visitor_id)) coded = expected_hmac(key, *text);
      ok = it->second.visitor_id == coded &&
           std::holds_alternative<std::monostate>(it->second.ip) &&
           std::holds_alternative<std::string>(it->second.mark);
      if (auto m = earlier_marks.find(id); ok && m != earlier_marks.end()) {
        ok = it->second.mark == m->second;  // not touched again
      }
    } else if (ok) {
      ok = it->second.visitor_id == v.visitor_id && it->second.ip == sqlite::Value{v.ip} &&
           std::holds_alternative<std::monostate>(it->second.mark);
    }
    if (!ok) {
      ++wrong_visits;
      note(fmt::format("visit {}", id));
    }
  }
  for (std::size_t i = 0; i < o.sessions.size(); ++i) {
    auto id = static_cast<std::int64_t>(i + 1);
    if (deleted(o.sessions[i], p) == (st.sessions.count(id) > 0)) {
      ++wrong_sessions;
      note(fmt::format("session {}", id));
    }
  }
  INFO("first wrong rows: " << fmt::format("{}", fmt::join(examples, ", ")));
  CHECK(wrong_claims == 0);
  CHECK(wrong_visits == 0);
  CHECK(wrong_sessions == 0);
}

using AuditKey =
    std::tuple<std::string, int, std::string, std::string>;  // rule, stage, action, store

// What a phase changed, from the stores before and after it.
std::map<AuditKey, std::int64_t> changes_between(const State& before, const State& after) {
  std::map<AuditKey, std::int64_t> c;
  for (const auto& [id, row] : after.archive) {
    if (!before.archive.count(id)) ++c[{"claims", 1, "archive", "live"}];
  }
  for (const auto& [id, row] : before.live) {
    if (!after.live.count(id) && !after.archive.count(id)) ++c[{"claims", 2, "delete", "live"}];
  }
  for (const auto& [id, row] : before.archive) {
    if (!after.archive.count(id)) ++c[{"claims", 2, "delete", "archive"}];
  }
  for (const auto& [id, row] : after.visits) {
    auto b = before.visits.find(id);
    if (std::holds_alternative<std::string>(row.mark) &&
        std::holds_alternative<std::monostate>(b->second.mark)) {
      ++c[{"visits", 1, "anonymize", "live"}];
    }
  }
  for (auto id : before.sessions) {
    if (!after.sessions.count(id)) ++c[{"sessions", 1, "delete", "live"}];
  }
  return c;
}

// What the audit log says the phase changed.
std::map<AuditKey, std::int64_t> logged_for(const fs::path& state, const std::string& as_of) {
  std::map<AuditKey, std::int64_t> c;
  for (const auto& l : audit_lines(state)) {
    if (l.at("as_of") != as_of) continue;
    AuditKey k{l.at("rule").get<std::string>(), l.at("stage").get<int>(),
               l.at("action").get<std::string>(), l.at("store").get<std::string>()};
    c[k] += l.at("affected").get<std::int64_t>();
  }
  return c;
}

std::string show(const std::map<AuditKey, std::int64_t>& m) {
  std::string out;
  for (const auto& [k, n] : m) {
    out += fmt::format("{}/{}/{}/{}={} ", std::get<0>(k), std::get<1>(k), std::get<2>(k),
                       std::get<3>(k), n);
  }
  return out;
}

// The entries left in a store's outbox.
std::set<std::string> outbox_entries(const fs::path& file) {
  std::set<std::string> out;
  if (!fs::exists(file)) return out;
  sqlite::Database db(file, sqlite::OpenMode::read_write);
  if (!db.table_exists("_retentiond_outbox")) return out;
  sqlite::Statement s(db, "SELECT entry FROM _retentiond_outbox");
  while (s.step()) {
    auto e = AuditEntry::from_json(nlohmann::json::parse(s.column_text(0)));
    REQUIRE(e);
    out.insert(AuditLog::entry_key(*e));
  }
  return out;
}

std::int64_t head_seq(const fs::path& state) {
  if (!fs::exists(state / "audit.head")) return 0;
  return nlohmann::json::parse(read_file(state / "audit.head")).at("seq").get<std::int64_t>();
}

// Counts the lines appended to a file after `offset`, reading only what is new.
class LineCounter {
 public:
  LineCounter(fs::path file, std::uintmax_t offset) : file_(std::move(file)), offset_(offset) {}
  std::int64_t count() {
    std::ifstream in(file_, std::ios::binary);
    if (!in) return lines_;
    in.seekg(static_cast<std::streamoff>(offset_));
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      auto got = static_cast<std::size_t>(in.gcount());
      lines_ += std::count(buf, buf + got, '\n');
      offset_ += got;
    }
    return lines_;
  }

 private:
  fs::path file_;
  std::uintmax_t offset_;
  std::int64_t lines_ = 0;
};

struct KillCounts {
  int kills = 0;               // SIGKILL delivered to a running sweep
  int finished = 0;            // sweeps that ended before their kill came
  int mid_work = 0;            // kills after some rows changed and before the phase's last
  int left_in_both = 0;        // kills that left a batch in both stores
  int unlogged = 0;            // kills that left a committed entry only in an outbox
  int logged_unforgotten = 0;  // kills that left an entry in the log and in an outbox
  int torn_natural = 0;        // kills inside the write of an audit line
  int torn_simulated = 0;      // tears made by the test in an unsynced last line
};

}  // namespace

TEST_CASE("a sweep killed at any instant loses no row and its audit log accounts for every change",
          "[crash]") {
  TempDir dir;
  const fs::path live = dir / "live.db", archive = dir / "archive.db", state = dir / "state";
  const std::string key = "crash-test hmac key: 0123456789abcdef0123456789abcdef";
  dir.write("hmac.key", key, 0600);
  auto policy =
      dir.write("policy.yaml", fmt::format(fmt::runtime(kPolicy), fmt::arg("batch", kBatch)));
  const Original original = make_rows();
  build_store(live, original);

  const std::uint64_t seed = env_number("RETENTIOND_CRASH_SEED", std::random_device{}());
  const int kills_wanted = static_cast<int>(env_number("RETENTIOND_CRASH_KILLS", 50));
  std::cout << "crash_anywhere_test: seed " << seed << " (RETENTIOND_CRASH_SEED=" << seed
            << " replays it), " << kills_wanted << " kills (RETENTIOND_CRASH_KILLS)\n";
  INFO("seed " << seed << " (set RETENTIOND_CRASH_SEED to replay)");
  std::mt19937_64 random(seed);
  auto chance = [&](int percent) {
    return std::uniform_int_distribution<int>(1, 100)(random) <= percent;
  };

  const std::vector<Phase> phases{Phase("2025-03-10"), Phase("2026-06-15")};
  // Phase 1 has most of the work: it gets most of the kills.
  const std::vector<int> kills_per_phase{kills_wanted * 3 / 5, kills_wanted - kills_wanted * 3 / 5};
  auto sweep_args = [&](const std::string& as_of) {
    return std::vector<std::string>{"-c",    policy.string(), "--state-dir", state.string(),
                                    "sweep", "--as-of",       as_of};
  };
  // Nothing is due on that day: a sweep that only settles what a killed one left.
  const auto settle_args = sweep_args("1990-01-01");
  const std::vector<std::string> verify_args{"--state-dir", state.string(), "audit", "verify"};

  KillCounts n;
  const Phase* completed = nullptr;
  std::map<std::int64_t, sqlite::Value> marks_before;
  auto started = std::chrono::steady_clock::now();
  for (std::size_t ph = 0; ph < phases.size(); ++ph) {
    const Phase& phase = phases[ph];
    INFO("phase " << ph + 1 << ", as of " << phase.as_of);
    State before = read_state(live, archive);
    std::int64_t left = pending(before, original, phase);
    REQUIRE(left > 0);
    // Typical time between two audit appends (two batches), learnt as it goes.
    double batch_ms = 10;
    int kills = 0;
    for (int attempt = 0; kills < kills_per_phase[ph] && attempt < 20 * kills_per_phase[ph];
         ++attempt) {
      // Where the kill lands: mostly after a random number of the batches
      // left (about an equal share of the phase's work between two kills),
      // then a random part of a batch later; sometimes early, while the
      // sweep starts and settles what the last kill left.
      int kills_left = kills_per_phase[ph] - kills;
      auto share = std::max<std::int64_t>(1, left / kBatch / kills_left);
      // Once the phase's work is done, only the start is left to kill in.
      bool idle = left == 0;
      bool early = idle || chance(15);
      auto after_batches =
          early ? 0 : std::uniform_int_distribution<std::int64_t>(1, 2 * share)(random);
      auto jitter = std::chrono::microseconds{std::uniform_int_distribution<std::int64_t>(
          0, static_cast<std::int64_t>((idle    ? 30
                                        : early ? 80
                                                : batch_ms) *
                                       1000))(random)};
      INFO("attempt " << attempt << ": kill " << after_batches << " batches and " << jitter.count()
                      << " us after the start");
      std::uintmax_t log_size =
          fs::exists(audit_log_path(state)) ? fs::file_size(audit_log_path(state)) : 0;
      LineCounter appended(audit_log_path(state), log_size);
      auto spawned = std::chrono::steady_clock::now();
      pid_t child = spawn_retentiond(sweep_args(phase.as_of), dir / "sweep.out", dir / "sweep.err");
      int status = 0;
      bool finished = false;
      auto first_append = spawned, last_append = spawned;
      std::int64_t seen = 0;
      // Watch the log grow (the child appends one line per batch).
      while (!(finished = ::waitpid(child, &status, WNOHANG) == child) && seen < after_batches &&
             std::chrono::steady_clock::now() - spawned < std::chrono::seconds{10}) {
        std::this_thread::sleep_for(std::chrono::microseconds{200});
        if (auto now_seen = appended.count(); now_seen > seen) {
          last_append = std::chrono::steady_clock::now();
          if (seen == 0) first_append = last_append;
          seen = now_seen;
        }
      }
      if (seen > 1) {
        double per_batch =
            std::chrono::duration<double, std::milli>(last_append - first_append).count() /
            static_cast<double>(seen - 1);
        batch_ms = std::clamp(0.8 * batch_ms + 0.2 * per_batch, 1.0, 200.0);
      }
      if (!finished) {
        std::this_thread::sleep_for(jitter);
        finished = ::waitpid(child, &status, WNOHANG) == child;
      }
      if (finished) {
        ++n.finished;
        INFO(read_file(dir / "sweep.err"));
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
      } else {
        REQUIRE(::kill(child, SIGKILL) == 0);
        REQUIRE(::waitpid(child, &status, 0) == child);
        ++kills;
        ++n.kills;
      }

      // The audit log as the kill left it.
      std::string log_text =
          fs::exists(audit_log_path(state)) ? read_file(audit_log_path(state)) : "";
      bool torn = !log_text.empty() && log_text.back() != '\n';
      n.torn_natural += torn;
      auto in_outboxes = outbox_entries(live);
      in_outboxes.merge(outbox_entries(archive));
      std::set<std::string> in_log;
      for (const auto& l : audit_lines(state)) {
        auto e = AuditEntry::from_json(nlohmann::json(l));
        REQUIRE(e);
        in_log.insert(AuditLog::entry_key(*e));
      }
      bool unlogged = false, both = false;
      for (const auto& e : in_outboxes) (in_log.count(e) ? both : unlogged) = true;
      n.unlogged += unlogged;
      n.logged_unforgotten += both;

      // A kill inside the write() of the last line: made here, on a line the
      // log has not synced yet (its entry is still in an outbox and the head
      // is behind it), as only such a line can be torn.
      if (!torn && both && chance(30)) {
        auto start = log_text.rfind('\n', log_text.size() - 2);
        start = start == std::string::npos ? 0 : start + 1;
        std::string last = log_text.substr(start, log_text.size() - 1 - start);
        auto line = nlohmann::json::parse(last);
        auto e = AuditEntry::from_json(line);
        if (in_outboxes.count(AuditLog::entry_key(*e)) &&
            head_seq(state) < line.at("seq").get<std::int64_t>()) {
          fs::resize_file(audit_log_path(state), start + last.size() / 2);
          torn = true;
          ++n.torn_simulated;
        }
      }
      auto verified = run_retentiond(dir, verify_args);
      if (torn) {
        INFO("verify: " << verified.err);
        CHECK(verified.exit_code == 65);
        CHECK_THAT(verified.err, Catch::Contains("cut off"));
        // The next start repairs the log, with a warning, and puts the entry back.
        auto settled = run_retentiond(dir, settle_args);
        INFO("settling sweep: " << settled.err);
        CHECK(settled.exit_code == 0);
        CHECK_THAT(settled.err, Catch::Contains("partly written line"));
        verified = run_retentiond(dir, verify_args);
      }
      {
        INFO("verify: " << verified.err);
        CHECK(verified.exit_code == 0);
      }

      State now = read_state(live, archive);
      n.left_in_both += check_nothing_lost(now, original, completed, phase) > 0;
      std::int64_t still = pending(now, original, phase);
      if (!finished && still < left && still > 0) ++n.mid_work;
      left = still;
    }
    CHECK(kills == kills_per_phase[ph]);

    // The phase completes: a sweep to the end, then a second one with
    // nothing left to do.
    auto last = run_retentiond(dir, sweep_args(phase.as_of));
    {
      INFO("final sweep: " << last.err);
      REQUIRE(last.exit_code == 0);
    }
    auto again = run_retentiond(dir, {"-c", policy.string(), "--state-dir", state.string(), "sweep",
                                      "--as-of", phase.as_of, "--format", "json"});
    {
      INFO("second sweep: " << again.err);
      REQUIRE(again.exit_code == 0);
      CHECK(nlohmann::json::parse(again.out).at("totals").at("affected") == 0);
    }
    auto verified = run_retentiond(dir, verify_args);
    {
      INFO("verify: " << verified.err);
      CHECK(verified.exit_code == 0);
    }
    CHECK(outbox_entries(live).empty());
    CHECK(outbox_entries(archive).empty());

    State after = read_state(live, archive);
    check_complete(after, original, phase, key, marks_before);
    auto changed = changes_between(before, after);
    auto logged = logged_for(state, phase.as_of);
    INFO("changed: " << show(changed));
    INFO("logged:  " << show(logged));
    CHECK(logged == changed);
    for (const auto& [id, row] : after.visits) {
      if (std::holds_alternative<std::string>(row.mark)) marks_before[id] = row.mark;
    }
    completed = &phase;
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::cout << fmt::format(
      "crash_anywhere_test: {} kills ({} mid-work), {} sweeps ended before their kill; kills left "
      "a batch in both stores {} times, a committed entry only in an outbox {} times, an entry in "
      "the log and an outbox {} times; torn audit lines: {} by a kill, {} made by the test; "
      "{} rows, {} audit lines, {:.1f} s\n",
      n.kills, n.mid_work, n.finished, n.left_in_both, n.unlogged, n.logged_unforgotten,
      n.torn_natural, n.torn_simulated, kClaims + kVisits + kSessions, audit_lines(state).size(),
      took.count() / 1000.0);
  CHECK(n.kills >= kills_wanted);
  // Otherwise the kills never hit a sweep at work and this test showed nothing.
  CHECK(n.mid_work >= n.kills / 4);
}

TEST_CASE("a sweep that finds another one running leaves the audit log alone", "[crash]") {
  // The other sweep holds the state directory's lock and is inside the
  // write() of a line: the log ends in a partial line that is not torn at all.
  TempDir dir;
  auto state = dir / "state";
  auto policy = dir.write("policy.yaml", R"(version: 1
timezone: Europe/Paris
stores:
  live: { kind: sqlite, path: live.db }
rules:
  - name: visits
    store: live
    table: visits
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
)");
  exec(dir / "live.db", R"(
    CREATE TABLE visits (id INTEGER PRIMARY KEY, at TEXT);
    INSERT INTO visits VALUES (1, '2015-01-01'), (2, '2016-01-01');
  )");
  const std::vector<std::string> sweep{"-c",    policy.string(), "--state-dir", state.string(),
                                       "sweep", "--as-of",       "2026-01-01"};
  REQUIRE(run_retentiond(dir, sweep).exit_code == 0);
  exec(dir / "live.db", "INSERT INTO visits VALUES (3, '2017-01-01')");

  int lock = ::open((state / "sweep.lock").c_str(), O_RDWR);
  REQUIRE(lock >= 0);
  REQUIRE(::flock(lock, LOCK_EX | LOCK_NB) == 0);
  {
    std::ofstream log(audit_log_path(state), std::ios::app | std::ios::binary);
    log << R"({"seq":2,"time":"2026-01-01T00:00:00.000Z","rule":"vis)";
  }
  const auto log_before = read_file(audit_log_path(state));
  auto r = run_retentiond(dir, sweep);
  INFO(r.err);
  CHECK(r.exit_code == 75);
  CHECK_THAT(r.err, Catch::Contains("another sweep is running"));
  CHECK(read_file(audit_log_path(state)) == log_before);
  CHECK(query_int(dir / "live.db", "SELECT count(*) FROM visits") == 1);
  ::close(lock);
}
