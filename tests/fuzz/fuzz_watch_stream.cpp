// Watch stream bytes from the API server: framed into events (split at a position taken from the input),
// then every object parsed into the typed views. Errors are error codes; nothing may throw or crash.
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/watch_framer.hpp>

#include "fuzz_target.hpp"

#include <vector>

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace kube = execution_sentinel::kube;
    std::size_t split = data.empty() ? 0 : static_cast<unsigned char>(data[0]) % (data.size() + 1);
    kube::WatchFramer framer(1 << 20);
    std::vector<kube::RawWatchEvent> events;
    try {
        std::error_code ec = framer.feed(data.substr(0, split), events);
        if (!ec) ec = framer.feed(data.substr(split), events);
        if (!ec) (void)framer.finish();
        for (auto& e : events) {
            (void)kube::parse_pod(e.object);
            (void)kube::parse_job(e.object);
            (void)kube::parse_event(e.object);
            (void)kube::parse_status(boost::json::value(e.object));
        }
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
