#include "mgen_demo.hpp"

#include <date/date.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <array>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "stores/sqlite/sqlite.hpp"

namespace retentiond::demo {
namespace {

namespace fs = std::filesystem;
using date::days;
using sqlite::Database;
using sqlite::Statement;
using sqlite::Value;

// One database file of the data set and the statements that make its schema.
struct StoreSchema {
  std::string_view file;
  std::vector<std::string_view> tables;
  std::vector<std::string_view> indexes;
};

const std::vector<StoreSchema>& schemas() {
  static const std::vector<StoreSchema> all{
      {"amo.db",
       {R"(CREATE TABLE affiliations (
  id INTEGER PRIMARY KEY,
  member_number TEXT NOT NULL,
  beneficiary_rank INTEGER NOT NULL,        -- 0: the insured person; 1..: dependants
  last_name TEXT,
  first_name TEXT,
  birth_date TEXT,
  opened_on TEXT,
  rights_closed_on TEXT,                    -- NULL while the rights are open
  litigation_pending INTEGER NOT NULL DEFAULT 0))",
        R"(CREATE TABLE claims (
  claim_id INTEGER PRIMARY KEY,
  member_number TEXT NOT NULL,
  care_on TEXT,
  act_code TEXT,
  amount_cents INTEGER,
  reimbursed_cents INTEGER,
  paid_on TEXT))"},
       {"CREATE INDEX affiliations_rights_closed_on ON affiliations (rights_closed_on)",
        "CREATE INDEX affiliations_member ON affiliations (member_number)",
        "CREATE INDEX claims_paid_on ON claims (paid_on)"}},
      {"mutual.db",
       {R"(CREATE TABLE memberships (
  id INTEGER PRIMARY KEY,
  member_number TEXT NOT NULL,
  plan TEXT,
  monthly_fee_cents INTEGER,
  joined_on TEXT,
  ended_on TEXT))"},
       {"CREATE INDEX memberships_ended_on ON memberships (ended_on)"}},
      {"services.db",
       {R"(CREATE TABLE service_contracts (
  id INTEGER PRIMARY KEY,
  member_number TEXT NOT NULL,
  service TEXT NOT NULL,                    -- housing | retirement
  started_on TEXT,
  ended_on TEXT,
  monthly_amount_cents INTEGER))"},
       {"CREATE INDEX service_contracts_ended_on ON service_contracts (ended_on)"}},
      {"web.db",
       {R"(CREATE TABLE accounts (
  id INTEGER PRIMARY KEY,
  member_number TEXT,
  email TEXT,
  display_name TEXT,
  created_at TEXT,
  contract_ended_on TEXT,
  coded_at TEXT))",
        R"(CREATE TABLE contact_requests (
  id INTEGER PRIMARY KEY,
  name TEXT,
  email TEXT,
  subject TEXT,
  message TEXT,
  received_at TEXT))",
        R"(CREATE TABLE visits (
  id INTEGER PRIMARY KEY,
  visitor_id TEXT,
  ip TEXT,
  user_agent TEXT,
  page TEXT,
  visited_at TEXT,
  anonymized_at TEXT))",
        R"(CREATE TABLE cookies (
  id INTEGER PRIMARY KEY,
  visitor_id TEXT,
  name TEXT,
  value TEXT,
  set_at INTEGER))"},
       {"CREATE INDEX accounts_contract_ended_on ON accounts (contract_ended_on)",
        "CREATE INDEX contact_requests_received_at ON contact_requests (received_at)",
        "CREATE INDEX visits_visited_at ON visits (visited_at)",
        "CREATE INDEX cookies_set_at ON cookies (set_at)"}},
  };
  return all;
}

// Share of the rows per table, in thousandths, in generation order.
struct TableShare {
  std::string_view file;
  std::string_view table;
  int per_mille;
};
constexpr std::array<TableShare, 8> kShares{{
    {"amo.db", "affiliations", 80},
    {"amo.db", "claims", 400},
    {"mutual.db", "memberships", 60},
    {"services.db", "service_contracts", 30},
    {"web.db", "accounts", 50},
    {"web.db", "contact_requests", 30},
    {"web.db", "visits", 250},
    {"web.db", "cookies", 100},
}};

constexpr std::array<std::string_view, 12> kLastNames{"Martin", "Bernard", "Dubois", "Thomas",
                                                      "Robert", "Richard", "Petit",  "Durand",
                                                      "Leroy",  "Moreau",  "Simon",  "Laurent"};
constexpr std::array<std::string_view, 12> kFirstNames{"Camille", "Louis",   "Léa",   "Hugo",
                                                       "Chloé",   "Jules",   "Manon", "Lucas",
                                                       "Inès",    "Gabriel", "Sarah", "Arthur"};
constexpr std::array<std::string_view, 10> kActCodes{"C",   "G",   "CS",  "APC", "PHA",
                                                     "BIO", "RAD", "DEN", "OPT", "KIN"};
constexpr std::array<std::string_view, 4> kPlans{"MGEN Initiale", "MGEN Équilibre",
                                                 "MGEN Référence", "MGEN Intégrale"};
constexpr std::array<std::string_view, 5> kSubjects{"Attestation", "Changement d'adresse",
                                                    "Remboursement", "Adhésion", "Newsletter"};
constexpr std::array<std::string_view, 4> kUserAgents{
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15"};
constexpr std::array<std::string_view, 8> kPages{
    "/",           "/espace-personnel", "/remboursements", "/trouver-un-professionnel",
    "/prevention", "/contact",          "/offres/sante",   "/newsletter"};
constexpr std::array<std::string_view, 3> kCookieNames{"_pk_id", "_pk_ses", "mgen_consent"};
// Anchors no calendar can read: a sweep reports them as undated and leaves them.
constexpr std::array<std::string_view, 5> kBadDates{"", "unknown", "2019-02-30", "31/12/2019",
                                                    "0000-00-00"};
constexpr std::array<std::string_view, 3> kBadDatetimes{"", "yesterday", "2024-13-01 10:00:00"};

std::string day_text(Day d) {
  date::year_month_day ymd{d};
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

// An instant as ISO 8601 text, in one of the spellings SQLite stores hold:
// mostly SQLite's own "YYYY-MM-DD HH:MM:SS" (UTC), some with 'T' and 'Z',
// some with a local +02:00 offset.
std::string datetime_text(std::chrono::sys_seconds t, Rng& rng) {
  auto spelling = rng.below(100);
  if (spelling < 80) return date::format("%F %T", t);
  if (spelling < 95) return date::format("%FT%TZ", t);
  return date::format("%FT%T", t + std::chrono::hours{2}) + "+02:00";
}

// The number of days from `years` years before `day` to `day`: spans of
// random dates follow the calendar, not a fixed year length.
days years_before(Day day, int years) {
  date::year_month_day ymd{day};
  return day - Day{ymd - date::years{years}};
}
days months_before(Day day, int months) {
  date::year_month_day ymd{day};
  auto earlier = ymd - date::months{months};
  if (!earlier.ok()) earlier = earlier.year() / earlier.month() / date::last;
  return day - Day{earlier};
}

// A day at most `span` before `from`.
Day day_back(Rng& rng, Day from, days span) {
  return from - days{static_cast<int>(rng.below(static_cast<std::uint64_t>(span.count()) + 1))};
}

std::chrono::sys_seconds instant_on(Rng& rng, Day day) {
  return std::chrono::sys_seconds{day} + std::chrono::seconds{rng.below(24 * 60 * 60)};
}

template <std::size_t N>
std::string_view pick(Rng& rng, const std::array<std::string_view, N>& list) {
  return list[rng.below(N)];
}

// Writes rows through one prepared statement, one transaction per
// `per_transaction` rows.
class TableWriter {
 public:
  TableWriter(Database& db, std::string_view table, std::vector<std::string_view> columns,
              int per_transaction)
      : db_(db), per_transaction_(per_transaction), stmt_(db, insert_sql(table, columns)) {}
  ~TableWriter() = default;  // an uncommitted transaction rolls back

  void row(const std::vector<Value>& values) {
    if (!txn_) txn_.emplace(db_);
    for (std::size_t i = 0; i < values.size(); ++i) stmt_.bind(static_cast<int>(i + 1), values[i]);
    stmt_.step();
    stmt_.reset();
    if (++in_transaction_ >= per_transaction_) finish_transaction();
  }
  void finish() { finish_transaction(); }

 private:
  static std::string insert_sql(std::string_view table,
                                const std::vector<std::string_view>& columns) {
    std::vector<std::string> marks(columns.size(), "?");
    return fmt::format("INSERT INTO {} ({}) VALUES ({})", sqlite::quote(table),
                       fmt::join(columns, ", "), fmt::join(marks, ", "));
  }
  void finish_transaction() {
    if (txn_) {
      txn_->commit();
      txn_.reset();
    }
    in_transaction_ = 0;
  }

  Database& db_;
  int per_transaction_;
  Statement stmt_;
  std::optional<sqlite::Transaction> txn_;
  int in_transaction_ = 0;
};

// The generator of one data set: members shared by every table, one random
// stream per table so that a table's rows do not depend on the others' sizes.
class Generator {
 public:
  explicit Generator(const GenerateOptions& o)
      : o_(o), members_(std::max<std::int64_t>(1, o.rows / 12)) {}

  // `stream` numbers the table: each has its own random sequence.
  void fill(Database& db, std::string_view table, std::int64_t rows, std::uint64_t stream) {
    Rng rng(o_.seed * 0x9e3779b97f4a7c15ULL + stream);
    if (table == "affiliations")
      affiliations(db, rows, rng);
    else if (table == "claims")
      claims(db, rows, rng);
    else if (table == "memberships")
      memberships(db, rows, rng);
    else if (table == "service_contracts")
      service_contracts(db, rows, rng);
    else if (table == "accounts")
      accounts(db, rows, rng);
    else if (table == "contact_requests")
      contact_requests(db, rows, rng);
    else if (table == "visits")
      visits(db, rows, rng);
    else if (table == "cookies")
      cookies(db, rows, rng);
  }

 private:
  std::int64_t member(Rng& rng) const {
    return static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(members_)));
  }
  static std::string member_number(std::int64_t m) { return fmt::format("{:09}", 100'000'000 + m); }
  static std::string_view last_name(std::int64_t m) {
    return kLastNames[static_cast<std::size_t>(m) % kLastNames.size()];
  }
  static std::string_view first_name(std::int64_t m) {
    return kFirstNames[static_cast<std::size_t>(m / 7) % kFirstNames.size()];
  }
  static std::string email(std::int64_t m) {
    return fmt::format("{}.{}{}@example.org", first_name(m), last_name(m), m);
  }

  // A date anchor as stored, and the day it stands for when it has one.
  struct Anchor {
    Value value;
    std::optional<Day> day;
  };

  // `garbage` per mille unreadable, `null` per mille NULL, `future` per
  // mille up to two years ahead, the rest up to `span` back.
  Anchor date_anchor(Rng& rng, days span, unsigned null, unsigned garbage = 5,
                     unsigned future = 0) const {
    auto draw = static_cast<unsigned>(rng.below(1000));
    if (draw < garbage) return {std::string(pick(rng, kBadDates)), std::nullopt};
    if (draw < garbage + null) return {std::monostate{}, std::nullopt};
    Day day = draw < garbage + null + future ? o_.as_of + days{1 + static_cast<int>(rng.below(730))}
                                             : day_back(rng, o_.as_of, span);
    return {day_text(day), day};
  }

  void affiliations(Database& db, std::int64_t rows, Rng& rng) {
    TableWriter w(db, "affiliations",
                  {"member_number", "beneficiary_rank", "last_name", "first_name", "birth_date",
                   "opened_on", "rights_closed_on", "litigation_pending"},
                  o_.rows_per_transaction);
    std::vector<Value> v(8);
    for (std::int64_t i = 0; i < rows; ++i) {
      std::int64_t m = member(rng);
      Anchor closed = date_anchor(rng, years_before(o_.as_of, 15), 250);
      Day open_until = closed.day.value_or(o_.as_of);
      v[0] = member_number(m);
      v[1] = static_cast<std::int64_t>(rng.chance(700) ? 0 : 1 + rng.below(3));
      v[2] = std::string(last_name(m));
      v[3] = std::string(first_name(m + static_cast<std::int64_t>(rng.below(3))));
      v[4] = day_text(
          day_back(rng, o_.as_of - years_before(o_.as_of, 18), years_before(o_.as_of, 62)));
      v[5] = day_text(day_back(rng, open_until - days{1}, years_before(open_until, 30)));
      v[6] = closed.value;
      v[7] = static_cast<std::int64_t>(rng.chance(20) ? 1 : 0);
      w.row(v);
    }
    w.finish();
  }

  void claims(Database& db, std::int64_t rows, Rng& rng) {
    TableWriter w(
        db, "claims",
        {"member_number", "care_on", "act_code", "amount_cents", "reimbursed_cents", "paid_on"},
        o_.rows_per_transaction);
    std::vector<Value> v(6);
    for (std::int64_t i = 0; i < rows; ++i) {
      Anchor paid = date_anchor(rng, years_before(o_.as_of, 15), 8, 2);
      Day care = paid.day.value_or(o_.as_of);
      auto amount = static_cast<std::int64_t>(500 + rng.below(30'000));
      v[0] = member_number(member(rng));
      v[1] = day_text(care - days{static_cast<int>(rng.below(60))});
      v[2] = std::string(pick(rng, kActCodes));
      v[3] = amount;
      v[4] = amount * static_cast<std::int64_t>(60 + rng.below(41)) / 100;
      v[5] = paid.value;
      w.row(v);
    }
    w.finish();
  }

  void memberships(Database& db, std::int64_t rows, Rng& rng) {
    TableWriter w(db, "memberships",
                  {"member_number", "plan", "monthly_fee_cents", "joined_on", "ended_on"},
                  o_.rows_per_transaction);
    std::vector<Value> v(5);
    for (std::int64_t i = 0; i < rows; ++i) {
      Anchor ended = date_anchor(rng, years_before(o_.as_of, 20), 400);
      Day until = ended.day.value_or(o_.as_of);
      v[0] = member_number(member(rng));
      v[1] = std::string(pick(rng, kPlans));
      v[2] = static_cast<std::int64_t>(2'000 + rng.below(15'000));
      v[3] = day_text(day_back(rng, until - days{30}, years_before(until, 35)));
      v[4] = ended.value;
      w.row(v);
    }
    w.finish();
  }

  void service_contracts(Database& db, std::int64_t rows, Rng& rng) {
    TableWriter w(db, "service_contracts",
                  {"member_number", "service", "started_on", "ended_on", "monthly_amount_cents"},
                  o_.rows_per_transaction);
    std::vector<Value> v(5);
    for (std::int64_t i = 0; i < rows; ++i) {
      Anchor ended = date_anchor(rng, years_before(o_.as_of, 12), 350, 5, 50);
      Day until = ended.day.value_or(o_.as_of);
      v[0] = member_number(member(rng));
      v[1] = std::string(rng.chance(550) ? "housing" : "retirement");
      v[2] = day_text(day_back(rng, until - days{90}, years_before(until, 20)));
      v[3] = ended.value;
      v[4] = static_cast<std::int64_t>(5'000 + rng.below(120'000));
      w.row(v);
    }
    w.finish();
  }

  void accounts(Database& db, std::int64_t rows, Rng& rng) {
    TableWriter w(db, "accounts",
                  {"member_number", "email", "display_name", "created_at", "contract_ended_on"},
                  o_.rows_per_transaction);
    std::vector<Value> v(5);
    for (std::int64_t i = 0; i < rows; ++i) {
      // One account per member where there are enough members.
      std::int64_t m = i < members_ ? i : member(rng);
      v[0] = member_number(m);
      v[1] = email(m);
      v[2] = fmt::format("{} {}.", first_name(m), last_name(m).substr(0, 1));
      v[3] =
          datetime_text(instant_on(rng, day_back(rng, o_.as_of, years_before(o_.as_of, 10))), rng);
      v[4] = date_anchor(rng, years_before(o_.as_of, 4), 600, 5, 20).value;
      w.row(v);
    }
    w.finish();
  }

  void contact_requests(Database& db, std::int64_t rows, Rng& rng) {
    TableWriter w(db, "contact_requests", {"name", "email", "subject", "message", "received_at"},
                  o_.rows_per_transaction);
    std::vector<Value> v(5);
    for (std::int64_t i = 0; i < rows; ++i) {
      std::int64_t m = member(rng);
      v[0] = fmt::format("{} {}", first_name(m), last_name(m));
      v[1] = email(m);
      v[2] = std::string(pick(rng, kSubjects));
      v[3] = fmt::format("Bonjour, je vous écris au sujet de ma demande n° {}. Cordialement.",
                         10'000 + rng.below(90'000));
      v[4] = rng.chance(10)
                 ? Value{std::string(pick(rng, kBadDatetimes))}
                 : Value{datetime_text(
                       instant_on(rng, day_back(rng, o_.as_of, years_before(o_.as_of, 3))), rng)};
      w.row(v);
    }
    w.finish();
  }

  std::string visitor_id(Rng& rng) const {
    auto pool = static_cast<std::uint64_t>(std::max<std::int64_t>(1, o_.rows / 40));
    return fmt::format("{:016x}", (rng.below(pool) + 1) * 0x9e3779b97f4a7c15ULL);
  }

  static std::string ip(Rng& rng) {
    switch (rng.below(4)) {  // documentation ranges (RFC 5737, RFC 3849): never a real visitor
      case 0:
        return fmt::format("192.0.2.{}", 1 + rng.below(254));
      case 1:
        return fmt::format("198.51.100.{}", 1 + rng.below(254));
      case 2:
        return fmt::format("203.0.113.{}", 1 + rng.below(254));
      default:
        return fmt::format("2001:db8::{:x}:{:x}", rng.below(0x10000), rng.below(0x10000));
    }
  }

  void visits(Database& db, std::int64_t rows, Rng& rng) {
    TableWriter w(db, "visits", {"visitor_id", "ip", "user_agent", "page", "visited_at"},
                  o_.rows_per_transaction);
    std::vector<Value> v(5);
    days span = months_before(o_.as_of, 26);
    for (std::int64_t i = 0; i < rows; ++i) {
      v[0] =
          rng.chance(150) ? Value{} : Value{visitor_id(rng)};  // no audience consent: no identifier
      v[1] = ip(rng);
      v[2] = std::string(pick(rng, kUserAgents));
      v[3] = std::string(pick(rng, kPages));
      v[4] = rng.chance(10)
                 ? Value{std::string(pick(rng, kBadDatetimes))}
                 : Value{datetime_text(instant_on(rng, day_back(rng, o_.as_of, span)), rng)};
      w.row(v);
    }
    w.finish();
  }

  void cookies(Database& db, std::int64_t rows, Rng& rng) {
    TableWriter w(db, "cookies", {"visitor_id", "name", "value", "set_at"},
                  o_.rows_per_transaction);
    std::vector<Value> v(4);
    days span = months_before(o_.as_of, 26);
    for (std::int64_t i = 0; i < rows; ++i) {
      v[0] = visitor_id(rng);
      v[1] = std::string(pick(rng, kCookieNames));
      v[2] = fmt::format("{:016x}", rng.next());
      auto draw = rng.below(1000);
      if (draw < 3)
        v[3] = Value{};
      else if (draw < 5)
        v[3] = std::string("n/a");
      else
        v[3] = static_cast<std::int64_t>(
            instant_on(rng, day_back(rng, o_.as_of, span)).time_since_epoch().count());
      w.row(v);
    }
    w.finish();
  }

  const GenerateOptions& o_;
  std::int64_t members_;
};

}  // namespace

std::uint64_t Rng::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t Rng::below(std::uint64_t n) {
  // Lemire's multiply-shift: the bias (below 2^-32 for the small n used
  // here) does not matter for demo data.
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
}

std::vector<std::string> store_files() {
  std::vector<std::string> files;
  for (const auto& s : schemas()) files.emplace_back(s.file);
  return files;
}

void create_tables(const fs::path& dir) {
  fs::create_directories(dir / kRightsRequestsFolder);
  for (const auto& s : schemas()) {
    fs::path file = dir / s.file;
    if (fs::exists(file)) throw std::runtime_error(fmt::format("{} already exists", file.string()));
    Database db(file, sqlite::OpenMode::create);
    db.exec("PRAGMA journal_mode = WAL");
    for (auto sql : s.tables) db.exec(sql);
  }
}

void create_indexes(const fs::path& dir) {
  for (const auto& s : schemas()) {
    Database db(dir / s.file, sqlite::OpenMode::read_write);
    for (auto sql : s.indexes) db.exec(sql);
    db.exec("ANALYZE");
  }
}

std::vector<TableCount> generate(const fs::path& dir, const GenerateOptions& options,
                                 const std::function<void(const TableCount&)>& progress) {
  create_tables(dir);
  Generator generator(options);
  std::vector<TableCount> counts;
  std::int64_t assigned = 0;
  for (const auto& share : kShares) assigned += options.rows * share.per_mille / 1000;
  for (std::size_t i = 0; i < kShares.size(); ++i) {
    const TableShare& share = kShares[i];
    std::int64_t rows = options.rows * share.per_mille / 1000;
    if (share.table == "claims") rows += options.rows - assigned;  // the rounding remainder
    Database db(dir / share.file, sqlite::OpenMode::read_write);
    // Demo data can be made again: losing it to a power cut costs nothing.
    db.exec("PRAGMA synchronous = OFF");
    generator.fill(db, share.table, rows, i + 1);
    counts.push_back({std::string(share.file), std::string(share.table), rows});
    if (progress) progress(counts.back());
  }
  if (options.indexes) create_indexes(dir);
  std::int64_t copies = generate_rights_requests(dir, options);
  counts.push_back({std::string(kRightsRequestsFolder), "identity copies", copies});
  if (progress) progress(counts.back());
  return counts;
}

std::int64_t generate_rights_requests(const fs::path& dir, const GenerateOptions& options) {
  fs::path root = dir / kRightsRequestsFolder;
  fs::create_directories(root);
  Rng rng(options.seed * 0x9e3779b97f4a7c15ULL + 0x0a9);
  auto write = [](const fs::path& file, const std::string& text, std::chrono::sys_seconds mtime) {
    {
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out << text;
      if (!out) throw std::runtime_error(fmt::format("cannot write {}", file.string()));
    }
    struct timespec times[2];
    times[0].tv_sec = times[1].tv_sec = mtime.time_since_epoch().count();
    times[0].tv_nsec = times[1].tv_nsec = 0;
    if (::utimensat(AT_FDCWD, file.c_str(), times, 0) != 0)
      throw std::system_error(errno, std::generic_category(), "utimensat " + file.string());
  };
  std::int64_t requests = std::max<std::int64_t>(20, options.rows / 400);
  std::int64_t copies = 0;
  for (std::int64_t i = 0; i < requests; ++i) {
    // The first request is past its 3 years and frozen, the second arrived
    // today: both cases are there however small the data set.
    Day received = i == 0   ? options.as_of - years_before(options.as_of, 4)
                   : i == 1 ? options.as_of
                            : day_back(rng, options.as_of, years_before(options.as_of, 5));
    auto at = instant_on(rng, received);
    fs::path folder = root / fmt::format("request-{:06}", 100'000 + i);
    fs::create_directories(folder);
    write(folder / "request.txt",
          fmt::format("Rights request {} received {}: access to personal data.\n", 100'000 + i,
                      day_text(received)),
          at);
    int documents = rng.chance(200) ? 2 : 1;
    for (int d = 0; d < documents; ++d) {
      std::string_view kind = documents == 2 ? (d == 0 ? "recto" : "verso") : "card";
      write(folder / fmt::format("identity-{}.pdf", kind),
            fmt::format("%PDF-1.4\n% fictitious identity document, request {}, {}\n", 100'000 + i,
                        kind),
            at);
      ++copies;
    }
    if (i == 0 || rng.chance(60)) write(folder / ".hold", "disputed: kept until decided\n", at);
  }
  return copies;
}

}  // namespace retentiond::demo
