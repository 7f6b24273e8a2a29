// SQL functions that retentiond registers on its own SQLite connections, so
// that selection and anonymisation run inside SQLite, batch by batch, without
// fetching rows:
//   retentiond_day_date(x), retentiond_day_datetime(x), retentiond_day_unixepoch(x)
//       the local day (days since 1970-01-01) of an anchor, or NULL when undated
//   retentiond_hmac(x)   hex HMAC-SHA256 of x's text under the policy's key
//   retentiond_year(x), retentiond_month(x)   a date kept only to its year / month
//   retentiond_truthy(x) 1 when a hold column holds something that means yes
#pragma once

#include <date/tz.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "stores/sqlite/sqlite.hpp"
#include "time/anchor.hpp"

namespace retentiond {

struct SqlFunctionContext {
  const date::time_zone* zone = nullptr;
  std::string hmac_key;

  // The last text anchor read per format, and its day: rows read in anchor
  // order repeat the same text hundreds of times. Only for connections used
  // from one thread, as a sweep uses them.
  struct LastDay {
    std::string text;
    std::optional<std::int64_t> day;
    bool set = false;
  };
  mutable LastDay last_day[3];
};

// `context` must outlive the connection's use of the functions.
void register_sql_functions(sqlite::Database& db, const SqlFunctionContext& context);

// The SQL function that reads anchors of `format`.
std::string_view day_function(AnchorFormat format);

}  // namespace retentiond
