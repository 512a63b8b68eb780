#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "tests/unit/store/store_test_support.hpp"

using namespace hubgate;
using namespace hubgate::store;
using namespace hubgate::store::testing;

namespace {

// Collects complete "c-<n>" lines from the child's stdout (other lines are its log output).
struct LineReader {
    int fd;
    std::string pending;
    std::vector<std::string> ids;

    bool read_some() {  // false at EOF
        char buf[4096];
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return false;
        pending.append(buf, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
            std::string line = pending.substr(start, nl - start);
            if (line.rfind("c-", 0) == 0) ids.push_back(std::move(line));
        }
        pending.erase(0, start);
        return true;
    }
};

}  // namespace

TEST_CASE("every message reported durable survives SIGKILL of the writer, with power and process durability") {
    std::random_device seed_source;
    std::mt19937 rng(seed_source());
    for (int round = 0; round < 10; ++round) {
        const char* durability = round % 2 == 0 ? "power" : "process";
        const std::string seed = std::to_string(rng());
        const int kill_after = std::uniform_int_distribution<int>(5, 400)(rng);
        CAPTURE(round);
        CAPTURE(durability);
        CAPTURE(seed);
        CAPTURE(kill_after);

        StoreFixture f;
        const std::string& path = f.options.limits.path;
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::dup2(fds[1], STDOUT_FILENO);
            ::close(fds[0]);
            ::close(fds[1]);
            ::execl(STORE_CRASH_CHILD, STORE_CRASH_CHILD, path.c_str(), durability, seed.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(fds[1]);
        LineReader lines{fds[0], {}, {}};
        while (lines.ids.size() < static_cast<std::size_t>(kill_after) && lines.read_some()) {
        }
        // Vary where in the commit cycle the kill lands (not an assertion on time).
        std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 3000)(rng)));
        ::kill(pid, SIGKILL);
        while (lines.read_some()) {
        }
        ::close(fds[0]);
        int status = 0;
        ::waitpid(pid, &status, 0);
        REQUIRE(WIFSIGNALED(status));
        REQUIRE(lines.ids.size() >= static_cast<std::size_t>(kill_after));

        f.options.limits.durability = round % 2 == 0 ? config::Durability::power : config::Durability::process;
        auto store = f.open();
        std::set<std::string> stored;
        for (const auto& m : read_all(*store)) stored.insert(m.message.system.message_id);
        std::size_t missing = 0;
        for (const auto& id : lines.ids)
            if (!stored.count(id)) ++missing;
        CHECK(missing == 0);
        CHECK(store->stats().messages == stored.size());
    }
}
