// MonitoringContext JSON (the CLI's --context input): every failure is a ContextError naming the field.
#include <execution_sentinel/context.hpp>

#include "fuzz_target.hpp"

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    try {
        (void)execution_sentinel::context_from_json_text(data);
    } catch (const execution_sentinel::ContextError&) {
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
