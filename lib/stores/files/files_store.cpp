#include "stores/files/files_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "stores/batch_keys.hpp"
#include "stores/data_paths.hpp"
#include "stores/files/hold_list.hpp"
#include "stores/files/name_date.hpp"
#include "stores/outbox.hpp"
#include "util/digest.hpp"

namespace retentiond {
namespace {

namespace fs = std::filesystem;
using files::Fd;
using files::FolderChain;
using files::split_parent;

// `error` with the advice for a folder of `written` (the tree's root, or
// "A and B") that the systemd unit keeps read-only or its user may not write.
std::string write_error(int error, std::string_view written) {
  std::string advice = data_paths_advice(error, written);
  return advice.empty() ? std::strerror(error)
                        : fmt::format("{}: {}", std::strerror(error), advice);
}

[[noreturn]] void fail_in(std::string_view what, std::string_view folder, std::string_view why) {
  throw StoreError(StoreError::Kind::unavailable, fmt::format("cannot {} in folder '{}': {}", what,
                                                              folder.empty() ? "." : folder, why));
}

[[noreturn]] void fail_at(std::string_view what, std::string_view folder, int error) {
  fail_in(what, folder, std::strerror(error));
}

// A failure to write in `folder` of the tree under `root`.
[[noreturn]] void fail_writing(std::string_view what, std::string_view folder, int error,
                               std::string_view root) {
  fail_in(what, folder, write_error(error, root));
}

// The first `steps` folders of `dir` ("a/b/c", 2 -> "a/b").
std::string prefix_of(std::string_view dir, std::size_t steps) {
  if (steps == 0) return "";
  std::size_t end = 0;
  for (std::size_t i = 0; i < steps; ++i) {
    end = dir.find('/', i == 0 ? 0 : end + 1);
    if (end == std::string_view::npos) return std::string(dir);
  }
  return std::string(dir.substr(0, end));
}

// Whether folder `inner` is `outer` or lies below it.
bool folder_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing '/'
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

// Reads a file's content without changing its access time where the
// kernel allows (O_NOATIME needs the file's owner or CAP_FOWNER).
Fd open_for_reading(int folder, const std::string& name) {
  Fd fd(::openat(folder, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME));
  if (!fd && errno == EPERM)
    fd = Fd(::openat(folder, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  return fd;
}

bool same_state(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

// Whether two open files hold the same bytes. -1 (errno set) on a read error.
int same_bytes(int a, int b) {
  struct stat sa {
  }, sb{};
  if (::fstat(a, &sa) != 0 || ::fstat(b, &sb) != 0) return -1;
  if (sa.st_size != sb.st_size) return 0;
  std::vector<char> ba(1 << 16), bb(1 << 16);
  for (off_t at = 0; at < sa.st_size;) {
    ssize_t na = ::pread(a, ba.data(), ba.size(), at);
    if (na < 0 && errno == EINTR) continue;
    if (na < 0) return -1;
    if (na == 0) return 0;  // shorter than it said: changing under us
    std::size_t got = 0;
    while (got < static_cast<std::size_t>(na)) {
      ssize_t nb = ::pread(b, bb.data() + got, static_cast<std::size_t>(na) - got,
                           at + static_cast<off_t>(got));
      if (nb < 0 && errno == EINTR) continue;
      if (nb <= 0) return nb < 0 ? -1 : 0;
      got += static_cast<std::size_t>(nb);
    }
    if (std::memcmp(ba.data(), bb.data(), got) != 0) return 0;
    at += na;
  }
  return 1;
}

// Copies every byte of `in` to `out`; the count copied, or -1 (errno set).
off_t copy_bytes(int in, int out) {
  off_t total = 0;
  bool kernel_copy = true;
  std::vector<char> buffer;
  while (true) {
    if (kernel_copy) {
      ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
      if (n > 0) {
        total += n;
        continue;
      }
      if (n == 0) return total;
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return -1;
      kernel_copy = false;  // not between these filesystems: plain reads and writes
      buffer.resize(1 << 20);
    }
    ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return total;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buffer.data() + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return -1;
      done += w;
    }
    total += n;
  }
}

// renameat2(RENAME_NOREPLACE): never over an existing name. Where the
// filesystem lacks it, a hard link then an unlink does the same.
int rename_no_replace(int from_dir, const char* from, int to_dir, const char* to) {
  if (::renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  if (::linkat(from_dir, from, to_dir, to, 0) != 0) return -1;
  if (::unlinkat(from_dir, from, 0) != 0) {
    int saved = errno;
    ::unlinkat(to_dir, to, 0);
    errno = saved;
    return -1;
  }
  return 0;
}

// Whether a hold file is in folder `rel_dir` or one above it, up to the
// root, in the tree of `chain` (as far down as the folders exist there).
bool held_by_file(FolderChain& chain, std::string_view rel_dir, const std::string& hold_file) {
  if (hold_file.empty()) return false;
  chain.open(rel_dir);
  struct stat st {};
  for (std::size_t step = 0; step <= chain.depth(); ++step) {
    if (::fstatat(chain.folder(step), hold_file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      return true;
  }
  return false;
}

// Folders by depth, deepest first: children are removed before parents.
struct DeeperFirst {
  bool operator()(const std::string& a, const std::string& b) const {
    auto da = std::count(a.begin(), a.end(), '/'), db = std::count(b.begin(), b.end(), '/');
    return da != db ? da > db : a < b;
  }
};

// Removes the folders in `emptied` that are now empty, then their parents
// that this leaves empty, never the root. Folders someone fills meanwhile
// stay (rmdir refuses them).
void remove_emptied_folders(int root, const std::set<std::string>& emptied) {
  std::set<std::string, DeeperFirst> todo(emptied.begin(), emptied.end());
  FolderChain chain(root);
  while (!todo.empty()) {
    std::string dir = *todo.begin();
    todo.erase(todo.begin());
    if (dir.empty()) continue;
    auto [parent, name] = split_parent(dir);
    int fd = chain.open(parent);
    if (fd < 0) continue;
    if (::unlinkat(fd, std::string(name).c_str(), AT_REMOVEDIR) == 0 && !parent.empty())
      todo.insert(std::string(parent));
  }
}

// Syncs each folder of `dirs` that still exists.
void sync_folders(int root, const std::set<std::string>& dirs) {
  FolderChain chain(root);
  for (const auto& d : dirs) {
    int fd = chain.open(d);
    if (fd < 0) continue;  // removed since (an emptied folder)
    if (::fsync(fd) != 0) fail_at("sync the folder", d, errno);
  }
}

// What a stage selects in a tree: the rule's pattern, anchor, window and holds.
class Selection {
 public:
  enum class Verdict { undated, outside, held, due };

  Selection(const Rule& rule, const DayWindow& window, const date::time_zone& zone)
      : files_(*rule.files), window_(window) {
    // The window as instants: a modification time's local day is in it
    // exactly when the time is, so no file needs its own zone conversion.
    using date::days;
    if (window.after)
      window_start_ = start_of_local_day(*window.after + days{1}, zone).time_since_epoch().count();
    window_end_ = start_of_local_day(window.through + days{1}, zone).time_since_epoch().count();
    auto glob = Glob::compile(files_.pattern);
    if (!glob) throw StoreError(StoreError::Kind::unavailable, glob.error());
    glob_.emplace(std::move(*glob));
    if (files_.hold) {
      if (auto* f = std::get_if<HoldByFile>(&*files_.hold)) hold_file_ = f->name;
    }
    read_hold_list();
  }

  // (Re)reads the hold list: once per batch, so that a list edited during a
  // long sweep is honoured from the next batch on.
  void read_hold_list() {
    if (!files_.hold) return;
    if (auto* l = std::get_if<HoldByList>(&*files_.hold)) list_ = files::HoldList::read(l->list);
  }

  const Glob& glob() const { return *glob_; }
  const std::string& hold_file() const { return hold_file_; }

  // Whether the walk must fstatat each file: an mtime anchor reads it; a
  // name anchor needs only to know it is a regular file.
  bool needs_stat() const { return files_.anchor == FileAnchor::mtime; }

  Verdict judge(std::string_view rel, const struct stat& st, bool held_by_file) const {
    Verdict v = dated(rel, st);
    if (v != Verdict::due) return v;
    if (held_by_file || (list_ && list_->holds(rel))) return Verdict::held;
    return Verdict::due;
  }

 private:
  // undated, outside the window, or due (holds aside).
  Verdict dated(std::string_view rel, const struct stat& st) const {
    if (files_.anchor == FileAnchor::name) {
      auto day = first_date_in_path(rel);
      if (!day) return Verdict::undated;
      bool in = *day <= window_.through && !(window_.after && *day <= *window_.after);
      return in ? Verdict::due : Verdict::outside;
    }
    // Outside years 0..9999 a modification time is a mistake, not a date.
    constexpr std::int64_t kLimit = 253402300799;  // 9999-12-31T23:59:59Z
    constexpr std::int64_t kFloor = -62167219200;  // 0000-01-01T00:00:00Z
    std::int64_t t = st.st_mtim.tv_sec;
    if (t < kFloor || t > kLimit) return Verdict::undated;
    bool in = t < window_end_ && !(window_start_ && t < *window_start_);
    return in ? Verdict::due : Verdict::outside;
  }

  const FileSelection& files_;
  DayWindow window_;
  std::optional<std::int64_t> window_start_;  // the first second after the `after` day
  std::int64_t window_end_ = 0;               // the first second after the `through` day
  std::optional<Glob> glob_;
  std::string hold_file_;
  std::optional<files::HoldList> list_;
};

FilesStore* files_store(Store* s) { return dynamic_cast<FilesStore*>(s); }

}  // namespace

std::string archive_temp_name(std::string_view name) {
  return std::string(files::kTempPrefix) + sha256_hex(name).substr(0, 24);
}

FilesStore::FilesStore(const StoreSpec& spec, const StoreOptions& options)
    : spec_(spec), options_(options) {
  const fs::path& root = spec_.root;
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) {
    if (errno != ENOENT || !options_.create || options_.dry_run) {
      throw StoreError(StoreError::Kind::unavailable,
                       fmt::format("root folder {} {}", root.string(),
                                   errno == ENOENT ? "does not exist"
                                                   : fmt::format("cannot be reached: {}",
                                                                 std::strerror(errno))));
    }
    // An archive's root, made by the first sweep that archives into it.
    if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) {
      throw StoreError(StoreError::Kind::unavailable,
                       fmt::format("cannot create root folder {}: {}", root.string(),
                                   write_error(errno, root.parent_path().string())));
    }
    Fd parent(::open(root.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent || ::fsync(parent.get()) != 0) {
      throw StoreError(
          StoreError::Kind::unavailable,
          fmt::format("cannot sync the folder of {}: {}", root.string(), std::strerror(errno)));
    }
  }
  root_ = Fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_) {
    throw StoreError(StoreError::Kind::unavailable,
                     fmt::format("root {} is not a folder that can be read: {}", root.string(),
                                 std::strerror(errno)));
  }
}

files::IntentOutbox& FilesStore::outbox() {
  if (options_.state_dir.empty()) {
    throw StoreError(StoreError::Kind::unavailable,
                     "no state directory to keep the outbox of a files store in");
  }
  if (!outbox_) outbox_.emplace(options_.state_dir, spec_.name);
  return *outbox_;
}

namespace {

// Adds one judged file to a stage's counts.
void tally(Counts& c, Selection::Verdict verdict) {
  switch (verdict) {
    case Selection::Verdict::undated:
      ++c.undated;
      break;
    case Selection::Verdict::held:
      ++c.held;
      break;
    case Selection::Verdict::due:
      ++c.matched;
      break;
    case Selection::Verdict::outside:
      break;
  }
}

}  // namespace

Counts FilesStore::count(const StageWork& work, bool with_undated) {
  const Rule& rule = *work.rule;
  Selection sel(rule, work.window, *options_.zone);
  files::TreeWalk::Options walk_options;
  walk_options.hold_file = sel.hold_file();
  walk_options.stat_files = sel.needs_stat();
  if (work.place == Place::archive) {
    if (FilesStore* live = files_store(work.live)) walk_options.mirror_root = live->root_fd();
  }
  files::TreeWalk walk(root_fd(), sel.glob(), walk_options);
  Counts c;
  files::FoundFile f;
  while (walk.next(f)) tally(c, sel.judge(f.rel, f.st, f.held_by_file));
  if (!with_undated) c.undated = 0;
  return c;
}

// The batches of one stage: the walk goes on where the previous batch
// stopped; each batch is announced (intent), acted on, synced, completed.
class FilesBatches final : public Batches {
 public:
  FilesBatches(FilesStore& store, const StageWork& work)
      : store_(store),
        work_(work),
        sel_(*work.rule, work.window, *store.options().zone),
        walk_(store.root_fd(), sel_.glob(), walk_options(work, sel_)) {
    if (work.place == Place::archive) {
      live_ = files_store(work.live);
      if (live_) mirror_.emplace(live_->root_fd());
    }
    if (work.action == Action::archive) {
      archive_ = files_store(work.archive);
      if (!archive_) {
        throw StoreError(StoreError::Kind::unavailable, "the archive is not a files store");
      }
      // The loader compares the roots as written; links could still nest them.
      std::error_code ec1, ec2;
      fs::path a = fs::weakly_canonical(archive_->root(), ec1);
      fs::path l = fs::weakly_canonical(store.root(), ec2);
      if (!ec1 && !ec2 && (folder_within(a, l) || folder_within(l, a))) {
        throw StoreError(StoreError::Kind::unavailable,
                         fmt::format("archive root {} and live root {} lie one inside the other "
                                     "(through a symbolic link); nothing was moved",
                                     a.string(), l.string()));
      }
    }
  }

  Counts seen() const override { return seen_; }

  BatchResult next(int limit, AuditEntry entry) override {
    if (deferred_error_) throw *deferred_error_;
    BatchResult result;
    sel_.read_hold_list();
    std::vector<std::string> paths;
    files::FoundFile f;
    // Bounded whatever the pacer asks: the batch's paths are held in memory
    // and written to its intent.
    limit = std::min(limit, kMaxFilesBatch);
    while (static_cast<int>(paths.size()) < limit && walk_.next(f)) {
      auto verdict = sel_.judge(f.rel, f.st, f.held_by_file);
      tally(seen_, verdict);
      if (verdict == Selection::Verdict::due) paths.push_back(std::move(f.rel));
    }
    result.more = static_cast<int>(paths.size()) == limit;
    if (paths.empty()) return result;

    files::Intent intent;
    intent.entry = entry;
    intent.action = work_.action;
    intent.root = store_.root();
    if (archive_) intent.archive_root = archive_->root();
    intent.paths = paths;
    intent.remove_empty_folders = work_.rule->files->remove_empty_folders;
    store_.outbox().write(intent);

    std::vector<bool> acted(paths.size(), false);
    try {
      if (work_.action == Action::archive) {
        archive(paths, acted, result);
      } else {
        erase(paths, acted);
      }
    } catch (const StoreError& e) {
      // What was done stays done and is logged; the error ends the stage
      // at the next call.
      deferred_error_ = e;
      result.more = true;
    }
    if (work_.rule->files->remove_empty_folders && !emptied_.empty()) {
      remove_emptied_folders(store_.root_fd(), emptied_);
      src_.reset();
    }
    emptied_.clear();
    // No lock is held: nobody waits for a files batch, so the pacer may
    // grow it to kMaxFilesBatch (larger batches amortise the syncs).
    result.write_lock_held = std::chrono::microseconds{0};

    BatchKeys digest(store_.options().receipts);
    for (std::size_t i = 0; i < paths.size(); ++i) {
      if (!acted[i]) continue;
      ++result.affected;
      digest.add(paths[i]);
    }
    if (result.affected == 0) {
      store_.outbox().remove(intent.number);
      return result;
    }
    entry.affected = result.affected;
    entry.keys_sha256 = digest.finish();
    store_.outbox().complete(intent.number, entry);
    store_.last_intent_ = intent.number;
    result.entry = std::move(entry);
    return result;
  }

 private:
  // Records in a batch at most; see next().
  static constexpr int kMaxFilesBatch = 10'000;
  Counts seen_;

  static files::TreeWalk::Options walk_options(const StageWork& work, const Selection& sel) {
    files::TreeWalk::Options o;
    o.hold_file = sel.hold_file();
    o.stat_files = sel.needs_stat();
    if (work.place == Place::archive) {
      if (FilesStore* live = files_store(work.live)) o.mirror_root = live->root_fd();
    }
    return o;
  }

  // The file `name` in folder `fd` (`rel` in the tree) as it is now: still a
  // regular file, still past its period, still not held. nullopt otherwise.
  std::optional<struct stat> still_due(int fd, std::string_view rel, std::string_view dir,
                                       const std::string& name) {
    struct stat st {};
    if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
    if (!S_ISREG(st.st_mode)) return std::nullopt;
    bool held = held_by_file(src_, dir, sel_.hold_file());
    if (!held && mirror_) held = held_by_file(*mirror_, dir, sel_.hold_file());
    if (sel_.judge(rel, st, held) != Selection::Verdict::due) return std::nullopt;
    return st;
  }

  void erase(const std::vector<std::string>& paths, std::vector<bool>& acted) {
    std::set<std::string> dirty;
    for (std::size_t i = 0; i < paths.size(); ++i) {
      auto [dir_view, name_view] = split_parent(paths[i]);
      std::string dir(dir_view), name(name_view);
      int fd = src_.open(dir);
      if (fd < 0) continue;  // the folder is gone or is now a link
      if (!still_due(fd, paths[i], dir, name)) continue;
      fd = src_.open(dir);
      if (::unlinkat(fd, name.c_str(), 0) != 0) {
        if (errno == ENOENT) continue;
        sync_then_fail(dirty, "delete a file", dir, errno, store_.root().string());
      }
      acted[i] = true;
      dirty.insert(dir);
      emptied_.insert(dir);
    }
    sync_folders(store_.root_fd(), dirty);
  }

  // A file on its way to the archive whose source is unlinked in phase two.
  struct Pending {
    std::size_t index;
    struct stat st;     // the source as copied (or compared)
    bool copied_by_us;  // false: the archive already held the same bytes
  };

  void archive(const std::vector<std::string>& paths, std::vector<bool>& acted,
               BatchResult& result) {
    FolderChain dst(archive_->root_fd());
    std::set<std::string> dirty_src, dirty_dst;
    std::vector<Pending> pending;
    std::optional<StoreError> error;
    // Phase one: each file renamed into the archive (same filesystem) or
    // copied there (another one), the copies durable before any unlink.
    for (std::size_t i = 0; i < paths.size() && !error; ++i) {
      auto [dir_view, name_view] = split_parent(paths[i]);
      std::string dir(dir_view), name(name_view);
      int src_fd = src_.open(dir);
      if (src_fd < 0) continue;
      if (!still_due(src_fd, paths[i], dir, name)) continue;
      src_fd = src_.open(dir);
      try {
        switch (move_one(src_fd, dst, dir, name, dirty_dst, pending, i)) {
          case Outcome::moved:
            acted[i] = true;
            dirty_src.insert(dir);
            dirty_dst.insert(dir);
            emptied_.insert(dir);
            break;
          case Outcome::conflict:
            ++result.conflicts;
            break;
          case Outcome::left:
          case Outcome::pending:
            break;
        }
      } catch (const StoreError& e) {
        error = e;
      }
    }
    // The copies and their folders are durable before a source goes.
    sync_folders(archive_->root_fd(), dirty_dst);
    // Phase two: each copied source unlinked, unless it changed since it
    // was copied; then the copy just made goes instead, and the file stays.
    for (const auto& p : pending) {
      auto [dir_view, name_view] = split_parent(paths[p.index]);
      std::string dir(dir_view), name(name_view);
      int src_fd = src_.open(dir);
      struct stat now {};
      bool unchanged = src_fd >= 0 &&
                       ::fstatat(src_fd, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
                       same_state(now, p.st);
      if (unchanged && ::unlinkat(src_fd, name.c_str(), 0) == 0) {
        acted[p.index] = true;
        dirty_src.insert(dir);
        emptied_.insert(dir);
        continue;
      }
      if (unchanged && errno != ENOENT && !error) {
        error = StoreError(
            StoreError::Kind::unavailable,
            fmt::format("cannot delete a file in folder '{}' after archiving it: {}",
                        dir.empty() ? "." : dir, write_error(errno, store_.root().string())));
      }
      if (p.copied_by_us) {
        int dst_fd = dst.open(dir);
        if (dst_fd >= 0) ::unlinkat(dst_fd, name.c_str(), 0);
      }
    }
    sync_folders(store_.root_fd(), dirty_src);
    if (error) throw *error;
  }

  enum class Outcome { moved, pending, conflict, left };

  Outcome move_one(int src_fd, FolderChain& dst, const std::string& dir, const std::string& name,
                   std::set<std::string>& dirty_dst, std::vector<Pending>& pending,
                   std::size_t index) {
    std::vector<std::size_t> created;
    int dst_fd = dst.open(dir, &created);
    if (dst_fd < 0) {
      // A file or a link where the archive needs a folder: the file stays.
      if (errno == ENOTDIR || errno == ELOOP || errno == EEXIST) return Outcome::conflict;
      fail_writing("create the archive folder", dir, errno, archive_root());
    }
    for (std::size_t step : created) {
      // A new archive folder takes the live folder's mode (and owner, as root).
      struct stat live_dir {};
      bool ok =
          ::fstat(src_.folder(step), &live_dir) == 0 &&
          ::fchmod(dst.folder(step), live_dir.st_mode & 07777) == 0 &&
          (::geteuid() != 0 || ::fchown(dst.folder(step), live_dir.st_uid, live_dir.st_gid) == 0);
      if (!ok)
        fail_writing("set the mode of a new archive folder", prefix_of(dir, step), errno,
                     archive_root());
      dirty_dst.insert(prefix_of(dir, step - 1));
      dirty_dst.insert(prefix_of(dir, step));
    }
    struct stat there {};
    if (::fstatat(dst_fd, name.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0)
      return resume(src_fd, dst_fd, dir, name, there, pending, index);

    struct stat src_st {
    }, dst_dir{};
    if (::fstatat(src_fd, name.c_str(), &src_st, AT_SYMLINK_NOFOLLOW) != 0) return Outcome::left;
    if (::fstat(dst_fd, &dst_dir) != 0) fail_at("read the archive folder", dir, errno);
    if (src_st.st_dev == dst_dir.st_dev) {
      if (rename_no_replace(src_fd, name.c_str(), dst_fd, name.c_str()) == 0) return Outcome::moved;
      if (errno == ENOENT) return Outcome::left;
      if (errno == EEXIST) {
        if (::fstatat(dst_fd, name.c_str(), &there, AT_SYMLINK_NOFOLLOW) != 0) return Outcome::left;
        return resume(src_fd, dst_fd, dir, name, there, pending, index);
      }
      if (errno != EXDEV) {
        fail_writing("move a file to the archive", dir, errno,
                     fmt::format("{} and {}", store_.root().string(), archive_root()));
      }
    }
    return copy(src_fd, dst_fd, dir, name, dirty_dst, pending, index);
  }

  // The archive already holds the file's path: the same bytes are the move
  // of an interrupted sweep (only the unlink is left); others, a conflict.
  Outcome resume(int src_fd, int dst_fd, const std::string& dir, const std::string& name,
                 const struct stat& there, std::vector<Pending>& pending, std::size_t index) {
    if (!S_ISREG(there.st_mode)) return Outcome::conflict;
    Fd in = open_for_reading(src_fd, name);
    if (!in) return errno == ENOENT || errno == ELOOP ? Outcome::left : fail_read(dir);
    Fd out = open_for_reading(dst_fd, name);
    if (!out) return Outcome::conflict;
    struct stat st {};
    if (::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) return Outcome::left;
    int same = same_bytes(in.get(), out.get());
    if (same < 0) return fail_read(dir);
    if (same == 0) return Outcome::conflict;
    pending.push_back({index, st, false});
    return Outcome::pending;
  }

  [[noreturn]] Outcome fail_read(const std::string& dir) { fail_at("read a file", dir, errno); }

  // Copies the file to a temporary name in the archive folder, with its
  // mode, owner (as root) and times, synced, then renamed into place
  // without replacing anything.
  Outcome copy(int src_fd, int dst_fd, const std::string& dir, const std::string& name,
               std::set<std::string>& dirty_dst, std::vector<Pending>& pending, std::size_t index) {
    Fd in = open_for_reading(src_fd, name);
    if (!in) return errno == ENOENT || errno == ELOOP ? Outcome::left : fail_read(dir);
    struct stat st {};
    if (::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) return Outcome::left;
    std::string tmp = archive_temp_name(name);
    ::unlinkat(dst_fd, tmp.c_str(), 0);  // a copy an interrupted sweep left
    Fd out(
        ::openat(dst_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) fail_writing("create a copy in the archive", dir, errno, archive_root());
    auto discard = [&] { ::unlinkat(dst_fd, tmp.c_str(), 0); };
    off_t copied = copy_bytes(in.get(), out.get());
    if (copied < 0) {
      int saved = errno;
      discard();
      fail_writing("copy a file to the archive", dir, saved, archive_root());
    }
    struct stat after {};
    if (::fstat(in.get(), &after) != 0 || copied != st.st_size || !same_state(after, st)) {
      discard();  // written to while copied: left for a later sweep
      return Outcome::left;
    }
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    bool ok = (::geteuid() != 0 || ::fchown(out.get(), st.st_uid, st.st_gid) == 0) &&
              ::fchmod(out.get(), st.st_mode & 07777) == 0 && ::futimens(out.get(), times) == 0 &&
              ::fsync(out.get()) == 0;
    if (!ok) {
      int saved = errno;
      discard();
      fail_writing("finish a copy in the archive", dir, saved, archive_root());
    }
    out = Fd();
    if (rename_no_replace(dst_fd, tmp.c_str(), dst_fd, name.c_str()) != 0) {
      int saved = errno;
      discard();
      if (saved == EEXIST) return Outcome::conflict;  // appeared meanwhile: not ours to replace
      fail_writing("put a copy in place in the archive", dir, saved, archive_root());
    }
    dirty_dst.insert(dir);
    pending.push_back({index, st, true});
    return Outcome::pending;
  }

  // Before an error ends the batch, what it did is made durable.
  [[noreturn]] void sync_then_fail(const std::set<std::string>& dirty, std::string_view what,
                                   std::string_view dir, int error, std::string_view root) {
    sync_folders(store_.root_fd(), dirty);
    fail_writing(what, dir, error, root);
  }

  std::string archive_root() const { return archive_->root().string(); }

  FilesStore& store_;
  StageWork work_;
  Selection sel_;
  files::TreeWalk walk_;
  FilesStore* live_ = nullptr;     // Place::archive: the live tree, whose hold files hold too
  FilesStore* archive_ = nullptr;  // Action::archive: where files go
  FolderChain src_{store_.root_fd()};
  std::optional<FolderChain> mirror_;
  std::set<std::string> emptied_;  // folders files left, this batch
  std::optional<StoreError> deferred_error_;
};

std::unique_ptr<Batches> FilesStore::batches(const StageWork& work, std::int64_t) {
  if (options_.dry_run)
    throw StoreError(StoreError::Kind::unavailable, "a dry run never acts on a store");
  outbox();  // no state directory: fail before anything is selected
  return std::make_unique<FilesBatches>(*this, work);
}

std::vector<std::string> FilesStore::recompute(const files::Intent& intent) const {
  Fd live(::open(intent.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!live) {
    throw StoreError(StoreError::Kind::unavailable,
                     fmt::format("cannot open {} to settle an interrupted batch: {}",
                                 intent.root.string(), std::strerror(errno)));
  }
  Fd archive;
  if (intent.action == Action::archive)
    archive = Fd(::open(intent.archive_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  FolderChain live_chain(live.get());
  std::optional<FolderChain> archive_chain;
  if (archive) archive_chain.emplace(archive.get());
  auto regular_at = [](FolderChain& chain, std::string_view dir, const std::string& name) {
    int fd = chain.open(dir);
    struct stat st {};
    return fd >= 0 && ::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISREG(st.st_mode);
  };
  std::vector<std::string> acted;
  for (const auto& path : intent.paths) {
    auto [dir, name_view] = split_parent(path);
    std::string name(name_view);
    bool in_live = regular_at(live_chain, dir, name);
    if (intent.action != Action::archive) {
      if (!in_live) acted.push_back(path);
      continue;
    }
    if (!archive_chain) continue;  // nothing reached the archive
    // A copy the interrupted batch had not put in place yet.
    if (int fd = archive_chain->open(dir); fd >= 0)
      ::unlinkat(fd, archive_temp_name(name).c_str(), 0);
    if (!in_live && regular_at(*archive_chain, dir, name)) acted.push_back(path);
  }
  if (intent.remove_empty_folders) {
    // The interrupted batch may have emptied folders it had no time to remove.
    std::set<std::string> emptied;
    for (const auto& path : acted) emptied.insert(std::string(split_parent(path).first));
    live_chain.reset();
    remove_emptied_folders(live.get(), emptied);
  }
  return acted;
}

Result<int> FilesStore::settle_outbox(AuditLog& audit) {
  if (options_.state_dir.empty()) return 0;
  auto& box = outbox();
  box.remove_torn();
  std::vector<OutboxRow> rows;
  std::vector<std::int64_t> empty;
  for (auto& p : box.pending()) {
    if (!p.intent) {
      return fail(ExitCode::data_error,
                  fmt::format("{}: outbox intent {} is damaged; the batch it stands for must be "
                              "logged by hand",
                              label(), p.file.string()));
    }
    AuditEntry entry = p.intent->entry;
    if (!p.intent->done) {
      auto acted = recompute(*p.intent);
      if (acted.empty()) {
        empty.push_back(p.number);
        continue;
      }
      BatchKeys digest(options_.receipts);
      for (const auto& path : acted) digest.add(path);
      entry.affected = static_cast<std::int64_t>(acted.size());
      entry.keys_sha256 = digest.finish();
    }
    rows.push_back({p.number, entry.to_json().dump()});
  }
  std::vector<std::int64_t> settled;
  auto appended = settle_outbox_rows(rows, audit, label(), settled);
  if (!appended) return appended;
  for (auto n : settled) box.remove(n);
  for (auto n : empty) box.remove(n);
  return appended;
}

void FilesStore::forget_outbox_rows() {
  if (logged_intents_.empty()) return;
  for (auto n : logged_intents_) outbox().remove(n);
  logged_intents_.clear();
}

}  // namespace retentiond
