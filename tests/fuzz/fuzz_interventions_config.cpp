// An interventions configuration (YAML): parse_intervention_settings. Every failure is an InterventionConfigError
// naming the file; every success holds limits in range and policies with a trigger and an action.
#include <execution_sentinel/interventions/config.hpp>

#include "fuzz_target.hpp"

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    try {
        auto s = parse_intervention_settings(data, "fuzz.yaml");
        expect(s.max_per_hour >= 0 && s.max_per_run >= 0, "limits not negative");
        for (auto& p : s.policies) expect(!p.on.empty() && !p.name.empty(), "a policy has a trigger and a name");
    } catch (const InterventionConfigError& e) {
        expect(std::string_view(e.what()).starts_with("fuzz.yaml"), "errors name the file");
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
