// execution-sentinel-cluster: serves a simulated Kubernetes API server over HTTPS on 127.0.0.1 and plays a HyperFlow
// scenario on it, so that any Kubernetes client (kubectl, client libraries, the monitor) can be pointed at it.
//
//   execution-sentinel-cluster [--scenario FILE] [--port N] [--kubeconfig-out FILE] [--context-out FILE]
//                              [--bookmark-interval S] [--verbose]
//
// Prints `ready <server-url>` on stdout once serving, plays the scenario, and keeps serving after it ends until
// SIGINT or SIGTERM; then exits 0. Bad arguments or a bad scenario: a message on stderr and exit status 2.
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <CLI/CLI.hpp>

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

namespace es = execution_sentinel::testing;

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

bool write_text(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << text;
    out.flush();
    return static_cast<bool>(out);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"Serves a simulated Kubernetes API server and plays a HyperFlow workflow scenario on it.",
                 "execution-sentinel-cluster"};
    std::string scenario_file;
    int port = 0;
    std::string kubeconfig_out;
    std::string context_out;
    double bookmark_interval = 60.0;
    bool verbose = false;
    app.add_option("--scenario", scenario_file, "Scenario JSON file to play (docs/scenarios.md); none: an empty cluster");
    app.add_option("--port", port, "TCP port on 127.0.0.1 (0: any free port)")->check(CLI::Range(0, 65535));
    app.add_option("--kubeconfig-out", kubeconfig_out, "Write a kubeconfig for the cluster to FILE");
    app.add_option("--context-out", context_out, "Write the scenario's MonitoringContext JSON to FILE");
    app.add_option("--bookmark-interval", bookmark_interval, "Seconds between BOOKMARK events on watches (default 60)")
        ->check(CLI::Range(0.001, 86400.0));
    app.add_flag("-v,--verbose", verbose, "Print every scenario step on stderr");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return exit_usage;
    }

    std::optional<es::Scenario> scenario;
    if (!scenario_file.empty()) {
        try {
            scenario = es::Scenario::from_file(scenario_file);
        } catch (const std::exception& e) {
            std::cerr << "execution-sentinel-cluster: " << e.what() << "\n";
            return exit_usage;
        }
    }

    // SIGINT/SIGTERM are received by sigwait() below; block them before any thread starts so none inherits them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    es::FakeClusterOptions options;
    options.port = static_cast<std::uint16_t>(port);
    options.bookmark_interval =
        std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(bookmark_interval * 1000.0)));
    if (scenario) options.default_namespace = scenario->namespace_name;

    std::optional<es::FakeCluster> cluster;
    try {
        cluster.emplace(options);
    } catch (const std::exception& e) {
        std::cerr << "execution-sentinel-cluster: cannot start the cluster: " << e.what() << "\n";
        return exit_failure;
    }

    if (!kubeconfig_out.empty()) {
        try {
            cluster->write_kubeconfig(kubeconfig_out);
        } catch (const std::exception& e) {
            std::cerr << "execution-sentinel-cluster: cannot write the kubeconfig to " << kubeconfig_out << ": "
                      << e.what() << "\n";
            return exit_usage;
        }
    }
    if (!context_out.empty()) {
        std::string context = scenario ? scenario->context_json() : es::Scenario{}.context_json();
        if (!write_text(context_out, context + "\n")) {
            std::cerr << "execution-sentinel-cluster: cannot write the context to " << context_out << "\n";
            return exit_usage;
        }
    }

    std::optional<es::ScenarioRunner> runner;
    if (scenario) {
        runner.emplace(*cluster, *scenario);
        runner->on_step([verbose](std::string_view line, bool ok) {
            // Failed steps always; the others with --verbose.
            if (verbose || !ok) std::cerr << (ok ? "" : "error: ") << line << "\n";
        });
    }

    std::cout << "ready " << cluster->server_url() << std::endl;
    if (runner) {
        std::cerr << "playing scenario \"" << scenario->name << "\" in namespace " << scenario->namespace_name << " ("
                  << runner->timeline().size() << " steps, about "
                  << static_cast<long>(std::lround(scenario->duration() * scenario->time_scale)) << " s)\n";
        runner->start();
    }

    // Report the end of the scenario, then keep serving until a signal arrives.
    std::thread reporter;
    if (runner) {
        reporter = std::thread([&] {
            runner->wait();
            if (runner->finished()) {
                auto errors = runner->errors();
                std::cerr << "scenario finished" << (errors.empty() ? "" : " with errors: ")
                          << (errors.empty() ? std::string{} : std::to_string(errors.size()))
                          << "; still serving until interrupted\n";
            }
        });
    }
    int received = 0;
    while (sigwait(&signals, &received) != 0) {
    }
    std::cerr << "received " << (received == SIGINT ? "SIGINT" : "SIGTERM") << ", stopping\n";
    if (runner) runner->stop();
    if (reporter.joinable()) reporter.join();
    runner.reset();
    cluster->stop();
    cluster.reset();
    return exit_ok;
}
