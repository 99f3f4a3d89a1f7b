// The alerts file (`watch --alerts FILE`): parse_alerts_config over arbitrary YAML, with every environment variable
// set to a secret URL and key. Every failure is an AlertsConfigError that names the file and never quotes a secret;
// every success has valid sinks (unique names, http(s) URLs, bounded attempts and durations).
#include <execution_sentinel/alerts/config.hpp>

#include "fuzz_target.hpp"

#include <optional>
#include <set>
#include <string>

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace al = execution_sentinel::alerts;
    static const std::string secret_url = "https://hooks.example.org/services/FUZZSECRETPATH";
    static const std::string secret_key = "FUZZHMACKEYSECRET";
    auto getenv = [](const std::string& name) -> std::optional<std::string> {
        if (name.find("KEY") != std::string::npos) return secret_key;
        return secret_url;
    };
    try {
        auto config = al::parse_alerts_config(data, "fuzz.yaml", getenv);
        expect(!config.sinks.empty(), "a valid file has at least one sink");
        std::set<std::string> names;
        for (const auto& s : config.sinks) {
            expect(!s.name.empty() && names.insert(s.name).second, "sink names are unique and not empty");
            expect(s.url.starts_with("http://") || s.url.starts_with("https://"), "the URL is http(s)");
            expect(s.max_attempts >= 1 && s.max_attempts <= 21, "attempts within 1..21");
            expect(s.cooldown.count() >= 0 && s.cooldown.count() <= 86'400'000, "cooldown within a day");
            expect(s.group_window.count() >= 0 && s.group_window.count() <= 86'400'000, "group window within a day");
            expect(s.timeout.count() >= 100, "timeout at least 100 ms");
            expect(s.max_group >= 1 && s.queue_capacity >= 1, "group and queue sizes at least 1");
            expect(s.hmac_key.empty() || s.kind == al::SinkKind::webhook, "only webhooks carry a key");
        }
    } catch (const al::AlertsConfigError& e) {
        std::string what = e.what();
        expect(what.starts_with("fuzz.yaml:"), "an error names the file");
        expect(what.find("FUZZSECRETPATH") == std::string::npos, "an error never quotes a webhook URL");
        expect(what.find(secret_key) == std::string::npos, "an error never quotes an HMAC key");
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
