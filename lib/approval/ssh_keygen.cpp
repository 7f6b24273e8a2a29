#include "approval/ssh_keygen.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

namespace retentiond {
namespace {

namespace fs = std::filesystem;

struct Ran {
  int status = -1;  // the exit status, or -1 when killed by a signal
  std::string out;
  std::string err;
};

// The binary from a fixed list, never from the caller's PATH: the daemon's
// environment must not decide which program judges a signature.
std::optional<fs::path> ssh_keygen_binary() {
  for (const char* candidate :
       {"/usr/bin/ssh-keygen", "/bin/ssh-keygen", "/usr/local/bin/ssh-keygen"}) {
    if (::access(candidate, X_OK) == 0) return fs::path(candidate);
  }
  return std::nullopt;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Runs ssh-keygen with `args` (fork and exec, no shell), stdin read from
// `input` (or /dev/null), and captures its stdout and stderr.
Result<Ran> run_ssh_keygen(const std::vector<std::string>& args, const fs::path& input) {
  auto binary = ssh_keygen_binary();
  if (!binary) {
    return fail(ExitCode::unavailable,
                "ssh-keygen not found in /usr/bin, /bin or /usr/local/bin: approved plans are "
                "verified with OpenSSH's ssh-keygen; install it (Debian: openssh-client)");
  }
  Fd in(::open(input.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) {
    return fail(ExitCode::no_input,
                fmt::format("cannot read {}: {}", input.string(), std::strerror(errno)));
  }
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return fail(ExitCode::software, "pipe2 failed");
  Fd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return fail(ExitCode::software, "pipe2 failed");
  Fd err_read(err_pipe[0]), err_write(err_pipe[1]);

  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls (the daemon has other threads).
  std::vector<std::string> all{binary->string()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string path_env = "PATH=/usr/bin:/bin", locale_env = "LC_ALL=C";
  std::array<char*, 3> envp{path_env.data(), locale_env.data(), nullptr};

  pid_t child = ::fork();
  if (child < 0) return fail(ExitCode::software, fmt::format("fork: {}", std::strerror(errno)));
  if (child == 0) {
    if (::dup2(in.get(), 0) < 0 || ::dup2(out_write.get(), 1) < 0 ||
        ::dup2(err_write.get(), 2) < 0) {
      ::_exit(127);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  out_write.reset();
  err_write.reset();
  in.reset();

  Ran ran;
  std::array<pollfd, 2> fds{pollfd{out_read.get(), POLLIN, 0}, pollfd{err_read.get(), POLLIN, 0}};
  std::array<std::string*, 2> sinks{&ran.out, &ran.err};
  int open_fds = 2;
  char buffer[4096];
  while (open_fds > 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;  // poll ignores negative descriptors
        --open_fds;
      }
    }
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return fail(ExitCode::software, "waitpid on ssh-keygen failed");
  }
  ran.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (ran.status == 127) {
    return fail(ExitCode::unavailable, fmt::format("could not run {}", binary->string()));
  }
  return ran;
}

// ssh-keygen's own words, on one line, for a message.
std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  for (auto& c : text) {
    if (c == '\n') c = ' ';
  }
  return text.empty() ? "no reason given" : text;
}

}  // namespace

Result<std::string> verify_ssh_signature(const fs::path& file, const fs::path& signature,
                                         const fs::path& allowed_signers) {
  std::error_code ec;
  if (!fs::is_regular_file(allowed_signers, ec)) {
    return fail(
        ExitCode::no_perm,
        fmt::format("the allowed signers file {} (approval: allowed_signers) cannot be read",
                    allowed_signers.string()));
  }
  // Who signed: the principals the allowed-signers file gives the signing key.
  auto found = run_ssh_keygen(
      {"-Y", "find-principals", "-s", signature.string(), "-f", allowed_signers.string()},
      "/dev/null");
  if (!found) return std::unexpected(found.error());
  std::string principal = found->out.substr(0, found->out.find('\n'));
  if (found->status != 0 || principal.empty()) {
    return fail(ExitCode::no_perm,
                fmt::format("its signature {} is not by a signer in {} ({})", signature.string(),
                            allowed_signers.string(), one_line(found->err)));
  }
  // That the signature is good, over these bytes, in our namespace, by a
  // key the file allows that principal to use for it.
  auto verified =
      run_ssh_keygen({"-Y", "verify", "-f", allowed_signers.string(), "-I", principal, "-n",
                      std::string(kPlanSignatureNamespace), "-s", signature.string()},
                     file);
  if (!verified) return std::unexpected(verified.error());
  if (verified->status != 0) {
    return fail(ExitCode::no_perm,
                fmt::format("its signature {} does not verify for signer '{}' in namespace {} ({})",
                            signature.string(), principal, kPlanSignatureNamespace,
                            one_line(verified->err + verified->out)));
  }
  return principal;
}

}  // namespace retentiond
