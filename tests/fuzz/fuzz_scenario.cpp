// Scenario files for the simulated cluster: every failure is a ScenarioError naming the step and field.
#include <execution_sentinel/testing/scenario.hpp>

#include "fuzz_target.hpp"

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace testing = execution_sentinel::testing;
    try {
        (void)testing::Scenario::parse(data);
    } catch (const testing::ScenarioError&) {
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
