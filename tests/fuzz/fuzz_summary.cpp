// WatchSummary JSON (summaries read back from files, stores and other processes): every failure is a
// SummaryFormatError naming the field, and what is read writes back to an equal summary.
#include <execution_sentinel/summary.hpp>

#include <boost/json/parse.hpp>

#include "fuzz_target.hpp"

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    boost::system::error_code ec;
    auto value = boost::json::parse(data, ec);
    if (ec) return;
    try {
        auto s = execution_sentinel::summary_from_json(value);
        auto again = execution_sentinel::summary_from_json(boost::json::value(execution_sentinel::to_json(s)));
        expect(again == s, "a summary written and read back is equal to the one written");
    } catch (const execution_sentinel::SummaryFormatError&) {
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
