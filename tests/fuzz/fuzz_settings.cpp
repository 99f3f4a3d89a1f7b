// A .env file and SENTINEL_* values: every failure is a SettingsError naming the variable.
#include <execution_sentinel/settings.hpp>

#include "fuzz_target.hpp"

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace es = execution_sentinel;
    try {
        auto dotenv = es::parse_dotenv(data);
        (void)es::load_settings([](const std::string&) { return std::optional<std::string>{}; }, dotenv);
    } catch (const es::SettingsError&) {
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
