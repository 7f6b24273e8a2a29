#include "stores/sqlite/sqlite_functions.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cctype>

#include "util/digest.hpp"

namespace retentiond {
namespace {

AnchorValue read_value(sqlite3_value* v) {
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
      return static_cast<std::int64_t>(sqlite3_value_int64(v));
    case SQLITE_FLOAT:
      return sqlite3_value_double(v);
    case SQLITE_TEXT:
      return std::string(reinterpret_cast<const char*>(sqlite3_value_text(v)),
                         static_cast<std::size_t>(sqlite3_value_bytes(v)));
    case SQLITE_BLOB:
      return Blob{};
    default:
      return std::monostate{};
  }
}

template <AnchorFormat F>
void day_of(sqlite3_context* ctx, int, sqlite3_value** argv) {
  auto* c = static_cast<const SqlFunctionContext*>(sqlite3_user_data(ctx));
  std::optional<std::int64_t> result;
  if (sqlite3_value_type(argv[0]) == SQLITE_TEXT) {
    std::string_view text(reinterpret_cast<const char*>(sqlite3_value_text(argv[0])),
                          static_cast<std::size_t>(sqlite3_value_bytes(argv[0])));
    auto& last = c->last_day[static_cast<int>(F)];
    if (!last.set || last.text != text) {
      auto day = anchor_day(AnchorValue{std::string(text)}, F, *c->zone);
      last.text.assign(text);
      last.day = day ? std::optional<std::int64_t>(day->time_since_epoch().count()) : std::nullopt;
      last.set = true;
    }
    result = last.day;
  } else if (auto day = anchor_day(read_value(argv[0]), F, *c->zone)) {
    result = day->time_since_epoch().count();
  }
  if (!result) {
    sqlite3_result_null(ctx);
    return;
  }
  sqlite3_result_int64(ctx, *result);
}

std::string text_of(sqlite3_value* v) {
  const unsigned char* p = sqlite3_value_text(v);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_value_bytes(v)))
           : "";
}

void hmac(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  auto* c = static_cast<const SqlFunctionContext*>(sqlite3_user_data(ctx));
  std::string input;
  if (sqlite3_value_type(argv[0]) == SQLITE_BLOB) {
    auto* p = static_cast<const char*>(sqlite3_value_blob(argv[0]));
    input.assign(p ? p : "", static_cast<std::size_t>(sqlite3_value_bytes(argv[0])));
  } else {
    input = text_of(argv[0]);  // integers as their decimal text
  }
  std::string out = hmac_sha256_hex(c->hmac_key, input);
  sqlite3_result_text(ctx, out.data(), static_cast<int>(out.size()), SQLITE_TRANSIENT);
}

// Keeps "YYYY" (year) or "YYYY-MM" (month) of a date or datetime text; an
// integer is read as unixepoch and kept as the first second of its UTC year or
// month. A value that is already reduced stays as it is; one that cannot be
// read as a date is removed (NULL): anonymisation must not keep what it cannot
// make coarser.
template <bool Month>
void coarsen(sqlite3_context* ctx, int, sqlite3_value** argv) {
  using namespace date;
  sqlite3_value* v = argv[0];
  int type = sqlite3_value_type(v);
  if (type == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  if (type == SQLITE_INTEGER) {
    sys_seconds t{std::chrono::seconds{sqlite3_value_int64(v)}};
    year_month_day ymd{floor<days>(t)};
    year_month_day first = Month ? ymd.year() / ymd.month() / 1 : ymd.year() / January / 1;
    sqlite3_result_int64(ctx, sys_seconds{sys_days{first}}.time_since_epoch().count());
    return;
  }
  std::string s = text_of(v);
  auto digit = [&](std::size_t i) {
    return i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]));
  };
  bool has_year = digit(0) && digit(1) && digit(2) && digit(3);
  bool has_month = has_year && s.size() >= 7 && s[4] == '-' && digit(5) && digit(6);
  std::size_t keep = Month ? 7 : 4;
  if (type == SQLITE_TEXT && (Month ? has_month : has_year)) {
    std::string out = s.substr(0, keep);
    sqlite3_result_text(ctx, out.data(), static_cast<int>(out.size()), SQLITE_TRANSIENT);
    return;
  }
  sqlite3_result_null(ctx);
}

// A hold must err on the side of keeping: anything but NULL, 0, empty text
// and the usual words for "no" holds the row.
void truthy(sqlite3_context* ctx, int, sqlite3_value** argv) {
  sqlite3_value* v = argv[0];
  switch (sqlite3_value_type(v)) {
    case SQLITE_NULL:
      sqlite3_result_int(ctx, 0);
      return;
    case SQLITE_INTEGER:
      sqlite3_result_int(ctx, sqlite3_value_int64(v) != 0);
      return;
    case SQLITE_FLOAT:
      sqlite3_result_int(ctx, sqlite3_value_double(v) != 0.0);
      return;
    case SQLITE_BLOB:
      sqlite3_result_int(ctx, sqlite3_value_bytes(v) != 0);
      return;
    default:
      break;
  }
  std::string s = text_of(v);
  std::string lower;
  for (char ch : s) {
    if (!std::isspace(static_cast<unsigned char>(ch)))
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  bool no = lower.empty() || lower == "0" || lower == "false" || lower == "f" || lower == "no" ||
            lower == "n" || lower == "off";
  sqlite3_result_int(ctx, no ? 0 : 1);
}

void add(sqlite::Database& db, const char* name, void (*fn)(sqlite3_context*, int, sqlite3_value**),
         const SqlFunctionContext& context) {
  int rc = sqlite3_create_function_v2(
      db.handle(), name, 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
      const_cast<SqlFunctionContext*>(&context), fn, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK)
    throw sqlite::SqliteError(rc, fmt::format("cannot register SQL function {}", name));
}

}  // namespace

std::string_view day_function(AnchorFormat format) {
  switch (format) {
    case AnchorFormat::date:
      return "retentiond_day_date";
    case AnchorFormat::datetime:
      return "retentiond_day_datetime";
    case AnchorFormat::unixepoch:
      return "retentiond_day_unixepoch";
  }
  return "";
}

void register_sql_functions(sqlite::Database& db, const SqlFunctionContext& context) {
  add(db, "retentiond_day_date", day_of<AnchorFormat::date>, context);
  add(db, "retentiond_day_datetime", day_of<AnchorFormat::datetime>, context);
  add(db, "retentiond_day_unixepoch", day_of<AnchorFormat::unixepoch>, context);
  add(db, "retentiond_hmac", hmac, context);
  add(db, "retentiond_year", coarsen<false>, context);
  add(db, "retentiond_month", coarsen<true>, context);
  add(db, "retentiond_truthy", truthy, context);
}

}  // namespace retentiond
