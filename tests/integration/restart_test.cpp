// Restart-safe watching end to end: `execution-sentinel watch --state FILE` killed with SIGKILL at several points
// of a run on FakeCluster (things keep happening while it is down) and started again makes, over all its lives,
// exactly the reports of one uninterrupted watch — none twice, none lost — and the ones that became due while it
// was down are marked late. The run's history (the same SQLite file) holds one run with every report once.
#include <execution_sentinel/history/sqlite_store.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catch.hpp"

extern char** environ;

namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string cli_path = EXECUTION_SENTINEL_BINARY_DIR "/tools/execution-sentinel/execution-sentinel";

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "es-restart-XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

/// A run with an OOM kill and its retry, a failing phase (mass failure), a task failure only the engine's log
/// shows, Jobs deleted 20 s after they finish, and the engine writing exit code 1 at the end.
est::Scenario scenario(const std::string& ns) {
    est::Scenario s;
    s.name = "restart";
    s.namespace_name = ns;
    s.engine_at = 0;
    s.ttl_seconds_after_finished = 20;
    s.metrics_api = est::MetricsApi::absent;
    auto add = [&](std::string type, int proc, double start, double duration, est::TaskOutcome outcome) {
        est::TaskDecl t;
        t.type = std::move(type);
        t.proc_id = proc;
        t.start = start;
        t.pending = 1;
        t.duration = duration;
        t.outcome = outcome;
        t.failed_attempts = 1;
        t.backoff_limit = outcome == est::TaskOutcome::oom ? 6 : 0;
        s.add_task(t);
    };
    for (int i = 1; i <= 6; ++i)
        add("individuals", i, 1 + i, 4 + i, i == 2 ? est::TaskOutcome::oom : est::TaskOutcome::succeed);
    add("individuals_merge", 7, 16, 3, est::TaskOutcome::succeed);
    add("sifting", 8, 16, 2, est::TaskOutcome::script_error);
    for (int i = 9; i <= 12; ++i) add("frequency", i, 21, 2 + (i % 3), i == 12 ? est::TaskOutcome::succeed : est::TaskOutcome::fail);
    s.complete_at(32, 1);
    return s;
}

std::string normalized(std::string key);

/// One life of the program: started with its stdout and stderr in files, killed or awaited.
class Watch {
public:
    Watch(const TempDir& dir, const std::string& state, int life) {
        out_ = dir.file("out-" + std::to_string(life));
        err_ = dir.file("err-" + std::to_string(life));
        std::vector<std::string> args = {cli_path, "watch", "--context", dir.file("context.json"), "--kubeconfig",
                                         dir.file("kubeconfig.yaml"), "--state", state, "--output", "json",
                                         "--poll", "0.2", "--timeout", "300"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        std::vector<std::string> env_storage = {"SENTINEL_METRICS_INTERVAL=0", "SENTINEL_EVIDENCE_LOG_LINES=0",
                                                "HOME=" + dir.path.string()};
        std::vector<char*> envp;
        for (auto& e : env_storage) envp.push_back(e.data());
        for (char** e = environ; *e; ++e)
            if (std::string_view(*e).starts_with("PATH=")) envp.push_back(*e);
        envp.push_back(nullptr);
        if (posix_spawn(&pid_, cli_path.c_str(), &fa, nullptr, argv.data(), envp.data()) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    ~Watch() {
        if (pid_ > 0) kill();
    }
    bool started() const { return pid_ > 0; }
    void kill() {
        ::kill(pid_, SIGKILL);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
    }
    /// Exit status, or -1 when it did not end within `limit`.
    int wait(std::chrono::seconds limit) {
        auto until = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < until) {
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            std::this_thread::sleep_for(50ms);
        }
        return -1;
    }
    /// The reports printed so far (NDJSON lines with a "key").
    std::vector<boost::json::object> reports() const {
        std::vector<boost::json::object> out;
        std::ifstream in(out_);
        std::string line;
        while (std::getline(in, line)) {
            boost::system::error_code ec;
            auto v = boost::json::parse(line, ec);
            if (ec || !v.is_object() || !v.as_object().contains("key")) continue;
            out.push_back(v.as_object());
        }
        return out;
    }
    std::string errors() const {
        std::ifstream in(err_);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

private:
    pid_t pid_ = -1;
    std::string out_, err_;
};

/// Steps the scenario in half-second steps of its time, 0.25 s of wall time each so that the watch keeps up.
void play(est::ScenarioRunner& runner, double from, double to) {
    for (double t = from; t <= to + 1e-9; t += 0.5) {
        runner.run_until(t);
        std::this_thread::sleep_for(250ms);
    }
}

struct Outcome {
    std::vector<boost::json::object> reports; ///< over every life, in order
    std::multiset<std::string> recorded;      ///< keys of the reports in the history store (uids normalized)
    bool recorded_once = false;               ///< no key recorded twice (as recorded)
    std::string errors;
    int status = -1;
};

/// Plays the whole scenario; the watch is killed after each time in `kills` and started again `down` scenario
/// seconds later.
Outcome run(const std::vector<double>& kills, double down) {
    TempDir dir;
    const auto s = scenario("restart");
    est::FakeClusterOptions o;
    o.default_namespace = s.namespace_name;
    est::FakeCluster cluster(o);
    est::ScenarioRunner runner(cluster, s);
    std::ofstream(dir.file("kubeconfig.yaml")) << cluster.kubeconfig();
    std::ofstream(dir.file("context.json")) << s.context_json();
    const auto state = dir.file("state.db");
    Outcome out;
    int life = 0;
    auto watch = std::make_unique<Watch>(dir, state, life++);
    REQUIRE(watch->started());
    std::this_thread::sleep_for(1500ms); // the first lists
    double t = 0;
    for (double k : kills) {
        play(runner, t, k);
        std::this_thread::sleep_for(600ms); // it has seen everything up to k, and checkpointed it
        watch->kill();
        for (auto& r : watch->reports()) out.reports.push_back(r);
        out.errors += watch->errors();
        play(runner, k + 0.5, k + down); // what happens while nobody watches
        t = k + down + 0.5;
        watch = std::make_unique<Watch>(dir, state, life++);
        REQUIRE(watch->started());
        std::this_thread::sleep_for(1000ms);
    }
    play(runner, t, s.duration() + 1);
    out.status = watch->wait(60s);
    for (auto& r : watch->reports()) out.reports.push_back(r);
    out.errors += watch->errors();

    // the history in the same file: one run, every report once
    es::history::SqliteHistoryStore store(state);
    auto runs = store.list_runs({});
    CHECK(runs.size() == 1);
    if (!runs.empty()) {
        std::multiset<std::string> raw;
        for (auto& r : store.reports(runs.front().id)) {
            raw.insert(r.key);
            out.recorded.insert(normalized(r.key));
        }
        out.recorded_once = std::set<std::string>(raw.begin(), raw.end()).size() == raw.size();
    }
    return out;
}

/// The simulated cluster draws pod uids at random: keys compared across two clusters name them "<uid>".
std::string normalized(std::string key) {
    static const std::regex uid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    return std::regex_replace(key, uid, "<uid>");
}

std::multiset<std::string> keys_of(const std::vector<boost::json::object>& rs) {
    std::multiset<std::string> out;
    for (auto& r : rs) out.insert(normalized(std::string(r.at("key").as_string())));
    return out;
}

bool unique(const std::multiset<std::string>& keys) { return std::set<std::string>(keys.begin(), keys.end()).size() == keys.size(); }

} // namespace

TEST_CASE("watch --state: killed and restarted, the same reports as one uninterrupted watch", "[restart][cli]") {
    if (!fs::exists(cli_path)) {
        WARN("SKIP: the execution-sentinel program is not built");
        SUCCEED("skipped (the warning above says why)");
        return;
    }
    auto whole = run({}, 0);
    INFO("uninterrupted watch's stderr: " << whole.errors);
    REQUIRE(whole.status == 1); // the engine wrote exit code 1
    const auto expected = keys_of(whole.reports);
    REQUIRE(unique(expected));
    REQUIRE(whole.recorded_once);
    for (auto& k : expected) CHECK(whole.recorded.count(k) == 1); // printed ones are recorded (with the lifecycle)
    auto has = [&](std::string_view type) {
        for (auto& r : whole.reports)
            if (r.at("type").as_string() == type) return true;
        return false;
    };
    REQUIRE(has("ANOMALY_OOMKILL"));
    REQUIRE(has("MASS_FAILURE"));
    REQUIRE(has("ANOMALY_TASK_FAILED"));
    REQUIRE(has("COMPLETION"));

    // killed three times: while the individuals run (the OOM kill happens while it is down), in the failing
    // frequency phase, and just before the end
    auto restarted = run({4.5, 21.5, 29}, 3);
    INFO("restarted watch's stderr: " << restarted.errors);
    CHECK(restarted.status == 1);
    const auto got = keys_of(restarted.reports);
    CHECK(got == expected);
    CHECK(restarted.recorded_once);
    // the history: every report once, the lifecycle included
    std::vector<std::string> only_restarted, only_whole;
    std::set_difference(restarted.recorded.begin(), restarted.recorded.end(), whole.recorded.begin(),
                        whole.recorded.end(), std::back_inserter(only_restarted));
    std::set_difference(whole.recorded.begin(), whole.recorded.end(), restarted.recorded.begin(),
                        restarted.recorded.end(), std::back_inserter(only_whole));
    for (auto& k : only_restarted) UNSCOPED_INFO("recorded only by the restarted watch: " << k);
    for (auto& k : only_whole) UNSCOPED_INFO("recorded only by the uninterrupted watch: " << k);
    CHECK(restarted.recorded == whole.recorded);
    int late = 0;
    for (auto& r : restarted.reports)
        if (auto* d = r.at("details").as_object().if_contains("late"); d && d->as_bool()) ++late;
    CHECK(late > 0); // what happened while it was down
    CHECK(restarted.errors.find("resuming run") != std::string::npos);
}
