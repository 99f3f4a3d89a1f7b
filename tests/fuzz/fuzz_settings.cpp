// A .env file and SENTINEL_* values: parse_dotenv then load_settings; for one input in eight also the entry point
// the CLI uses (load_settings_from: the file read, parse_dotenv, load_settings); and the same entries given as
// environment variables instead. Every failure is a SettingsError naming the variable or the line; every success
// is within the documented ranges, and the three ways give the same outcome.
#include <execution_sentinel/settings.hpp>

#include "fuzz_target.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include <unistd.h>

namespace {
/// The .env file of this process, removed at exit.
struct DotenvFile {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("execution-sentinel-fuzz-" + std::to_string(::getpid()) + ".env");
    ~DotenvFile() {
        std::error_code ec;
        std::filesystem::remove(path, ec);
    }
};

void check_ranges(const execution_sentinel::SentinelSettings& s) {
    using execution_sentinel::fuzz::expect;
    expect(s.poll_interval >= execution_sentinel::min_poll_interval, "poll interval at least the minimum");
    expect(s.timeout.count() > 0, "timeout greater than zero");
    expect(s.straggler_multiplier >= 1.0 && s.straggler_multiplier <= 1000.0, "straggler multiplier in [1, 1000]");
    expect(s.mass_failure_threshold > 0.0 && s.mass_failure_threshold <= 1.0, "mass-failure ratio in (0, 1]");
    expect(s.straggler_quorum > 0.0 && s.straggler_quorum <= 1.0, "straggler quorum in (0, 1]");
    expect(s.straggler_min_siblings >= 1 && s.mass_failure_min_finished >= 1 &&
               s.mass_failure_min_finished_per_type >= 1 && s.connectivity_failures >= 1,
           "counts at least 1");
    expect(s.straggler_min_runtime.count() >= 0, "minimum runtime not negative");
    expect(s.stall_threshold.count() > 0 && s.pending_timeout.count() > 0 && s.mass_failure_burst_window.count() > 0,
           "stall threshold, pending timeout and burst window greater than zero");
    expect(s.stall_tiers.size() == 4 && s.stall_tiers.front() >= 1.0 && s.stall_tiers.back() <= 1000.0,
           "four stall tiers in [1, 1000]");
    for (std::size_t i = 1; i < s.stall_tiers.size(); ++i)
        expect(s.stall_tiers[i] > s.stall_tiers[i - 1], "stall tiers ascending");
    expect(s.mass_failure_burst_count >= 0, "burst count not negative");
    expect(s.memory_pressure_ratio > 0.0 && s.memory_pressure_ratio <= 1.0, "memory-pressure ratio in (0, 1]");
    expect(s.metrics_interval.count() == 0 || s.metrics_interval >= execution_sentinel::min_metrics_interval,
           "metrics interval off or at least the minimum");
    expect(s.evidence_log_lines >= 0 && s.evidence_log_lines <= 1000 && s.evidence_log_bytes >= 0 &&
               s.evidence_log_bytes <= 1024 * 1024,
           "evidence bounds within range");
    expect(s.baseline_min_samples >= 1 && s.baseline_override_factor >= 1.0 && s.baseline_override_factor <= 1000.0,
           "baseline settings within range");
}
} // namespace

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace es = execution_sentinel;
    static DotenvFile file;
    auto no_environment = [](const std::string&) { return std::optional<std::string>{}; };

    // The .env entries, then the settings they give.
    std::map<std::string, std::string> entries;
    bool parsed = false;
    std::optional<es::SentinelSettings> from_dotenv;
    try {
        entries = es::parse_dotenv(data);
        parsed = true;
        from_dotenv = es::load_settings(no_environment, entries);
        check_ranges(*from_dotenv);
    } catch (const es::SettingsError&) {
    } catch (const std::exception& e) {
        unexpected(e.what());
    }

    // The CLI's entry point reads the file itself. Writing the file is slow: one input in eight (chosen by
    // length, so the same input always takes the same path) goes through it and must give the same outcome.
    if (data.size() % 8 == 0) {
        try {
            {
                std::ofstream out(file.path, std::ios::binary | std::ios::trunc);
                out.write(data.data(), static_cast<std::streamsize>(data.size()));
            }
            auto from_file = es::load_settings_from(no_environment, file.path);
            expect(from_dotenv && *from_dotenv == from_file, "the .env file gives the same settings as its text");
        } catch (const es::SettingsError&) {
            expect(!from_dotenv, "a .env file is refused when its text is");
        } catch (const std::exception& e) {
            unexpected(e.what());
        }
    }
    if (!parsed) return;

    // The same entries as environment variables: the same validation, hence the same outcome.
    try {
        auto from_environment = es::load_settings([&](const std::string& name) -> std::optional<std::string> {
            if (auto it = entries.find(name); it != entries.end()) return it->second;
            return std::nullopt;
        });
        expect(from_dotenv && *from_dotenv == from_environment, "the environment gives the same settings as .env");
    } catch (const es::SettingsError&) {
        expect(!from_dotenv, "a value refused in the environment is refused in .env");
    } catch (const std::exception& e) {
        unexpected(e.what());
    }

    // Every value as a duration: nullopt or a duration of at most a year, never negative.
    for (auto& [name, value] : entries) {
        if (auto d = es::parse_duration(value))
            expect(d->count() >= 0 && d->count() <= 366LL * 24 * 3'600'000, "a duration is within a year");
    }
}
