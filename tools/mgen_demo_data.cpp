// retentiond-demo-data: writes the MGEN demo data set (the SQLite stores that
// policies/mgen.yaml names) into a folder, optionally with the policy and a
// fresh HMAC key, ready for `retentiond -c DIR/policy.yaml check`. With
// --postgresql DSN the same data set goes into a PostgreSQL database instead,
// one schema per store, and the policy names those schemas.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>

#include "mgen_demo.hpp"
#include "policy/conninfo.hpp"
#include "time/anchor.hpp"
#include "util/files.hpp"

using namespace retentiond;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kDefaultRows = 20'000;
constexpr std::size_t kKeyBytes = 32;

// 32 random bytes, readable by the owner only. An existing key is kept: data
// coded under it stays comparable.
bool write_hmac_key(const fs::path& file) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw std::system_error(errno, std::generic_category(), "cannot create " + file.string());
  }
  unsigned char key[kKeyBytes];
  std::size_t got = 0;
  while (got < sizeof key) {
    ssize_t n = ::getrandom(key + got, sizeof key - got, 0);
    if (n < 0 && errno != EINTR) {
      ::close(fd);
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  bool ok = ::write(fd, key, sizeof key) == static_cast<ssize_t>(sizeof key);
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + file.string());
  return true;
}

// The files a previous run left, which --overwrite removes.
std::vector<fs::path> previous_files(const fs::path& dir) {
  std::vector<fs::path> out;
  std::vector<std::string> names = demo::store_files();
  names.emplace_back(demo::kArchiveFile);
  for (const auto& name : names) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      fs::path p = dir / (name + suffix);
      if (fs::exists(p)) out.push_back(p);
    }
  }
  if (fs::exists(dir / demo::kRightsRequestsFolder))
    out.push_back(dir / demo::kRightsRequestsFolder);
  return out;
}

// --postgresql: the data set into the database `dsn`, and with --policy the
// policy naming its schemas (and the hmac key) into `out`.
int load_postgresql(const std::string& dsn, const fs::path& out, std::uint64_t seed,
                    std::int64_t rows, Day as_of, bool write_policy, bool overwrite, bool quiet) {
  // What is printed or written names the database, never a password.
  const std::string shown = redacted_conninfo(dsn);
  const bool has_password = check_conninfo(dsn).has_password;
  fs::path policy = out / "policy.yaml";
  if (write_policy) {
    std::error_code ec;
    fs::create_directories(out, ec);
    if (fs::exists(policy) && !overwrite) {
      std::cerr << "retentiond-demo-data: " << policy.string()
                << " already exists; pass --overwrite to replace it\n";
      return 73;
    }
  }
  auto started = std::chrono::steady_clock::now();
  demo::GenerateOptions options;
  options.seed = seed;
  options.rows = rows;
  options.as_of = as_of;
  try {
    // Fails early, before anything is generated, when the server cannot be
    // reached or the data set is there already.
    auto existing = demo::existing_postgresql_schemas(dsn);
    if (!existing.empty() && !overwrite) {
      std::cerr << fmt::format(
          "retentiond-demo-data: schema '{}' already exists in the database; pass --overwrite to "
          "drop the data set's schemas ({}) first\n",
          existing.front(), fmt::join(demo::postgresql_schemas(), ", "));
      return 73;
    }
  } catch (const demo::PostgresUnavailable& e) {
    std::cerr << "retentiond-demo-data: " << e.what() << '\n';
    return 69;
  }
  if (!quiet) {
    std::cout << fmt::format("MGEN demo data in PostgreSQL {} (seed {}, as of {}):\n", shown, seed,
                             format_day(as_of));
  }
  auto report = [&](const demo::TableCount& t) {
    if (!quiet) std::cout << fmt::format("  {:<14} {:<18} {:>10} rows\n", t.file, t.table, t.rows);
  };
  demo::PostgresLoad load;
  try {
    load = demo::load_postgresql(dsn, options, overwrite, report);
  } catch (const demo::SchemaExists& e) {
    std::cerr << "retentiond-demo-data: " << e.what() << " in the database (created meanwhile)\n";
    return 73;
  } catch (const demo::PostgresUnavailable& e) {
    std::cerr << "retentiond-demo-data: " << e.what() << '\n';
    return 69;
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!quiet) {
    std::cout << fmt::format("  {} rows in {:.1f} s; {} unreadable anchor values are NULL\n", rows,
                             seconds, load.unreadable);
    std::cout << fmt::format("  schema {} left empty: the first sweep creates its table\n",
                             demo::kArchiveSchema);
  }
  if (write_policy) {
    // retentiond refuses a password in a policy: the policy gets the string
    // without it, and the password goes in a passfile.
    std::string text = demo::postgresql_policy_text(has_password ? shown : dsn);
    if (auto written = write_file_atomically(policy, text, 0644); !written) {
      std::cerr << "retentiond-demo-data: " << written.error().message << '\n';
      return 73;
    }
    bool new_key = write_hmac_key(out / "hmac.key");
    // The files store of art. 9 is a folder next to the policy, as with SQLite.
    std::int64_t copies = 0;
    try {
      if (overwrite) fs::remove_all(out / demo::kRightsRequestsFolder);
      copies = demo::generate_rights_requests(out, options);
    } catch (const std::exception& e) {
      std::cerr << "retentiond-demo-data: " << e.what() << '\n';
      return 73;
    }
    if (!quiet) {
      std::cout << fmt::format(
          "  {} written{}\n", policy.string(),
          new_key ? ", with a new hmac.key (32 random bytes, mode 0600)" : "; hmac.key kept");
      std::cout << fmt::format("  {}/: {} identity copies (files store)\n",
                               (out / demo::kRightsRequestsFolder).string(), copies);
      if (has_password) {
        std::cout << "  the policy's dsn has no password (retentiond refuses one there): give "
                     "it in a passfile (~/.pgpass or PGPASSFILE)\n";
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "retentiond-demo-data: writes the MGEN demo data set (fictitious members, affiliations, "
      "claims, memberships, "
      "contracts, personal-space accounts, contact requests, visits and cookies) as the SQLite "
      "stores that "
      "policies/mgen.yaml names. The same --seed, size and --as-of give the same data."};
  fs::path out;
  std::uint64_t seed = 1;
  std::int64_t rows = kDefaultRows;
  double scale = 1.0;
  std::string as_of_text;
  bool write_policy = false;
  bool overwrite = false;
  bool quiet = false;
  std::string dsn;
  app.add_option("--out", out,
                 "folder to write into (created if missing); with --postgresql, where --policy "
                 "writes policy.yaml and hmac.key");
  app.add_option("--postgresql", dsn,
                 "load the data set into this PostgreSQL database (a libpq connection string or "
                 "URI) instead of SQLite files: one schema per store (amo, amo_archive, mutual, "
                 "services, web), native column types");
  app.add_option("--seed", seed, "seed of the pseudo-random data")->capture_default_str();
  auto* rows_opt = app.add_option("--rows", rows, "rows over all tables")
                       ->capture_default_str()
                       ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000'000}));
  auto* scale_opt = app.add_option("--scale", scale,
                                   "multiplies the default size (20000 rows); 500 gives 10 M rows")
                        ->check(CLI::PositiveNumber);
  rows_opt->excludes(scale_opt);
  app.add_option("--as-of", as_of_text,
                 "dates spread back from this day, YYYY-MM-DD (default: today in Europe/Paris)");
  app.add_flag("--policy", write_policy,
               "also write policy.yaml (policies/mgen.yaml as built) and, if missing, a 32-byte "
               "hmac.key (mode 0600)");
  app.add_flag("--overwrite", overwrite,
               "replace the stores (and the archive) of an earlier run in --out, or with "
               "--postgresql drop the schemas of an earlier run (CASCADE)");
  app.add_flag("-q,--quiet", quiet, "print nothing but errors");
  CLI11_PARSE(app, argc, argv);
  const bool postgresql = !dsn.empty();
  if (out.empty() && (!postgresql || write_policy)) {
    std::cerr << "retentiond-demo-data: --out is required"
              << (postgresql ? " with --policy (policy.yaml and hmac.key go there)\n" : "\n");
    return 64;
  }
  if (postgresql) {
    if (auto parsed = check_conninfo(dsn); parsed.error) {
      // libpq's reason never quotes the string itself.
      std::cerr << "retentiond-demo-data: --postgresql: not a connection string: " << *parsed.error
                << '\n';
      return 64;
    }
  }

  try {
    Day as_of;
    if (as_of_text.empty()) {
      as_of = local_day(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()),
                        *date::locate_zone("Europe/Paris"));
    } else if (auto d = parse_date_text(as_of_text)) {
      as_of = *d;
    } else {
      std::cerr << "retentiond-demo-data: --as-of '" << as_of_text
                << "' is not a date; accepted: YYYY-MM-DD\n";
      return 64;
    }
    if (scale_opt->count() > 0)
      rows = std::max<std::int64_t>(1, std::llround(kDefaultRows * scale));

    if (postgresql)
      return load_postgresql(dsn, out, seed, rows, as_of, write_policy, overwrite, quiet);

    auto existing = previous_files(out);
    if (!existing.empty()) {
      if (!overwrite) {
        std::cerr << "retentiond-demo-data: " << existing.front().string()
                  << " already exists; pass --overwrite to replace the data set\n";
        return 73;
      }
      for (const auto& p : existing) fs::remove_all(p);
    }

    auto started = std::chrono::steady_clock::now();
    demo::GenerateOptions options;
    options.seed = seed;
    options.rows = rows;
    options.as_of = as_of;
    auto report = [&](const demo::TableCount& t) {
      if (!quiet)
        std::cout << fmt::format("  {:<14} {:<18} {:>10} rows\n", t.file, t.table, t.rows);
    };
    if (!quiet) {
      std::cout << fmt::format("MGEN demo data in {} (seed {}, as of {}):\n", out.string(), seed,
                               format_day(as_of));
    }
    demo::generate(out, options, report);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!quiet) std::cout << fmt::format("  {} rows in {:.1f} s\n", rows, seconds);

    if (write_policy) {
      fs::path policy = out / "policy.yaml";
      if (auto written = write_file_atomically(policy, demo::mgen_policy_text(), 0644); !written) {
        std::cerr << "retentiond-demo-data: " << written.error().message << '\n';
        return 73;
      }
      bool new_key = write_hmac_key(out / "hmac.key");
      if (!quiet) {
        std::cout << fmt::format(
            "  {} written{}\n", policy.string(),
            new_key ? ", with a new hmac.key (32 random bytes, mode 0600)" : "; hmac.key kept");
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "retentiond-demo-data: " << e.what() << '\n';
    return 73;
  }
  return 0;
}
