// The real binary under a fake service manager: the test binds the
// NOTIFY_SOCKET datagram socket systemd would, sets WATCHDOG_USEC, runs
// `retentiond run` against a small SQLite store, sends it signals and reads
// what it tells the manager, in order.
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "sweep_support.hpp"

extern char** environ;

using namespace retentiond::test;
using Catch::Contains;
using Catch::StartsWith;

namespace {

// The manager's end: an AF_UNIX datagram socket; each datagram is split into
// its "KEY=VALUE" lines, read in order.
class NotifySocket {
 public:
  explicit NotifySocket(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path_.string().size() < sizeof(addr.sun_path));
    std::strcpy(addr.sun_path, path_.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path log;  // the daemon's stderr, shown when a message does not come

  // The next line starting with `prefix`, skipping the others; fails the
  // test when none comes in time.
  std::string expect(std::string_view prefix) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
    while (true) {
      while (!lines_.empty()) {
        std::string line = std::move(lines_.front());
        lines_.pop_front();
        seen_.push_back(line);
        if (line.rfind(prefix, 0) == 0) return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) continue;
      std::string datagram(buffer, static_cast<std::size_t>(n));
      std::size_t start = 0;
      while (start <= datagram.size()) {
        auto end = datagram.find('\n', start);
        if (end == std::string::npos) end = datagram.size();
        if (end > start) lines_.push_back(datagram.substr(start, end - start));
        start = end + 1;
      }
    }
    std::string all;
    for (const auto& l : seen_) all += l + "\n";
    FAIL("no '" << prefix << "' from the daemon; it said:\n"
                << all << "and logged:\n"
                << (log.empty() ? "" : read_file(log)));
    return {};
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::deque<std::string> lines_;
  std::vector<std::string> seen_;
};

// `retentiond ARGS...` with stderr to a file and the given extra environment;
// killed if the test ends early.
class Daemon {
 public:
  Daemon(const std::vector<std::string>& args, const std::vector<std::string>& env,
         const std::filesystem::path& log) {
    std::vector<std::string> environment;
    for (char** e = environ; *e; ++e) {
      std::string_view v(*e);
      if (v.starts_with("NOTIFY_SOCKET=") || v.starts_with("WATCHDOG_") ||
          v.starts_with("JOURNAL_STREAM=") || v.starts_with("LISTEN_")) {
        continue;
      }
      environment.emplace_back(v);
    }
    environment.insert(environment.end(), env.begin(), env.end());
    std::vector<char*> argv{const_cast<char*>(RETENTIOND_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : environment) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&pid_, RETENTIOND_BINARY, &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
  }
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  void signal(int signo) { REQUIRE(::kill(pid_, signo) == 0); }

  // The exit status, waiting at most 30 s.
  int wait() {
    for (int i = 0; i < 3000; ++i) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(10'000);
    }
    FAIL("the daemon did not exit");
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

std::string policy(std::string_view keep_for) {
  return fmt::format(
      "version: 1\n"
      "timezone: Europe/Paris\n"
      "stores:\n"
      "  events: {{ kind: sqlite, path: events.db }}\n"
      "rules:\n"
      "  - name: old-events\n"
      "    store: events\n"
      "    table: events\n"
      "    key: id\n"
      "    anchor: happened_on\n"
      "    keep_for: {}\n"
      "    action: delete\n",
      keep_for);
}

std::int64_t monotonic_usec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

}  // namespace

TEST_CASE("run tells the service manager READY, STATUS, WATCHDOG, RELOADING and STOPPING",
          "[daemon]") {
  TempDir dir;
  auto db = dir / "events.db";
  exec(db,
       "CREATE TABLE events (id INTEGER PRIMARY KEY, happened_on TEXT);"
       "CREATE INDEX events_on ON events (happened_on);"
       "INSERT INTO events (id, happened_on) VALUES (1, '2001-02-03'), (2, '2999-01-01')");
  auto policy_file = dir.write("policy.yaml", policy("200 years"));
  auto log = dir / "stderr.log";
  NotifySocket manager(dir / "notify.sock");
  Daemon daemon({"-c", policy_file.string(), "--state-dir", (dir / "state").string(), "run"},
                {"NOTIFY_SOCKET=" + manager.path().string(), "WATCHDOG_USEC=400000"}, log);
  manager.log = log;
  auto logged = [&] { return read_file(log); };

  // Up: the policy loaded and its store checked.
  manager.expect("READY=1");
  CHECK_THAT(manager.expect("STATUS="), StartsWith("STATUS=idle"));
  manager.expect("WATCHDOG=1");
  manager.expect("WATCHDOG=1");  // and again, every WATCHDOG_USEC/2

  // SIGHUP with a valid new policy: RELOADING=1 with the monotonic time, then READY=1.
  dir.write("policy.yaml", policy("5 years"));
  auto before = monotonic_usec();
  daemon.signal(SIGHUP);
  manager.expect("RELOADING=1");
  auto stamp = manager.expect("MONOTONIC_USEC=");
  auto usec = std::stoll(stamp.substr(std::strlen("MONOTONIC_USEC=")));
  CHECK(usec >= before);
  CHECK(usec <= monotonic_usec());
  manager.expect("READY=1");

  // SIGUSR1: a sweep now, under the reloaded policy.
  daemon.signal(SIGUSR1);
  CHECK_THAT(manager.expect("STATUS=sweeping"), Contains("requested by SIGUSR1"));
  CHECK_THAT(manager.expect("STATUS=idle"), Contains("last sweep") && Contains("1 affected"));
  CHECK(query_int(db, "SELECT count(*) FROM events WHERE id = 1") == 0);
  CHECK(query_int(db, "SELECT count(*) FROM events WHERE id = 2") == 1);

  // SIGHUP with a broken policy: logged with FILE:LINE:COLUMN, the old policy stays.
  dir.write("policy.yaml", policy("5 years\n    keep_fro: 1 year"));
  daemon.signal(SIGHUP);
  manager.expect("RELOADING=1");
  manager.expect("READY=1");
  CHECK_THAT(manager.expect("STATUS="), Contains("the last reload failed"));
  exec(db, "INSERT INTO events (id, happened_on) VALUES (3, '2002-02-02')");
  daemon.signal(SIGUSR1);
  manager.expect("STATUS=sweeping");
  CHECK_THAT(manager.expect("STATUS=idle"), Contains("1 affected"));
  CHECK(query_int(db, "SELECT count(*) FROM events") == 1);
  CHECK_THAT(logged(), Contains(policy_file.string() + ":12:5: unknown key 'keep_fro'"));

  // SIGTERM: STOPPING=1, exit 0.
  daemon.signal(SIGTERM);
  manager.expect("STOPPING=1");
  CHECK(daemon.wait() == 0);
  CHECK_THAT(logged(), Contains("stopped"));
}
