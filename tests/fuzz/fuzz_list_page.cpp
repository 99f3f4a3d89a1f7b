// The answer to a list request as the Watcher reads it: the JSON body, the item cap checked before decoding,
// and the page decoded into pods, jobs or events; and the same bytes as the body of an error answer (a Status,
// an HTML page from a proxy, plain text) with a Retry-After header. The first input byte picks the HTTP status,
// the item cap and the length of the Retry-After header, which is taken from the start of the body.
#include <execution_sentinel/kube/detail/http_util.hpp>
#include <execution_sentinel/kube/watch_machine.hpp>
#include <execution_sentinel/kube/watcher.hpp>

#include "fuzz_target.hpp"

#include <boost/json.hpp>

#include <string>

namespace {
template <class T> void decode(const boost::json::value& body) {
    namespace kube = execution_sentinel::kube;
    using execution_sentinel::fuzz::expect;
    kube::ListPage<T> page;
    if (auto ec = kube::parse_list_page(body, page)) {
        expect(ec == kube::error::malformed_response, "a page that is not a list is malformed_response");
        return;
    }
    const auto& items = body.as_object().at("items");
    expect(page.items.size() == (items.is_array() ? items.get_array().size() : 0), "every item is decoded");
    for (auto& item : page.items) expect(!item.meta.name.empty(), "every decoded item has a name");
}
} // namespace

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace kube = execution_sentinel::kube;
    if (data.empty()) return;
    const auto head = static_cast<unsigned char>(data[0]);
    data.remove_prefix(1);
    try {
        boost::system::error_code ec;
        auto body = boost::json::parse(data, ec); // as Client::parse_json
        if (!ec) {
            const std::size_t max_items = head % 4;
            auto too_large = kube::detail::list_page_too_large(body, max_items);
            if (too_large) {
                expect(max_items > 0 && body.as_object().at("items").as_array().size() > max_items,
                       "only a page over the cap is refused");
            } else {
                decode<kube::Pod>(body);
                decode<kube::Job>(body);
                decode<kube::Event>(body);
            }
        }

        const int http_status = 400 + head % 200;
        const std::string_view retry_after = data.substr(0, head % 24);
        auto [code, diagnostics] = kube::error_from_response(http_status, data, retry_after, "GET pods in namespace wf");
        (void)code;
        expect(diagnostics.http_status == http_status, "the diagnostics carry the HTTP status");
        expect(!diagnostics.client_message.empty(), "an error answer says what to do");
        if (diagnostics.retry_after_seconds) expect(*diagnostics.retry_after_seconds >= 0, "Retry-After is not negative");
        if (auto seconds = kube::parse_retry_after(retry_after, std::chrono::seconds(32)))
            expect(seconds->count() >= 0 && seconds->count() <= 32, "Retry-After is capped");
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
