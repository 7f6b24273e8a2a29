// A folder tree seen through directory descriptors, the way a files store
// must see it: every step down is an openat(O_DIRECTORY | O_NOFOLLOW) from
// the folder above, so a symbolic link is never followed and nothing outside
// the root is ever reached, whatever is renamed meanwhile.
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/glob.hpp"

namespace retentiond::files {

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release();

 private:
  int fd_ = -1;
};

// The prefix retentiond gives its temporary copies in an archive; such names
// are never matched, counted or acted on as records.
inline constexpr std::string_view kTempPrefix = ".retentiond-tmp.";
bool is_temp_name(std::string_view name);

// Opens subfolder `name` of `parent` without following a symbolic link.
// Invalid (errno set) when it is missing, not a folder, or a link.
Fd open_folder_at(int parent, const std::string& name);

// "a/b/c.pdf" -> {"a/b", "c.pdf"}; "c.pdf" -> {"", "c.pdf"}.
std::pair<std::string_view, std::string_view> split_parent(std::string_view rel);

// The folders from a root down to one relative folder, opened one step at a
// time, kept open for the next call: files of one batch mostly share their
// folder, and the chain is reopened only from where two folders part.
class FolderChain {
 public:
  explicit FolderChain(int root) : root_(root) {}

  // The folder `rel_dir` ("" is the root) or -1 (errno set) when one of its
  // steps is missing, not a folder, or a link. With `created`, missing
  // steps are made (mode 0700) and their numbers (1 for the first step below
  // the root) added to it.
  int open(std::string_view rel_dir, std::vector<std::size_t>* created = nullptr);

  // The folder of step `step` of the last open() (0: the root), for steps up
  // to depth(): after a failed open(), the steps that did open.
  int folder(std::size_t step) const;
  std::size_t depth() const { return fds_.size(); }
  // Forgets every open folder (after folders were removed).
  void reset();

 private:
  int root_;
  std::vector<std::string> names_;  // the steps currently open
  std::vector<Fd> fds_;
  bool open_ = false;  // the last open() reached `current_` whole
  std::string current_;
};

// A regular file found by a walk.
struct FoundFile {
  std::string rel;            // relative to the root
  struct stat st {};          // zeroed when the walk does not stat files
  bool held_by_file = false;  // a hold file in its folder or above
};

// A depth-first walk of the regular files under a root that match a glob,
// as a stream: only the folders on the current path are open, a folder
// that cannot hold a match is never read, symbolic links and special files
// are skipped without being counted, and retentiond's temporary copies are
// ignored. Entries are fstatat'ed, never opened: a walk changes no file's
// access time.
class TreeWalk {
 public:
  struct Options {
    // A file of this name in a folder holds every file in and below it.
    std::string hold_file;
    // Where else to look for hold files: a second tree walked in step (the
    // live store's, for files in an archive), -1 for none.
    int mirror_root = -1;
    // Whether FoundFile::st is read for every file; otherwise only where the
    // folder listing does not say an entry is a regular file.
    bool stat_files = true;
  };
  // Throws StoreError (unavailable) when a folder cannot be read.
  TreeWalk(int root, const Glob& glob, Options options);
  ~TreeWalk();
  TreeWalk(const TreeWalk&) = delete;
  TreeWalk& operator=(const TreeWalk&) = delete;

  // The next matching regular file; false at the end.
  bool next(FoundFile& out);

 private:
  struct Level;
  bool push(int parent, const std::string& name, Level* above);
  bool has_hold_file(int folder) const;

  const Glob& glob_;
  Options options_;
  std::vector<std::unique_ptr<Level>> stack_;
};

}  // namespace retentiond::files
