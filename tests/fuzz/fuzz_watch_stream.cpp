// Watch stream bytes from the API server, split at a position taken from the input, through both decoders: the
// tree-based reference (WatchFramer + the typed parsers) and the SAX WatchDecoder of every resource. Errors are
// error codes; nothing may throw or crash; both must agree on every event, field by field, and on every error.
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/watch_decoder.hpp>
#include <execution_sentinel/kube/watch_framer.hpp>

#include "fuzz_target.hpp"

#include <vector>

namespace {
namespace kube = execution_sentinel::kube;
using execution_sentinel::fuzz::expect;

template <class T>
void compare(std::string_view data, std::size_t split, const kube::WatchFramer& framer, std::error_code framer_ec,
             const std::vector<kube::RawWatchEvent>& raw) {
    kube::WatchDecoder<T> decoder(1 << 20);
    std::vector<kube::DecodedWatchEvent<T>> decoded;
    std::error_code ec = decoder.feed(data.substr(0, split), decoded);
    if (!ec) ec = decoder.feed(data.substr(split), decoded);
    if (!ec) ec = decoder.finish();
    expect(ec == framer_ec, "the SAX decoder fails like the reference");
    expect(decoder.error_message() == framer.error_message(), "the SAX decoder's error message is the reference's");
    expect(decoder.bytes_consumed() == framer.bytes_consumed(), "the SAX decoder consumes what the reference does");
    expect(decoded.size() == raw.size(), "the SAX decoder yields as many events as the reference");
    for (std::size_t i = 0; i < raw.size() && i < decoded.size(); ++i) {
        expect(decoded[i].type == raw[i].type, "event types agree");
        expect(decoded[i].object == kube::ResourceTraits<T>::parse(raw[i].object), "typed views agree");
        expect(decoded[i].status == kube::parse_status(boost::json::value(raw[i].object)), "statuses agree");
    }
}
} // namespace

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    std::size_t split = data.empty() ? 0 : static_cast<unsigned char>(data[0]) % (data.size() + 1);
    kube::WatchFramer framer(1 << 20);
    std::vector<kube::RawWatchEvent> events;
    try {
        std::error_code ec = framer.feed(data.substr(0, split), events);
        if (!ec) ec = framer.feed(data.substr(split), events);
        if (!ec) ec = framer.finish();
        compare<kube::Pod>(data, split, framer, ec, events);
        compare<kube::Job>(data, split, framer, ec, events);
        compare<kube::Event>(data, split, framer, ec, events);
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
