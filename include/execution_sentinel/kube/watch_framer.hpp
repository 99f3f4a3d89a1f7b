// Incremental framing of a watch response body into events. The apiserver sends a chunked stream of JSON
// documents {"type": ..., "object": {...}}, each followed by "\n"; transport chunks have nothing to do with
// event boundaries. One boost::json::stream_parser is fed across reads: bytes are never buffered twice and a
// stream has no size limit, while ONE event is capped (default 16 MiB). Pure: no I/O.
#ifndef EXECUTION_SENTINEL_KUBE_WATCH_FRAMER_HPP
#define EXECUTION_SENTINEL_KUBE_WATCH_FRAMER_HPP

#include <execution_sentinel/kube/error.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

/// The `type` of a watch event as sent by the apiserver.
enum class RawWatchEventType : std::uint8_t { added, modified, deleted, bookmark, error };

/// One framed watch event: its type and its `object` (for ERROR events, a metav1.Status).
struct RawWatchEvent {
    RawWatchEventType type = RawWatchEventType::added;
    boost::json::object object{};
};

/// Frames a watch body into RawWatchEvents.
///
/// feed() takes any byte chunk (several events, part of one, whitespace between documents) and appends the
/// complete events to `out`. A document that is not JSON, is not an object with a known string `type` and
/// an object `object`, or exceeds `max_event_size` bytes makes feed() return error::malformed_response or
/// error::event_too_large; error_message() then says where (byte offset in the stream, event number) and
/// the framer refuses input until reset(). Events completed before the error in the same chunk are still
/// appended.
class WatchFramer {
public:
    static constexpr std::size_t default_max_event_size = 16u << 20; ///< 16 MiB

    explicit WatchFramer(std::size_t max_event_size = default_max_event_size)
        : max_event_size_(max_event_size), parser_(boost::json::storage_ptr{}, parse_options()) {}

    /// Consumes `bytes`; appends every event completed by them to `out`.
    std::error_code feed(std::string_view bytes, std::vector<RawWatchEvent>& out);

    /// Call at the end of the stream: an error (connection_lost) if a document was left incomplete.
    std::error_code finish();

    /// Forgets any partial document and error: ready for a new stream.
    void reset();

    /// True when no document is partially received.
    bool between_events() const noexcept { return !in_document_; }

    /// Where the framer failed, in words: "malformed watch event #3 at byte 1042: syntax error".
    const std::string& error_message() const noexcept { return error_message_; }
    /// Byte offset in the stream (since construction or reset()) at which the last error was detected.
    std::uint64_t error_offset() const noexcept { return error_offset_; }
    /// Bytes consumed and events produced since construction or reset().
    std::uint64_t bytes_consumed() const noexcept { return offset_; }
    std::uint64_t events_produced() const noexcept { return events_; }

    std::size_t max_event_size() const noexcept { return max_event_size_; }

private:
    static boost::json::parse_options parse_options() {
        boost::json::parse_options opt;
        opt.max_depth = 128; // managedFields nest deeply; the default 32 is too tight for real objects
        return opt;
    }
    std::error_code fail(error e, std::string what);
    std::error_code take_document(std::vector<RawWatchEvent>& out);

    std::size_t max_event_size_;
    boost::json::stream_parser parser_;
    bool in_document_ = false;
    bool failed_ = false;
    std::size_t document_bytes_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t events_ = 0;
    std::uint64_t error_offset_ = 0;
    std::string error_message_{};
};

/// The event type for the apiserver's `type` string, or nullopt.
inline std::optional<RawWatchEventType> parse_watch_event_type(std::string_view s) noexcept {
    if (s == "ADDED") return RawWatchEventType::added;
    if (s == "MODIFIED") return RawWatchEventType::modified;
    if (s == "DELETED") return RawWatchEventType::deleted;
    if (s == "BOOKMARK") return RawWatchEventType::bookmark;
    if (s == "ERROR") return RawWatchEventType::error;
    return std::nullopt;
}

// ------------------------------------------------------------------------------------------- definitions

inline std::error_code WatchFramer::fail(error e, std::string what) {
    failed_ = true;
    error_offset_ = offset_;
    error_message_ = std::move(what);
    return e;
}

inline std::error_code WatchFramer::take_document(std::vector<RawWatchEvent>& out) {
    boost::json::value doc = parser_.release();
    in_document_ = false;
    document_bytes_ = 0;
    parser_.reset();
    auto where = [this] {
        return "watch event #" + std::to_string(events_ + 1) + " ending at byte " + std::to_string(offset_);
    };
    auto* o = doc.if_object();
    if (!o) return fail(error::malformed_response, "malformed " + where() + ": not a JSON object");
    auto* type_v = o->if_contains("type");
    auto* type_s = type_v ? type_v->if_string() : nullptr;
    if (!type_s) return fail(error::malformed_response, "malformed " + where() + ": no string \"type\"");
    auto type = parse_watch_event_type(std::string_view(type_s->data(), type_s->size()));
    if (!type)
        return fail(error::malformed_response,
                    "malformed " + where() + ": unknown type \"" + std::string(type_s->subview(0, std::min<std::size_t>(type_s->size(), 32))) + "\"");
    auto* object_v = o->if_contains("object");
    auto* object_o = object_v ? object_v->if_object() : nullptr;
    if (!object_o) return fail(error::malformed_response, "malformed " + where() + ": no object \"object\"");
    out.push_back(RawWatchEvent{*type, std::move(*object_o)});
    ++events_;
    return {};
}

inline std::error_code WatchFramer::feed(std::string_view bytes, std::vector<RawWatchEvent>& out) {
    if (failed_) return fail(error::malformed_response, error_message_.empty() ? "watch framer used after an error" : error_message_);
    const char* p = bytes.data();
    std::size_t n = bytes.size();
    while (n > 0) {
        if (!in_document_) {
            // Whitespace (the "\n" terminators, keep-alive blank lines) between documents.
            std::size_t i = 0;
            while (i < n && (p[i] == '\n' || p[i] == '\r' || p[i] == ' ' || p[i] == '\t')) ++i;
            p += i;
            n -= i;
            offset_ += i;
            if (n == 0) break;
            in_document_ = true;
        }
        std::size_t budget = max_event_size_ - document_bytes_;
        std::size_t chunk = n < budget ? n : budget;
        boost::system::error_code ec;
        std::size_t used = parser_.write_some(p, chunk, ec);
        p += used;
        n -= used;
        offset_ += used;
        document_bytes_ += used;
        if (ec) {
            in_document_ = false;
            return fail(error::malformed_response, "malformed watch event #" + std::to_string(events_ + 1) +
                                                       " at byte " + std::to_string(offset_) + ": " + ec.message());
        }
        if (parser_.done()) {
            if (auto e = take_document(out)) return e;
            continue;
        }
        if (document_bytes_ >= max_event_size_ && n > 0)
            return fail(error::event_too_large, "watch event #" + std::to_string(events_ + 1) + " starting near byte " +
                                                    std::to_string(offset_ - document_bytes_) + " exceeds " +
                                                    std::to_string(max_event_size_) + " bytes");
    }
    return {};
}

inline std::error_code WatchFramer::finish() {
    if (failed_) return error::malformed_response;
    if (in_document_)
        return fail(error::connection_lost, "watch stream ended inside event #" + std::to_string(events_ + 1) +
                                                " after " + std::to_string(document_bytes_) + " bytes of it");
    return {};
}

inline void WatchFramer::reset() {
    parser_.reset();
    in_document_ = false;
    failed_ = false;
    document_bytes_ = 0;
    offset_ = 0;
    events_ = 0;
    error_offset_ = 0;
    error_message_.clear();
}

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_WATCH_FRAMER_HPP
