#include "stores/files/tree.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "stores/store_error.hpp"

namespace retentiond::files {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

int Fd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

bool is_temp_name(std::string_view name) { return name.starts_with(kTempPrefix); }

Fd open_folder_at(int parent, const std::string& name) {
  return Fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

std::pair<std::string_view, std::string_view> split_parent(std::string_view rel) {
  auto slash = rel.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

int FolderChain::open(std::string_view rel_dir, std::vector<std::size_t>* created) {
  if (open_ && rel_dir == current_) return fds_.empty() ? root_ : fds_.back().get();
  open_ = false;
  std::vector<std::string> steps;
  for (std::size_t start = 0; start < rel_dir.size();) {
    auto slash = rel_dir.find('/', start);
    if (slash == std::string_view::npos) slash = rel_dir.size();
    steps.emplace_back(rel_dir.substr(start, slash - start));
    start = slash + 1;
  }
  std::size_t keep = 0;
  while (keep < steps.size() && keep < names_.size() && steps[keep] == names_[keep]) ++keep;
  names_.resize(keep);
  fds_.resize(keep);
  for (std::size_t i = keep; i < steps.size(); ++i) {
    int parent = i == 0 ? root_ : fds_[i - 1].get();
    Fd fd = open_folder_at(parent, steps[i]);
    if (!fd && errno == ENOENT && created) {
      if (::mkdirat(parent, steps[i].c_str(), 0700) != 0 && errno != EEXIST) return -1;
      created->push_back(i + 1);
      fd = open_folder_at(parent, steps[i]);
    }
    if (!fd) return -1;
    names_.push_back(steps[i]);
    fds_.push_back(std::move(fd));
  }
  open_ = true;
  current_ = rel_dir;
  return fds_.empty() ? root_ : fds_.back().get();
}

int FolderChain::folder(std::size_t step) const { return step == 0 ? root_ : fds_[step - 1].get(); }

void FolderChain::reset() {
  names_.clear();
  fds_.clear();
  open_ = false;
}

struct TreeWalk::Level {
  DIR* dir = nullptr;
  std::string rel;
  Glob::State state;
  bool held = false;
  Fd mirror;
  ~Level() {
    if (dir) ::closedir(dir);
  }
};

namespace {

[[noreturn]] void unreadable(std::string_view rel, int error) {
  throw StoreError(
      StoreError::Kind::unavailable,
      fmt::format("cannot read folder '{}': {}", rel.empty() ? "." : rel, std::strerror(error)));
}

}  // namespace

TreeWalk::TreeWalk(int root, const Glob& glob, Options options)
    : glob_(glob), options_(std::move(options)) {
  auto level = std::make_unique<Level>();
  Fd fd(::openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || !(level->dir = ::fdopendir(fd.get()))) unreadable("", errno);
  fd.release();
  level->state = glob_.start();
  if (options_.mirror_root >= 0)
    level->mirror = Fd(::openat(options_.mirror_root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  level->held =
      has_hold_file(::dirfd(level->dir)) || (level->mirror && has_hold_file(level->mirror.get()));
  stack_.push_back(std::move(level));
}

TreeWalk::~TreeWalk() = default;

bool TreeWalk::has_hold_file(int folder) const {
  if (options_.hold_file.empty()) return false;
  struct stat st {};
  return ::fstatat(folder, options_.hold_file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

bool TreeWalk::push(int parent, const std::string& name, Level* above) {
  Glob::State state = glob_.enter(above->state, name);
  if (state.empty()) return false;
  std::string rel = above->rel.empty() ? name : above->rel + "/" + name;
  Fd fd = open_folder_at(parent, name);
  if (!fd) {
    // Gone, or replaced by a link or a file since it was listed: not ours to follow.
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return false;
    unreadable(rel, errno);
  }
  auto level = std::make_unique<Level>();
  if (!(level->dir = ::fdopendir(fd.get()))) unreadable(rel, errno);
  fd.release();
  level->rel = std::move(rel);
  level->state = std::move(state);
  if (above->mirror) level->mirror = open_folder_at(above->mirror.get(), name);
  level->held = above->held || has_hold_file(::dirfd(level->dir)) ||
                (level->mirror && has_hold_file(level->mirror.get()));
  stack_.push_back(std::move(level));
  return true;
}

bool TreeWalk::next(FoundFile& out) {
  while (!stack_.empty()) {
    Level* top = stack_.back().get();
    errno = 0;
    dirent* e = ::readdir(top->dir);
    if (!e) {
      if (errno != 0) unreadable(top->rel, errno);
      stack_.pop_back();
      continue;
    }
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    int folder = ::dirfd(top->dir);
    unsigned char type = e->d_type;
    struct stat st {};
    if (type == DT_UNKNOWN) {
      if (::fstatat(folder, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
      if (type == DT_REG && glob_.matches_file(top->state, name) && !is_temp_name(name)) {
        out.rel = top->rel.empty() ? std::string(name) : top->rel + "/" + std::string(name);
        out.st = st;
        out.held_by_file = top->held;
        return true;
      }
    }
    if (type == DT_DIR) {
      if (glob_.may_descend(top->state)) push(folder, std::string(name), top);
      continue;
    }
    // Links, FIFOs, devices and sockets are not records: never counted.
    if (type != DT_REG || !glob_.matches_file(top->state, name) || is_temp_name(name)) continue;
    if (options_.stat_files) {
      if (::fstatat(folder, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone since
      if (!S_ISREG(st.st_mode)) continue;
    }
    out.rel = top->rel.empty() ? std::string(name) : top->rel + "/" + std::string(name);
    out.st = st;
    out.held_by_file = top->held;
    return true;
  }
  return false;
}

}  // namespace retentiond::files
