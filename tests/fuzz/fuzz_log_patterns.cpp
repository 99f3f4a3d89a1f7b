// A user patterns file (SENTINEL_LOG_PATTERNS): every failure is a LogPatternError naming the file; every set read
// holds valid patterns within the limits, which then match lines without an exception.
#include <execution_sentinel/engine_log.hpp>

#include "fuzz_target.hpp"

#include <set>
#include <string>

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace es = execution_sentinel;
    es::LogPatterns set;
    try {
        set = es::parse_log_patterns(data, "fuzz.yaml");
    } catch (const es::LogPatternError& e) {
        expect(std::string_view(e.what()).starts_with("fuzz.yaml: "), "an error names the file");
        return;
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
    expect(set.size() <= es::max_log_patterns, "at most max_log_patterns patterns");
    std::set<std::string> names;
    for (auto& p : set.patterns()) {
        expect(!p.name.empty() && !p.regex.empty() && !p.message.empty(), "name, regex and message present");
        expect(p.regex.size() <= es::max_log_pattern_regex, "a bounded expression");
        expect(es::log_pattern_type_allowed(p.type), "an allowed report type");
        expect(names.insert(p.name).second, "unique names");
    }
    try {
        for (std::string_view line : {std::string_view("[hf] task failed: frequency (a:1:2:1) exit=1 time=3s"),
                                      std::string_view("errno 121 (EREMOTEIO) aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"),
                                      data.substr(0, 512)})
            for (auto& m : set.match(line)) expect(m.message.size() <= es::max_log_pattern_message, "a bounded message");
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
