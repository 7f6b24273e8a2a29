// Stores of kind files (docs/files.md), what only files have: globs, dates
// in names, mtimes in winter, hold files and hold lists, safety (links,
// special files, nothing outside the root), archive on one filesystem and
// across two, the intent-file outbox, kill -9 in the middle of an archive,
// and memory. The guarantees every kind gives (boundary days, holds, undated,
// stages, idempotence, dry runs, conflicts, report and audit) are the
// conformance tests', run on files too (tests/conformance_test.cpp).
#include "stores/files/files_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "stores/files/files_outbox.hpp"
#include "stores/files/hold_list.hpp"
#include "stores/files/name_date.hpp"
#include "sweep_support.hpp"
#include "util/digest.hpp"
#include "util/glob.hpp"

using namespace retentiond;
using namespace retentiond::test;
namespace fs = std::filesystem;

namespace {

// "2023-06-14 23:30" (UTC) as an instant.
std::chrono::sys_seconds at(std::string_view utc_text) {
  auto t = parse_datetime_text(utc_text);
  if (!t) throw std::invalid_argument("not a time: " + std::string(utc_text));
  return *t;
}

void set_times(const fs::path& file, std::chrono::sys_seconds mtime,
               std::optional<std::chrono::sys_seconds> atime = std::nullopt) {
  struct timespec times[2];
  times[0].tv_sec = (atime ? *atime : mtime).time_since_epoch().count();
  times[1].tv_sec = mtime.time_since_epoch().count();
  times[0].tv_nsec = times[1].tv_nsec = 0;
  if (::utimensat(AT_FDCWD, file.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    throw std::system_error(errno, std::generic_category(), "utimensat " + file.string());
}

// Writes root/rel (folders made) with `content` and modification time `mtime`.
fs::path put(const fs::path& root, std::string_view rel, std::string_view content,
             std::chrono::sys_seconds mtime, mode_t mode = 0640) {
  fs::path file = root / rel;
  fs::create_directories(file.parent_path());
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + file.string());
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = ::fchmod(fd, mode) == 0 && ok;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + file.string());
  set_times(file, mtime);
  return file;
}

// The regular files under `root`, relative, as lstat sees them.
std::set<std::string> files_under(const fs::path& root) {
  std::set<std::string> out;
  if (!fs::exists(root)) return out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->is_symlink()) continue;
    if (it->is_regular_file()) out.insert(fs::relative(it->path(), root).string());
  }
  return out;
}

std::set<std::string> folders_under(const fs::path& root) {
  std::set<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    if (!it->is_symlink() && it->is_directory())
      out.insert(fs::relative(it->path(), root).string());
  }
  return out;
}

struct Meta {
  mode_t mode;
  uid_t uid;
  off_t size;
  ino_t ino;
  nlink_t nlink;
  std::int64_t mtime_ns, atime_ns, ctime_ns;
  bool operator==(const Meta&) const = default;
};
std::int64_t ns(const struct timespec& t) { return t.tv_sec * 1'000'000'000LL + t.tv_nsec; }

// Every entry under `root` (files, links, FIFOs, folders) with its full
// metadata; folders without their access time, which listing may set.
std::map<std::string, Meta> snapshot(const fs::path& root) {
  std::map<std::string, Meta> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st {};
    REQUIRE(::lstat(it->path().c_str(), &st) == 0);
    bool folder = S_ISDIR(st.st_mode);
    out[fs::relative(it->path(), root).string()] = {st.st_mode,
                                                    st.st_uid,
                                                    st.st_size,
                                                    st.st_ino,
                                                    st.st_nlink,
                                                    ns(st.st_mtim),
                                                    folder ? 0 : ns(st.st_atim),
                                                    ns(st.st_ctim)};
  }
  return out;
}

struct stat lstat_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st;
}

// A policy: `stores` and `rules` under the usual head.
std::string policy_text(std::string_view stores, std::string_view rules, int batch_size = 1000) {
  return fmt::format(R"(version: 1
timezone: Europe/Paris
batch_size: {}
stores:
{}
rules:
{})",
                     batch_size, stores, rules);
}

constexpr std::string_view kTreeStore = "  tree: { kind: files, root: tree }\n";

// One delete rule on store `tree`.
std::string delete_rule(std::string_view pattern, std::string_view extra = "",
                        std::string_view anchor = "mtime", std::string_view name = "docs") {
  return fmt::format(R"(  - name: {}
    store: tree
    pattern: "{}"
    anchor: {}
{}    keep_for: 3 years
    action: delete
)",
                     name, pattern, anchor, extra);
}

std::string sweep_log(const Sweep& s) { return s.log_text.str(); }

}  // namespace

TEST_CASE("globs: * ? [...] and **, case-sensitive, * not crossing '/', dot files matched",
          "[files]") {
  struct Case {
    std::string pattern, path;
    bool matches;
  };
  std::vector<Case> cases{
      {"*/identity-*.pdf", "r1/identity-card.pdf", true},
      {"*/identity-*.pdf", "identity-card.pdf", false},
      {"*/identity-*.pdf", "a/b/identity-card.pdf", false},  // * does not cross '/'
      {"*/identity-*.pdf", "r1/identity-.pdf", true},
      {"*.pdf", ".hidden.pdf", true},  // a leading dot, as find -name
      {"*", ".hold", true},
      {"*/*", ".a/.b", true},
      {"*.PDF", "a.pdf", false},  // case-sensitive
      {"*.pdf", "a.PDF", false},
      {"?.txt", "a.txt", true},
      {"?.txt", "ab.txt", false},
      {"?.txt", ".txt", false},
      {"?.txt", "é.txt", true},  // one character, two bytes
      {"[abc].txt", "b.txt", true},
      {"[abc].txt", "d.txt", false},
      {"[!abc].txt", "d.txt", true},
      {"[!abc].txt", "a.txt", false},
      {"[^a-c].txt", "d.txt", true},
      {"[^a-c].txt", "b.txt", false},
      {"[a-z]*", "Zed", false},
      {"[0-9][0-9]", "42", true},
      {"[]]x", "]x", true},
      {"[a-]x", "-x", true},
      {"\\*.txt", "*.txt", true},
      {"\\*.txt", "a.txt", false},
      {"a*b*c", "aXbYc", true},
      {"a*b*c", "abc", true},
      {"a*b*c", "acb", false},
      {"**/*.pdf", "x.pdf", true},  // ** matches no folder too
      {"**/*.pdf", "a/b/c/x.pdf", true},
      {"a/**/b.pdf", "a/b.pdf", true},
      {"a/**/b.pdf", "a/x/y/b.pdf", true},
      {"a/**/b.pdf", "b.pdf", false},
      {"a/**/b.pdf", "c/a/b.pdf", false},
      {"a/**", "a/x", true},
      {"a/**", "a/x/y", true},
      {"a/**", "b/x", false},
      {"**", "any/depth/at/all", true},
      {"**/2024/*/*.pdf", "archive/2024/03/x.pdf", true},
      {"**/2024/*/*.pdf", "archive/2023/03/x.pdf", false},
      {"x**y", "xay", true},  // ** inside a name is two stars
      {"x**y", "xa/y", false},
  };
  for (const auto& c : cases) {
    INFO(c.pattern << " vs " << c.path);
    auto g = Glob::compile(c.pattern);
    REQUIRE(g);
    CHECK(g->matches(c.path) == c.matches);
  }
  for (const char* bad : {"", "/srv/x/*.pdf", "a/../b", "..", "../x", "./a", "a/./b", "a//b", "a/",
                          "[abc", "a\\", "[z-a]"}) {
    INFO("pattern '" << bad << "'");
    auto g = Glob::compile(bad);
    REQUIRE_FALSE(g);
    CHECK_THAT(g.error(), Catch::Contains("accepted"));
  }
  // A walk never opens a folder the pattern cannot reach.
  auto g = Glob::compile("2024/*/scan-*.pdf");
  REQUIRE(g);
  CHECK(g->enter(g->start(), "2023").empty());
  auto in_2024 = g->enter(g->start(), "2024");
  CHECK_FALSE(in_2024.empty());
  auto in_month = g->enter(in_2024, "03");
  CHECK_FALSE(g->may_descend(in_month));
  CHECK(g->matches_file(in_month, "scan-1.pdf"));
  CHECK_FALSE(g->matches_file(in_2024, "scan-1.pdf"));
}

TEST_CASE(
    "name dates: YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD; longer digit runs and impossible dates "
    "are not dates",
    "[files]") {
  auto d = [](std::string_view path) -> std::string {
    auto day = first_date_in_path(path);
    return day ? format_day(*day) : "undated";
  };
  CHECK(d("2015-02-03/scan.pdf") == "2015-02-03");
  CHECK(d("scans/2015/02/03/x.pdf") == "2015-02-03");
  CHECK(d("x-20150203.pdf") == "2015-02-03");
  CHECK(d("x_20150203_v2.pdf") == "2015-02-03");
  CHECK(d("v2/2015-02-03") == "2015-02-03");
  CHECK(d("a-120150203.pdf") == "undated");   // nine digits
  CHECK(d("a-2015020311.pdf") == "undated");  // ten digits
  CHECK(d("2015-02-031.pdf") == "undated");   // the day runs on
  CHECK(d("12015-02-03.pdf") == "undated");   // the year is part of a longer run
  CHECK(d("2015-002-03.pdf") == "undated");
  CHECK(d("2015-02/03.pdf") == "undated");  // separators must agree
  CHECK(d("2015-02-30.pdf") == "undated");  // impossible
  CHECK(d("20150230.pdf") == "undated");
  CHECK(d("2015-13-01.pdf") == "undated");
  CHECK(d("2015-00-10.pdf") == "undated");
  CHECK(d("2015-02-29.pdf") == "undated");
  CHECK(d("2016-02-29.pdf") == "2016-02-29");             // a leap day
  CHECK(d("2015-02-30/2016-01-02.pdf") == "2016-01-02");  // the first valid one
  CHECK(d("20150230-20160102") == "2016-01-02");
  CHECK(d("2019-01-01/2020-01-01.pdf") == "2019-01-01");
  CHECK(d("no date here.pdf") == "undated");
  CHECK(d("") == "undated");
}

// The summer boundary (Paris, UTC+2) and the day before expiry kept, the day
// itself acted on, for modification times as for every anchor: the
// conformance tests (tests/conformance_test.cpp, "(files)").
TEST_CASE("mtime anchors are read in the policy's zone: in winter Paris is UTC+1", "[files]") {
  TempDir w;
  fs::path t = w / "tree";
  put(t, "x/due.pdf", "a", at("2023-01-10 22:59"));   // 23:59 in Paris on the 10th
  put(t, "x/kept.pdf", "b", at("2023-01-10 23:00"));  // 00:00 on the 11th
  auto p = write_policy(w, policy_text(kTreeStore, delete_rule("**/*.pdf")));
  Sweep ws(w, "2026-06-16");
  auto r = ws.run(*p, "2026-01-10", true);
  CHECK(entry(r.report, "docs").cutoff == "2023-01-10");
  CHECK(entry(r.report, "docs").counts.matched == 1);
  CHECK(entry(ws.run(*p, "2026-01-11", true).report, "docs").counts.matched == 2);
}

TEST_CASE("name anchors: the first valid date in the relative path; none is undated", "[files]") {
  TempDir dir;
  fs::path tree = dir / "tree";
  auto now = at("2026-06-01 12:00");  // mtimes are not what counts here
  put(tree, "scans/2023-06-15-id.pdf", "a", now);
  put(tree, "scans/2023/06/16/id.pdf", "b", now);
  put(tree, "scans/id-20230614.pdf", "c", now);
  put(tree, "scans/id-2023-02-30.pdf", "d", now);  // impossible: undated
  put(tree, "scans/id-1202306140.pdf", "e", now);  // a longer run: undated
  put(tree, "scans/id.pdf", "f", now);
  auto policy = write_policy(dir, policy_text(kTreeStore, delete_rule("scans/**", "", "name")));
  Sweep s(dir, "2026-06-16");
  auto plan = s.run(*policy, "2026-06-15", true);
  CHECK(entry(plan.report, "docs").counts.matched == 2);
  CHECK(entry(plan.report, "docs").counts.undated == 3);
  CHECK(entry(plan.report, "docs").table == "scans/**");  // the report's table is the pattern
  auto swept = s.run(*policy, "2026-06-15");
  CHECK(entry(swept.report, "docs").counts.affected == 2);
  CHECK(files_under(tree) == std::set<std::string>{"scans/2023/06/16/id.pdf",
                                                   "scans/id-2023-02-30.pdf",
                                                   "scans/id-1202306140.pdf", "scans/id.pdf"});
  // The audit entry's digest is the Merkle root of the relative paths acted
  // on (that they never appear in clear: the conformance tests).
  auto lines = audit_lines(s.state_dir());
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].at("affected") == 2);
  CHECK(lines[0].at("keys_sha256") ==
        keys_root(s.state_dir(), {"scans/2023-06-15-id.pdf", "scans/id-20230614.pdf"}));
}

TEST_CASE("hold files hold their folder and everything below it", "[files]") {
  TempDir dir;
  fs::path tree = dir / "tree";
  auto old = at("2019-03-01 10:00");
  put(tree, "r1/identity.pdf", "a", old);
  put(tree, "r1/.hold", "", old);
  put(tree, "r2/scans/identity.pdf", "b", old);
  put(tree, "r2/.hold", "disputed", old);
  put(tree, "r3/identity.pdf", "c", old);
  put(tree, "r4/deeper/.hold", "", old);  // below the file: holds nothing of r4
  put(tree, "r4/identity.pdf", "d", old);
  auto policy = write_policy(
      dir, policy_text(kTreeStore, delete_rule("**/identity.pdf", "    hold: { file: .hold }\n")));
  Sweep s(dir);
  auto plan = s.run(*policy, "2026-06-15", true);
  CHECK(entry(plan.report, "docs").counts.matched == 2);
  CHECK(entry(plan.report, "docs").counts.held == 2);
  auto swept = s.run(*policy, "2026-06-15");
  CHECK(entry(swept.report, "docs").counts.affected == 2);
  CHECK(entry(swept.report, "docs").counts.held == 2);
  CHECK(files_under(tree) == std::set<std::string>{"r1/identity.pdf", "r1/.hold",
                                                   "r2/scans/identity.pdf", "r2/.hold",
                                                   "r4/deeper/.hold"});

  SECTION("a hold file at the root holds the whole tree") {
    put(tree, ".hold", "", old);
    put(tree, "r5/identity.pdf", "e", old);
    auto again = s.run(*policy, "2026-06-15");
    CHECK(entry(again.report, "docs").counts.affected == 0);
    CHECK(entry(again.report, "docs").counts.held == 3);
    CHECK(fs::exists(tree / "r5/identity.pdf"));
  }
}

TEST_CASE("a hold list holds paths, globs and folders; one it cannot read ends the rule with 69",
          "[files]") {
  TempDir dir;
  fs::path tree = dir / "tree";
  auto old = at("2019-03-01 10:00");
  for (const char* rel : {"r1/identity.pdf", "r1/other.pdf", "r2/identity.pdf", "r3/a/identity.pdf",
                          "r4/sub/identity.pdf", "r5/identity.pdf", "r6/x y.pdf"}) {
    put(tree, rel, rel, old);
  }
  dir.write("holds.txt", R"(# requests under dispute
r1/identity.pdf
r2/*.pdf
  r3
./r4/sub/

# a name with a space
r6/x y.pdf
)");
  std::string rules = delete_rule("**/*.pdf", "    hold: { list: holds.txt }\n");
  auto policy = write_policy(dir, policy_text(kTreeStore, rules));
  Sweep s(dir);
  auto swept = s.run(*policy, "2026-06-15");
  INFO(sweep_log(s));
  CHECK(entry(swept.report, "docs").counts.affected == 2);
  CHECK(entry(swept.report, "docs").counts.held == 5);
  CHECK(files_under(tree) == std::set<std::string>{"r1/identity.pdf", "r2/identity.pdf",
                                                   "r3/a/identity.pdf", "r4/sub/identity.pdf",
                                                   "r6/x y.pdf"});

  auto binary_sweep = [&](std::string_view list_value) {
    TempDir d;
    put(d / "tree", "r1/identity.pdf", "a", old);
    d.write("policy.yaml",
            policy_text(
                kTreeStore,
                delete_rule("**/*.pdf", fmt::format("    hold: {{ list: {} }}\n", list_value))));
    auto out = run_retentiond(d, {"-c", (d / "policy.yaml").string(), "--state-dir",
                                  (d / "state").string(), "sweep", "--as-of", "2026-06-15"});
    CHECK(fs::exists(d / "tree/r1/identity.pdf"));  // never "no holds"
    auto checked = run_retentiond(
        d, {"-c", (d / "policy.yaml").string(), "--state-dir", (d / "state").string(), "check"});
    CHECK(checked.exit_code == 69);
    return out;
  };
  SECTION("a missing list") {
    auto out = binary_sweep("missing.txt");
    CHECK(out.exit_code == 69);
    CHECK_THAT(out.err, Catch::Contains("missing.txt"));
  }
  SECTION("a list that is a folder") {
    auto out = binary_sweep("tree");
    CHECK(out.exit_code == 69);
  }
  SECTION("a line reaching outside the root") {
    TempDir d;
    d.write("bad.txt", "ok/path\n../../etc/passwd\n");
    CHECK_THROWS_AS(files::HoldList::read(d / "bad.txt"), StoreError);
    try {
      files::HoldList::read(d / "bad.txt");
    } catch (const StoreError& e) {
      CHECK_THAT(std::string(e.what()), Catch::Contains("line 2"));
    }
  }
}

TEST_CASE("symbolic links are never followed nor acted on, inside or outside the root", "[files]") {
  TempDir dir;
  fs::path tree = dir / "tree";
  fs::path outside = dir / "outside";
  auto old = at("2019-03-01 10:00");
  put(tree, "r1/identity.pdf", "regular", old);
  put(outside, "secret.pdf", "outside the root", old);
  put(outside, "dir/identity.pdf", "in a folder outside", old);
  put(tree, "r1/target.txt", "inside, not matched", old);
  fs::create_directories(tree / "r2");
  fs::create_symlink(outside / "secret.pdf", tree / "r1/link-out.pdf");  // to a file outside
  fs::create_symlink("target.txt", tree / "r1/link-in.pdf");             // to a file inside
  fs::create_symlink(outside / "dir", tree / "r2/linked-dir");           // to a folder outside
  fs::create_symlink(tree / "r1", tree / "r3");                          // to a folder inside
  auto before_outside = snapshot(outside);
  auto target_before = lstat_of(tree / "r1/target.txt");

  for (std::string_view action : {"delete", "archive"}) {
    DYNAMIC_SECTION(action) {
      std::string stores = std::string(kTreeStore) + "  shelf: { kind: files, root: shelf }\n";
      std::string rule = R"(  - name: docs
    store: tree
    pattern: "**/*.pdf"
    anchor: mtime
    keep_for: 3 years
    action: ACTION
)";
      rule.replace(rule.find("ACTION"), 6,
                   action == "archive" ? "archive\n    to: shelf" : "delete");
      auto policy = write_policy(dir, policy_text(stores, rule));
      Sweep s(dir);
      auto swept = s.run(*policy, "2026-06-15");
      INFO(sweep_log(s));
      CHECK(swept.code == ExitCode::ok);
      // Only the regular file counts; the links match the pattern and are not counted at all.
      CHECK(entry(swept.report, "docs").counts.matched == 1);
      CHECK(entry(swept.report, "docs").counts.affected == 1);
      CHECK_FALSE(fs::exists(tree / "r1/identity.pdf"));
      for (const char* link : {"r1/link-out.pdf", "r1/link-in.pdf", "r2/linked-dir", "r3"})
        CHECK(fs::is_symlink(tree / link));
      CHECK(snapshot(outside) == before_outside);
      CHECK(read_file(outside / "secret.pdf") == "outside the root");
      auto target_after = lstat_of(tree / "r1/target.txt");
      CHECK(target_after.st_ino == target_before.st_ino);
      CHECK(ns(target_after.st_mtim) == ns(target_before.st_mtim));
      if (action == "archive") {
        CHECK(files_under(dir / "shelf") == std::set<std::string>{"r1/identity.pdf"});
        CHECK(read_file(dir / "shelf/r1/identity.pdf") == "regular");
      }
    }
  }
}

TEST_CASE("FIFOs and device nodes that match the pattern are left alone and not counted",
          "[files]") {
  TempDir dir;
  fs::path tree = dir / "tree";
  auto old = at("2019-03-01 10:00");
  put(tree, "r1/identity.pdf", "regular", old);
  REQUIRE(::mkfifo((tree / "r1/identity-fifo.pdf").c_str(), 0600) == 0);
  bool device =
      ::mknod((tree / "r1/identity-dev.pdf").c_str(), S_IFCHR | 0600, ::makedev(1, 3)) == 0;
  if (!device) WARN("no device node: mknod is not allowed here (" << std::strerror(errno) << ")");
  set_times(tree / "r1/identity-fifo.pdf", old);
  auto policy = write_policy(dir, policy_text(kTreeStore, delete_rule("**/identity*.pdf")));
  Sweep s(dir);
  // A FIFO opened for reading would block the sweep forever: it is never opened.
  auto swept = s.run(*policy, "2026-06-15");
  CHECK(entry(swept.report, "docs").counts.matched == 1);
  CHECK(entry(swept.report, "docs").counts.affected == 1);
  CHECK(S_ISFIFO(lstat_of(tree / "r1/identity-fifo.pdf").st_mode));
  if (device) CHECK(S_ISCHR(lstat_of(tree / "r1/identity-dev.pdf").st_mode));
}

TEST_CASE("files policies: what the loader refuses (78), naming the line", "[files]") {
  TempDir dir;
  auto refused = [&](std::string_view stores, std::string_view rules, std::string_view says) {
    auto file = dir.write("policy.yaml", policy_text(stores, rules));
    auto p = load_policy(file);
    INFO(policy_text(stores, rules));
    REQUIRE_FALSE(p);
    CHECK(p.error().code == ExitCode::config);
    CHECK_THAT(p.error().message, Catch::Contains(file.string() + ":"));
    CHECK_THAT(p.error().message, Catch::Contains(std::string(says)));
    return p.error().message;
  };
  std::string shelf = std::string(kTreeStore) + "  shelf: { kind: files, root: shelf }\n";
  refused(kTreeStore, delete_rule("../x/*.pdf"), "'..'");
  refused(kTreeStore, delete_rule("r/../../x.pdf"), "'..'");
  refused(kTreeStore, delete_rule("/srv/x/*.pdf"), "absolute");
  refused(kTreeStore, delete_rule("[abc"), "'['");
  refused(kTreeStore, delete_rule("*.pdf", "    table: docs\n"), "'table' goes with tables");
  refused(kTreeStore, delete_rule("*.pdf", "    key: id\n"), "'key' goes with tables");
  refused(kTreeStore, delete_rule("*.pdf", "    where: { a: 1 }\n"), "'where' goes with tables");
  refused(kTreeStore, delete_rule("*.pdf", "    anchor_format: date\n"), "'anchor_format'");
  refused(kTreeStore, delete_rule("*.pdf", "", "ctime"), "accepted: mtime");
  refused(kTreeStore, delete_rule("*.pdf", "    hold: { column: held }\n"), "go with tables");
  refused(kTreeStore, delete_rule("*.pdf", "    hold: { file: a/.hold }\n"), "not a file name");
  refused(kTreeStore, delete_rule("*.pdf", "    remove_empty_folders: maybe\n"), "true or false");
  refused("  tree: { kind: files, root: tree, pattern: \"*.pdf\" }\n", delete_rule("*.pdf"),
          "unknown key 'pattern'");
  refused(kTreeStore, R"(  - name: docs
    store: tree
    pattern: "*.pdf"
    anchor: mtime
    keep_for: 3 years
    action: anonymize
)",
          "files cannot be anonymised");
  refused(kTreeStore, R"(  - name: docs
    store: tree
    anchor: mtime
    keep_for: 3 years
    action: delete
)",
          "no 'pattern'");
  refused("  tree: { kind: files, root: tree }\n  inner: { kind: files, root: tree/archive }\n",
          R"(  - name: docs
    store: tree
    pattern: "*.pdf"
    anchor: mtime
    keep_for: 3 years
    action: archive
    to: inner
)",
          "one inside the other");
  refused("  tree: { kind: files, root: a/tree }\n  outer: { kind: files, root: a }\n",
          R"(  - name: docs
    store: tree
    pattern: "*.pdf"
    anchor: mtime
    keep_for: 3 years
    action: archive
    to: outer
)",
          "one inside the other");
  refused("  db: { kind: sqlite, path: db.sqlite }\n", R"(  - name: docs
    store: db
    table: docs
    key: id
    anchor: made_on
    pattern: "*.pdf"
    keep_for: 3 years
    action: delete
)",
          "'pattern' goes with files stores");
  refused("  db: { kind: sqlite, path: db.sqlite }\n", R"(  - name: docs
    store: db
    table: docs
    key: id
    anchor: made_on
    hold: { file: .hold }
    keep_for: 3 years
    action: delete
)",
          "go with rules on files stores");

  // What it accepts, and how it reads it.
  auto file = dir.write("policy.yaml", policy_text(shelf, R"(  - name: docs
    store: tree
    pattern: "*/identity-*.pdf"
    anchor: name
    hold: { list: lists/holds.txt }
    remove_empty_folders: true
    stages:
      - after: 3 years
        action: archive
        to: shelf
      - after: 13 years
        action: delete
)"));
  auto p = load_policy(file);
  INFO((p ? "" : p.error().message));
  REQUIRE(p);
  const Rule& r = (*p)->rules.at(0);
  REQUIRE(r.files);
  CHECK(r.table == "*/identity-*.pdf");
  CHECK(r.files->anchor == FileAnchor::name);
  CHECK(r.files->remove_empty_folders);
  REQUIRE(r.files->hold);
  CHECK(std::get<HoldByList>(*r.files->hold).list == dir / "lists/holds.txt");
  CHECK((*p)->find_store("shelf")->root == dir / "shelf");

  // The binary: 78 and the line.
  dir.write("bad.yaml", policy_text(kTreeStore, delete_rule("a/../../etc/*")));
  auto out = run_retentiond(dir, {"-c", (dir / "bad.yaml").string(), "check"});
  CHECK(out.exit_code == 78);
  CHECK_THAT(out.err, Catch::Contains("bad.yaml:10:14:"));
}

// A dry run changes no file, its access time included, and makes no
// archive: the conformance tests (tests/conformance_test.cpp, "(files)").

namespace {

// A stage's archive from `live` to `shelf`; checks what each moved file kept.
void check_archive_between(const fs::path& live, const fs::path& shelf, bool same_filesystem) {
  TempDir dir;
  auto old = at("2021-03-01 10:00");    // past 3 years, not 13
  auto older = at("2010-03-01 10:00");  // past 13 years: deleted, never archived
  auto moved = put(live, "req-1/identity-card.pdf", "card 1", old, 0640);
  put(live, "req-1/request.txt", "not matched", old);
  put(live, "req-2/scans/identity-recto.pdf", "recto 2", old, 0600);
  put(live, "req-3/identity-card.pdf", "very old", older);
  put(live, "req-4/identity-card.pdf", "recent", at("2026-01-01 10:00"));
  ::chmod((live / "req-2").c_str(), 0750);
  auto moved_before = lstat_of(moved);
  dir.write("policy.yaml",
            policy_text(fmt::format("  live: {{ kind: files, root: {} }}\n  shelf: {{ kind: files, "
                                    "root: {} }}\n",
                                    live.string(), shelf.string()),
                        R"(  - name: ids
    store: live
    pattern: "**/identity-*.pdf"
    anchor: mtime
    stages:
      - after: 3 years
        action: archive
        to: shelf
      - after: 13 years
        action: delete
)"));
  auto policy = load_policy(dir / "policy.yaml");
  REQUIRE(policy);
  Sweep s(dir);
  auto swept = s.run(**policy, "2026-06-15");
  INFO(sweep_log(s));
  REQUIRE(swept.code == ExitCode::ok);
  CHECK(entry(swept.report, "ids", 1).counts.affected == 2);
  CHECK(entry(swept.report, "ids", 2, "live").counts.affected == 1);
  CHECK(files_under(live) == std::set<std::string>{"req-1/request.txt", "req-4/identity-card.pdf"});
  CHECK(files_under(shelf) ==
        std::set<std::string>{"req-1/identity-card.pdf", "req-2/scans/identity-recto.pdf"});
  auto a = lstat_of(shelf / "req-1/identity-card.pdf");
  CHECK(read_file(shelf / "req-1/identity-card.pdf") == "card 1");
  CHECK(ns(a.st_mtim) == ns(moved_before.st_mtim));
  CHECK((a.st_mode & 07777) == 0640);
  CHECK((lstat_of(shelf / "req-2/scans/identity-recto.pdf").st_mode & 07777) == 0600);
  CHECK((a.st_ino == moved_before.st_ino) == same_filesystem);  // a rename keeps the inode
  if (!same_filesystem) {
    CHECK((lstat_of(shelf / "req-2").st_mode & 07777) == 0750);  // folders made like the live ones
  }
  for (const auto& entry_path : fs::recursive_directory_iterator(shelf))
    CHECK_FALSE(entry_path.path().filename().string().starts_with(".retentiond-tmp"));
  CHECK(fs::is_empty(dir / "state/outbox-files"));
  CHECK(audit_affected_total(s.state_dir()) == 3);

  // The archive's own stage, held by the live tree's hold files: the
  // conformance tests.
}

}  // namespace

TEST_CASE("archive on the same filesystem: a rename, mode and times kept", "[files]") {
  TempDir dir;
  check_archive_between(dir / "live", dir / "shelf", true);
}

TEST_CASE("archive across filesystems: a synced copy renamed into place, then the source goes",
          "[files]") {
  TempDir tmp;
  fs::path shm_base = "/dev/shm";
  struct stat a {
  }, b{};
  if (::stat(shm_base.c_str(), &b) != 0 || ::stat(tmp.path().c_str(), &a) != 0 ||
      a.st_dev == b.st_dev) {
    WARN("no second filesystem (/dev/shm) beside " << tmp.path() << ": skipped");
    return;
  }
  std::string pattern = (shm_base / "retentiond-shelf-XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  fs::path shelf_base = pattern;
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{shelf_base};
  check_archive_between(tmp / "live", shelf_base / "shelf", false);
}

// An archive destination with other content is a conflict (65), the same
// content a resumed move: the conformance tests.

TEST_CASE("remove_empty_folders removes the folders a sweep emptied, and only those", "[files]") {
  TempDir dir;
  fs::path tree = dir / "tree";
  auto old = at("2019-03-01 10:00");
  put(tree, "a/b/c/identity.pdf", "x", old);
  put(tree, "a/b/identity.pdf", "x", old);
  put(tree, "d/identity.pdf", "x", old);
  put(tree, "d/request.txt", "stays", old);       // d is not emptied
  put(tree, "top.pdf", "x", old);                 // the root is emptied of it, and stays
  fs::create_directories(tree / "empty/before");  // empty before the sweep: not the sweep's
  for (bool remove : {false, true}) {
    DYNAMIC_SECTION("remove_empty_folders: " << remove) {
      auto policy = write_policy(
          dir,
          policy_text(kTreeStore,
                      delete_rule("**/*.pdf", remove ? "    remove_empty_folders: true\n" : "")));
      Sweep s(dir);
      auto swept = s.run(*policy, "2026-06-15");
      CHECK(entry(swept.report, "docs").counts.affected == 4);
      if (remove) {
        CHECK(folders_under(tree) == std::set<std::string>{"d", "empty", "empty/before"});
      } else {
        CHECK(folders_under(tree) ==
              std::set<std::string>{"a", "a/b", "a/b/c", "d", "empty", "empty/before"});
      }
      CHECK(fs::is_directory(tree));
    }
  }
}

TEST_CASE("an intent left by a crash is logged for exactly what changed, once", "[files]") {
  TempDir dir;
  fs::path tree = dir / "tree";
  auto old = at("2019-03-01 10:00");
  put(tree, "r1/a.pdf", "a", old);
  put(tree, "r1/b.pdf", "b", old);
  auto policy = write_policy(dir, policy_text(kTreeStore, delete_rule("**/*.pdf")));
  Sweep s(dir);
  fs::create_directories(s.state_dir());
  // A batch announced a.pdf, b.pdf and gone.pdf, deleted a.pdf, and was killed.
  files::IntentOutbox box(s.state_dir(), "tree");
  files::Intent intent;
  intent.entry = AuditEntry{"2026-06-15T01:00:00.000Z",
                            "docs",
                            1,
                            "delete",
                            "tree",
                            "**/*.pdf",
                            "2026-06-15",
                            "2023-06-15",
                            0,
                            "",
                            "",
                            "",
                            ""};
  intent.action = Action::erase;
  intent.root = tree;
  intent.paths = {"r1/a.pdf", "r1/b.pdf"};
  box.write(intent);
  fs::remove(tree / "r1/a.pdf");
  // A later batch completed, and its entry reached the log before the crash.
  files::Intent done = intent;
  box.write(done);
  AuditEntry logged = intent.entry;
  logged.time = "2026-06-15T01:00:01.000Z";
  logged.affected = 7;
  logged.keys_sha256 = sha256_hex("x\n");
  box.complete(done.number, logged);
  {
    auto log = AuditLog::open(s.state_dir());
    REQUIRE(log);
    REQUIRE(log->append(logged));
    REQUIRE(log->sync());
  }
  // Nothing is due on this day: the sweep only settles.
  auto settled = s.run(*policy, "2020-01-01");
  INFO(sweep_log(s));
  auto lines = audit_lines(s.state_dir());
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].at("affected") == 7);  // not appended again
  CHECK(lines[1].at("affected") == 1);
  CHECK(lines[1].at("time") == "2026-06-15T01:00:00.000Z");
  CHECK(lines[1].at("keys_sha256") == keys_root(s.state_dir(), {"r1/a.pdf"}));
  CHECK(box.pending().empty());
  CHECK(fs::exists(tree / "r1/b.pdf"));
  auto verified = verify_audit_log(s.state_dir());
  REQUIRE(verified);
  CHECK(verified->ok);

  SECTION("a damaged intent stops the sweep (65): it must be logged by hand") {
    std::ofstream(s.state_dir() / "outbox-files/tree.99.json") << "{not json";
    auto out = s.try_run(*policy, "2026-06-15", false);
    REQUIRE(out);
    CHECK(out->code == ExitCode::data_error);
    CHECK(fs::exists(tree / "r1/b.pdf"));
  }
}

namespace {

// A tree of `files` files in `folders` folders, all past their period; each
// file's content names it. `round` tells apart the names of trees added later.
std::map<std::string, std::string> make_tree(const fs::path& root, int files, int folders,
                                             int round = 0) {
  std::map<std::string, std::string> made;
  auto old = at("2015-05-05 10:00");
  for (int i = 0; i < files; ++i) {
    std::string rel = fmt::format("req-{:04}/identity-{}{:06}.pdf", i % folders, round, i);
    std::string content = fmt::format("identity copy {} {} {}", round, i, std::string(i % 97, 'x'));
    put(root, rel, content, old);
    made.emplace(rel, content);
  }
  return made;
}

// The files under `root` and their content; retentiond's temporary copies
// (which a kill may leave, and the next sweep removes) apart.
std::map<std::string, std::string> contents_under(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& rel : files_under(root)) {
    if (fs::path(rel).filename().string().starts_with(".retentiond-tmp.")) continue;
    out[rel] = read_file(root / rel);
  }
  return out;
}

std::size_t temp_copies_under(const fs::path& root) {
  std::size_t n = 0;
  for (const auto& rel : files_under(root))
    n += fs::path(rel).filename().string().starts_with(".retentiond-tmp.");
  return n;
}

}  // namespace

TEST_CASE(
    "an archive killed at any moment loses nothing, duplicates nothing, and its log "
    "accounts for every move",
    "[files][crash]") {
  TempDir dir;
  fs::path live = dir / "live";
  // Across filesystems where there are two: the copy, sync and unlink path.
  fs::path shelf = dir / "shelf";
  std::optional<TempDir> keep;
  struct stat a {
  }, b{};
  std::string shm_dir;
  if (::stat("/dev/shm", &b) == 0 && ::stat(dir.path().c_str(), &a) == 0 && a.st_dev != b.st_dev) {
    shm_dir = "/dev/shm/retentiond-crash-XXXXXX";
    REQUIRE(::mkdtemp(shm_dir.data()) != nullptr);
    shelf = fs::path(shm_dir) / "shelf";
  }
  struct Cleanup {
    std::string p;
    ~Cleanup() {
      std::error_code ec;
      if (!p.empty()) fs::remove_all(p, ec);
    }
  } cleanup{shm_dir};
  auto original = make_tree(live, 20'000, 200);
  dir.write("policy.yaml",
            policy_text(fmt::format("  live: {{ kind: files, root: {} }}\n  shelf: {{ kind: "
                                    "files, root: {} }}\n",
                                    live.string(), shelf.string()),
                        R"(  - name: ids
    store: live
    pattern: "*/identity-*.pdf"
    anchor: mtime
    remove_empty_folders: true
    keep_for: 3 years
    action: archive
    to: shelf
)",
                        250));
  fs::path state = dir / "state";
  const std::vector<std::string> sweep_args{"-c",          (dir / "policy.yaml").string(),
                                            "--state-dir", state.string(),
                                            "sweep",       "--as-of",
                                            "2026-06-15"};
  // Nothing is due on this day: a sweep that only settles what a killed one left.
  const std::vector<std::string> settle_args{"-c",          (dir / "policy.yaml").string(),
                                             "--state-dir", state.string(),
                                             "sweep",       "--as-of",
                                             "1990-01-01"};

  // Every file is in the live tree, the archive, or both, unchanged.
  auto check_files = [&](bool both_allowed) {
    auto in_live = contents_under(live);
    auto in_shelf = contents_under(shelf);
    std::size_t both = 0;
    for (const auto& [rel, content] : original) {
      auto l = in_live.find(rel);
      auto s = in_shelf.find(rel);
      INFO(rel);
      REQUIRE((l != in_live.end() || s != in_shelf.end()));
      if (l != in_live.end()) CHECK(l->second == content);
      if (s != in_shelf.end()) CHECK(s->second == content);
      both += l != in_live.end() && s != in_shelf.end();
    }
    CHECK(in_live.size() + in_shelf.size() - both == original.size());
    if (!both_allowed) CHECK(both == 0);
    return std::pair{in_live.size(), both};
  };

  std::uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("RETENTIOND_CRASH_SEED"); env && *env)
    seed = std::strtoull(env, nullptr, 10);
  std::cout << "files crash test: seed " << seed << " (RETENTIOND_CRASH_SEED=" << seed
            << " replays it)\n";
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  int max_delay_ms = 1500;
  int kills_mid_sweep = 0, seen_in_both = 0, left_temp = 0, restocked = 0;
  for (int i = 0; i < 40 && kills_mid_sweep < 5; ++i) {
    auto live_before = files_under(live).size();
    pid_t child = spawn_retentiond(sweep_args, dir / "sweep.stdout", dir / "sweep.stderr");
    std::this_thread::sleep_for(
        std::chrono::milliseconds{std::uniform_int_distribution<int>(20, max_delay_ms)(random)});
    int status = 0;
    bool finished = ::waitpid(child, &status, WNOHANG) == child;
    if (!finished) {
      REQUIRE(::kill(child, SIGKILL) == 0);
      REQUIRE(::waitpid(child, &status, 0) == child);
    }
    if (finished) {
      INFO(read_file(dir / "sweep.stderr"));
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
    auto [live_now, both] = check_files(true);
    seen_in_both += both > 0;
    left_temp += temp_copies_under(shelf) > 0;
    if (finished || live_now == 0) {
      // Done before the kill: more files, and kills sooner.
      if (restocked == 3) break;
      auto more = make_tree(live, 20'000, 200, ++restocked);
      original.insert(more.begin(), more.end());
      max_delay_ms = std::max(100, max_delay_ms * 2 / 3);
    } else if (live_now == live_before) {
      max_delay_ms = std::min(5000, max_delay_ms * 3 / 2);  // too early
    } else {
      ++kills_mid_sweep;
    }
    // The next sweep first settles the killed one's intents: afterwards the
    // log accounts for exactly the files that left the live tree.
    auto settled = run_retentiond(dir, settle_args);
    INFO("settling sweep: " << settled.err);
    CHECK(settled.exit_code == 0);
    CHECK(audit_affected_total(state) ==
          static_cast<std::int64_t>(original.size() - files_under(live).size()));
    CHECK(temp_copies_under(shelf) == 0);  // removed by the settling sweep
    CHECK((!fs::exists(state / "outbox-files") || fs::is_empty(state / "outbox-files")));
  }
  std::cout << "files crash test: " << kills_mid_sweep << " kills mid-archive, " << seen_in_both
            << " left files in both trees, " << left_temp << " a temporary copy\n";
  CHECK(kills_mid_sweep >= 1);

  auto last = run_retentiond(dir, sweep_args);
  INFO("final sweep: " << last.err);
  REQUIRE(last.exit_code == 0);
  auto [live_left, both] = check_files(false);
  CHECK(live_left == 0);
  CHECK(contents_under(shelf) == original);
  CHECK(audit_affected_total(state) == static_cast<std::int64_t>(original.size()));
  for (const auto& e : fs::recursive_directory_iterator(shelf))
    CHECK_FALSE(e.path().filename().string().starts_with(".retentiond-tmp"));
  CHECK(folders_under(live).empty());  // every folder emptied, and removed
  CHECK((!fs::exists(state / "outbox-files") || fs::is_empty(state / "outbox-files")));
  auto verified = run_retentiond(dir, {"--state-dir", state.string(), "audit", "verify"});
  INFO(verified.err);
  CHECK(verified.exit_code == 0);
}

namespace {

// The peak resident memory (VmHWM, KiB) of the binary run with `args`, read
// when it exits (stopped there by ptrace). Not getrusage: a forked child's
// ru_maxrss counts the test process's own pages, copied at the fork.
long peak_rss_kib(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  std::vector<char*> argv{const_cast<char*>(RETENTIOND_BINARY)};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(127);
    ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
    ::raise(SIGSTOP);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSTOPPED(status));
  ::ptrace(PTRACE_SETOPTIONS, child, nullptr, PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC);
  ::ptrace(PTRACE_CONT, child, nullptr, nullptr);
  long peak = -1;
  while (::waitpid(child, &status, 0) == child && WIFSTOPPED(status)) {
    int signal = WSTOPSIG(status);
    if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
      std::ifstream in(fmt::format("/proc/{}/status", child));
      std::string line;
      while (std::getline(in, line)) {
        if (line.starts_with("VmHWM:")) peak = std::stol(line.substr(6));
      }
      signal = 0;
    } else if (signal == SIGTRAP) {
      signal = 0;  // the exec
    }
    ::ptrace(PTRACE_CONT, child, nullptr, reinterpret_cast<void*>(static_cast<long>(signal)));
  }
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  return peak;
}

}  // namespace

TEST_CASE("memory stays flat: a walk is a stream, from 10 k to 100 k files", "[files]") {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer's shadow memory and quarantine say nothing of the walk.
  SUCCEED("memory is measured in the build without sanitizers");
  return;
#endif
  // Peak RSS of the binary planning and sweeping trees of 10 k and 100 k
  // files (on tmpfs where there is one, to build them fast): the larger tree
  // may not cost more than a few MiB more. No timing is judged.
  auto peak_kib = [](const fs::path& scratch, const std::vector<std::string>& args) {
    long peak = peak_rss_kib(args, scratch / "out", scratch / "err");
    INFO(read_file(scratch / "err"));
    CHECK(peak > 0);
    return peak;
  };
  auto measure = [&](int files) {
    std::string base = fs::exists("/dev/shm")
                           ? "/dev/shm/retentiond-rss-XXXXXX"
                           : (fs::temp_directory_path() / "retentiond-rss-XXXXXX").string();
    REQUIRE(::mkdtemp(base.data()) != nullptr);
    fs::path d = base;
    struct Cleanup {
      fs::path p;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(p, ec);
      }
    } cleanup{d};
    make_tree(d / "tree", files, 100);
    {
      std::ofstream(d / "policy.yaml") << policy_text(kTreeStore, delete_rule("*/identity-*.pdf"));
    }
    std::vector<std::string> common{"-c", (d / "policy.yaml").string(), "--state-dir",
                                    (d / "state").string()};
    auto plan = common;
    plan.insert(plan.end(), {"plan", "--as-of", "2026-06-15"});
    auto sweep = common;
    sweep.insert(sweep.end(), {"sweep", "--as-of", "2026-06-15"});
    long p = peak_kib(d, plan);
    long s = peak_kib(d, sweep);
    CHECK(files_under(d / "tree").empty());
    return std::pair{p, s};
  };
  auto [plan_small, sweep_small] = measure(10'000);
  auto [plan_large, sweep_large] = measure(100'000);
  std::cout << fmt::format(
      "files RSS: plan {} KiB (10 k files) / {} KiB (100 k); sweep {} KiB / {} KiB\n", plan_small,
      plan_large, sweep_small, sweep_large);
  CHECK(plan_large <= plan_small + 4096);
  CHECK(sweep_large <= sweep_small + 4096);
}

TEST_CASE("check on a files store: the root, the archive's place, the hold list", "[files]") {
  TempDir dir;
  put(dir / "tree", "r1/identity.pdf", "a", at("2019-03-01 10:00"));
  std::string stores = std::string(kTreeStore) + "  shelf: { kind: files, root: shelf }\n";
  std::string rule = R"(  - name: docs
    store: tree
    pattern: "*/identity.pdf"
    anchor: mtime
    keep_for: 3 years
    action: archive
    to: shelf
)";
  dir.write("policy.yaml", policy_text(stores, rule));
  auto check = [&] {
    return run_retentiond(dir, {"-c", (dir / "policy.yaml").string(), "check", "--format", "json"});
  };
  auto ok = check();
  INFO(ok.err << ok.out);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.out, Catch::Contains("will be created by the first sweep"));
  CHECK_FALSE(fs::exists(dir / "shelf"));  // check changes nothing

  fs::rename(dir / "tree", dir / "moved");
  auto missing = check();
  CHECK(missing.exit_code == 69);
  CHECK_THAT(missing.err, Catch::Contains("does not exist"));
  auto swept = run_retentiond(dir, {"-c", (dir / "policy.yaml").string(), "--state-dir",
                                    (dir / "state").string(), "sweep", "--as-of", "2026-06-15"});
  CHECK(swept.exit_code == 69);
  CHECK_THAT(swept.err, Catch::Contains("store 'tree'"));
  CHECK_FALSE(fs::exists(dir / "shelf"));
}

namespace {

// How the service sees a store's folders that it may not write: under the
// systemd unit, ProtectSystem=strict shows every folder the data-paths
// drop-in does not list read-only; a folder its user has no write
// permission on is the other way to fail.
enum class Barrier { read_only_mount, no_permission };

// Writes `text` to `file` from a forked child (no Catch2 there).
void child_write(const fs::path& file, const std::string& text) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    [[maybe_unused]] auto n = ::write(fd, text.data(), text.size());
    ::close(fd);
  }
}

// In a mount namespace of its own (a user namespace too, as non-root),
// `folder` bind-mounted onto itself read-only. False where the host allows
// no namespace.
bool mount_read_only(const fs::path& folder) {
  struct statvfs vfs {};
  if (::statvfs(folder.c_str(), &vfs) != 0) return false;
  // Flags the mount has are kept: a user namespace may not drop them.
  unsigned long keep = 0;
  for (auto [st, ms] : {std::pair{ST_NOSUID, MS_NOSUID},
                        {ST_NODEV, MS_NODEV},
                        {ST_NOEXEC, MS_NOEXEC},
                        {ST_NOATIME, MS_NOATIME},
                        {ST_NODIRATIME, MS_NODIRATIME},
                        {ST_RELATIME, MS_RELATIME}}) {
    if (vfs.f_flag & st) keep |= ms;
  }
  return ::mount(folder.c_str(), folder.c_str(), nullptr, MS_BIND, nullptr) == 0 &&
         ::mount(nullptr, folder.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | keep,
                 nullptr) == 0;
}

bool enter_mount_namespace() {
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (uid == 0)
    return ::unshare(CLONE_NEWNS) == 0 &&
           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
  child_write("/proc/self/setgroups", "deny");
  child_write("/proc/self/uid_map", fmt::format("{} {} 1", uid, uid));
  child_write("/proc/self/gid_map", fmt::format("{} {} 1", gid, gid));
  return ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}

// A real sweep of `policy` in a child process that cannot write in
// `folders`; its exit code and log. nullopt where this host cannot set the
// barrier up.
std::optional<std::pair<int, std::string>> sweep_behind(const TempDir& dir, const Policy& policy,
                                                        Barrier barrier,
                                                        const std::vector<fs::path>& folders) {
  constexpr uid_t kNobody = 65534;
  if (barrier == Barrier::no_permission) {
    if (::geteuid() == 0) {
      // Root writes anywhere: the child becomes nobody, owner of the rest.
      for (const auto& e : fs::recursive_directory_iterator(dir.path()))
        REQUIRE(::lchown(e.path().c_str(), kNobody, kNobody) == 0);
      REQUIRE(::chown(dir.path().c_str(), kNobody, kNobody) == 0);
    }
    for (const auto& f : folders) {
      fs::permissions(f, fs::perms(0555));
      for (const auto& e : fs::recursive_directory_iterator(f)) {
        if (e.is_directory()) fs::permissions(e.path(), fs::perms(0555));
      }
    }
  }
  fs::path log_file = dir / "child.log";
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (barrier == Barrier::read_only_mount) {
      if (!enter_mount_namespace()) ::_exit(77);
      for (const auto& f : folders) {
        if (!mount_read_only(f)) ::_exit(77);
      }
    } else if (::geteuid() == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)
        ::_exit(77);
    }
    Sweep s(dir);
    auto outcome = s.try_run(policy, "2026-06-15", false);
    child_write(log_file, s.log_text.str() + (outcome ? "" : outcome.error().message));
    ::_exit(outcome ? static_cast<int>(outcome->code) : 100);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) return std::nullopt;
  return std::pair{WEXITSTATUS(status), read_file(log_file)};
}

}  // namespace

TEST_CASE(
    "a root the service may not write: the sweep's error names the data-paths drop-in to write",
    "[files]") {
  auto barrier = GENERATE(Barrier::read_only_mount, Barrier::no_permission);
  TempDir dir;
  auto old = at("2019-03-01 10:00");
  put(dir / "tree", "r1/identity.pdf", "deleted, were the tree writable", old);
  put(dir / "src", "r2/identity.pdf", "archived, were the shelf writable", old);
  fs::create_directory(dir / "shelf");
  std::string stores = std::string(kTreeStore) +
                       "  src: { kind: files, root: src }\n"
                       "  shelf: { kind: files, root: shelf }\n";
  std::string rules = delete_rule("*/identity.pdf") + R"(  - name: ids
    store: src
    pattern: "*/identity.pdf"
    anchor: mtime
    keep_for: 3 years
    action: archive
    to: shelf
)";
  auto policy = write_policy(dir, policy_text(stores, rules));
  auto swept = sweep_behind(dir, *policy, barrier, {dir / "tree", dir / "shelf"});
  if (!swept) {
    WARN("no mount namespace here: the read-only case is skipped");
    return;
  }
  auto [code, log] = *swept;
  INFO(log);
  CHECK(code == static_cast<int>(ExitCode::unavailable));
  std::string dropin =
      "/etc/systemd/system/retentiond.service.d/data-paths.conf (see "
      "/usr/share/doc/retentiond/examples/data-paths.conf.example)";
  auto tree = (dir / "tree").string(), shelf = (dir / "shelf").string();
  if (barrier == Barrier::read_only_mount) {
    CHECK_THAT(log, Catch::Contains(fmt::format(
                        "store 'tree' ({}): cannot delete a file in folder 'r1': Read-only file "
                        "system: under the systemd unit, list {} in ReadWritePaths= of {}",
                        tree, tree, dropin)));
    CHECK_THAT(log, Catch::Contains(fmt::format(
                        "cannot create the archive folder in folder 'r2': Read-only file system: "
                        "under the systemd unit, list {} in ReadWritePaths= of {}",
                        shelf, dropin)));
  } else {
    CHECK_THAT(log, Catch::Contains(fmt::format(
                        "store 'tree' ({}): cannot delete a file in folder 'r1': Permission "
                        "denied: the user the sweep runs as needs write access to {}",
                        tree, tree)));
    CHECK_THAT(log, Catch::Contains(fmt::format("needs write access to {}", shelf)));
    CHECK_THAT(log, Catch::Contains("in SupplementaryGroups= of " + dropin));
  }
  // Nothing moved, nothing claimed.
  CHECK(files_under(dir / "tree") == std::set<std::string>{"r1/identity.pdf"});
  CHECK(files_under(dir / "src") == std::set<std::string>{"r2/identity.pdf"});
  CHECK(files_under(dir / "shelf").empty());
  CHECK((!fs::exists(dir / "state/audit.jsonl") || audit_affected_total(dir / "state") == 0));
}
