// EventHub: the publishing side of server-sent events (text/event-stream). Each connected client has its own bounded
// queue; publish() formats an event once, appends it to every matching client's queue and returns: it never blocks
// and never waits for a client. A client whose queue is over its limit (it reads too slowly) is dropped: its queue
// is discarded and its connection closed; it may reconnect. The HTTP server (http_server.hpp) drives the clients.
//
// Event format (html.spec.whatwg.org, "Server-sent events"):
//   id: 17                      the hub's sequence number: 1, 2, 3 … in publication order
//   event: report               the event name
//   data: {"type":"PROGRESS",…} the payload; one `data:` line per line of the payload
//   <empty line>
// A client first receives `retry: <ms>` (how long a browser waits before reconnecting) and, while nothing is
// published, a comment line `: keep-alive` every keepalive_interval so that proxies keep the connection open.
//
// Thread safety: every member function may be called from any thread; one mutex guards the clients' queues and is
// held only to append or take pointers to formatted events.
#ifndef EXECUTION_SENTINEL_SERVE_EVENT_STREAM_HPP
#define EXECUTION_SENTINEL_SERVE_EVENT_STREAM_HPP

#include <execution_sentinel/report.hpp>
#include <execution_sentinel/serve/metrics.hpp>

#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::serve {

/// Limits of an EventHub. Aggregate: use designated initializers.
struct EventStreamOptions {
    /// Clients connected at once; one more is answered 503. Default 64.
    std::size_t max_clients = 64;
    /// Events queued for one client; when a new event finds the queue full, the client is dropped. Default 1024;
    /// 0 is read as 1.
    std::size_t max_queued_events = 1024;
    /// Bytes of events queued for one client; beyond it the client is dropped. Default 8 MiB.
    std::size_t max_queued_bytes = 8u << 20;
    /// A `: keep-alive` comment is sent after this long without an event. Default 15 s.
    std::chrono::milliseconds keepalive_interval{15000};
    /// The reconnection delay sent to clients (`retry:`). Default 3 s.
    std::chrono::milliseconds retry{3000};
};

/// One event in the text/event-stream format: `id:`, `event:` (line breaks removed from the name) and one `data:`
/// line per line of `data` (split at CRLF, LF or CR), then an empty line. Pure.
inline std::string format_event(std::uint64_t id, std::string_view event, std::string_view data) {
    std::string out;
    out.reserve(data.size() + event.size() + 40);
    out += "id: ";
    out += std::to_string(id);
    out += '\n';
    if (!event.empty()) {
        out += "event: ";
        for (char c : event)
            if (c != '\n' && c != '\r') out += c;
        out += '\n';
    }
    std::size_t start = 0;
    for (;;) {
        std::size_t end = data.find_first_of("\r\n", start);
        out += "data: ";
        out.append(data.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        out += '\n';
        if (end == std::string_view::npos) break;
        start = end + ((data[end] == '\r' && end + 1 < data.size() && data[end + 1] == '\n') ? 2 : 1);
    }
    out += '\n';
    return out;
}

/// The data of a report event: the report's JSON (to_json), with `"run": topic` when `topic` is not empty.
inline std::string report_event_data(const Report& r, std::string_view topic = {}) {
    auto o = to_json(r);
    if (!topic.empty()) o["run"] = topic;
    return boost::json::serialize(o);
}

class EventHub {
public:
    /// One connected client, as the server sees it.
    class Client {
    public:
        const std::string& topic() const noexcept { return topic_; }

    private:
        friend class EventHub;
        std::string topic_;
        std::function<void(bool drop)> wake_;
        std::deque<std::shared_ptr<const std::string>> queue_;
        std::size_t bytes_ = 0;
        bool waiting_ = false;
        bool dropped_ = false;
    };

    /// What take() found.
    enum class Take { events, empty, dropped };

    struct Stats {
        std::size_t clients = 0;   ///< connected now
        std::uint64_t published = 0; ///< events published
        std::uint64_t dropped = 0;   ///< clients dropped for falling behind
    };

    /// With `metrics`, registers execution_sentinel_event_stream_clients, …_clients_dropped_total and
    /// …_events_total there (shared by every hub of the registry).
    explicit EventHub(EventStreamOptions options = {}, Registry* metrics = nullptr) : options_(options) {
        if (options_.max_queued_events == 0) options_.max_queued_events = 1;
        if (metrics) {
            clients_gauge_ = metrics
                                 ->gauge("execution_sentinel_event_stream_clients",
                                         "Clients connected to a server-sent event stream.")
                                 .with();
            dropped_counter_ = metrics
                                   ->counter("execution_sentinel_event_stream_clients_dropped_total",
                                             "Event stream clients dropped because they fell too far behind.")
                                   .with();
            events_counter_ = metrics
                                  ->counter("execution_sentinel_event_stream_events_total",
                                            "Events published to server-sent event streams.")
                                  .with();
        }
    }
    EventHub(const EventHub&) = delete;
    EventHub& operator=(const EventHub&) = delete;

    /// Publishes an event to every client whose topic is empty or equals `topic`; returns its id. Never blocks:
    /// a client whose queue overflows is dropped (its wake function is called with drop = true).
    std::uint64_t publish(std::string_view topic, std::string_view event, std::string_view data) {
        std::vector<std::pair<std::function<void(bool)>, bool>> wakes;
        std::uint64_t id = 0;
        {
            std::lock_guard lock(mutex_);
            id = ++published_;
            std::shared_ptr<const std::string> frame;
            for (auto& c : clients_) {
                if (c->dropped_ || !(c->topic_.empty() || c->topic_ == topic)) continue;
                if (!frame) frame = std::make_shared<const std::string>(format_event(id, event, data));
                if (c->queue_.size() >= options_.max_queued_events ||
                    c->bytes_ + frame->size() > options_.max_queued_bytes) {
                    c->dropped_ = true;
                    c->queue_.clear();
                    c->bytes_ = 0;
                    ++dropped_;
                    dropped_counter_.inc();
                    wakes.emplace_back(c->wake_, true);
                    continue;
                }
                c->queue_.push_back(frame);
                c->bytes_ += frame->size();
                if (c->waiting_) {
                    c->waiting_ = false;
                    wakes.emplace_back(c->wake_, false);
                }
            }
        }
        events_counter_.inc();
        for (auto& [wake, drop] : wakes)
            if (wake) wake(drop);
        return id;
    }

    /// Publishes a report as event "report" (data: report_event_data(r, topic)).
    std::uint64_t publish(const Report& r, std::string_view topic = {}) {
        return publish(topic, "report", report_event_data(r, topic));
    }

    /// A new client taking events of `topic` (empty: every event); `wake(drop)` is called, outside the hub's lock
    /// and on the publisher's thread, when events arrive for a client that waits (drop = false) or when the
    /// client is dropped (drop = true): it must only schedule work (post), never block. nullptr when max_clients
    /// are connected.
    std::shared_ptr<Client> attach(std::string topic, std::function<void(bool drop)> wake) {
        auto c = std::make_shared<Client>();
        c->topic_ = std::move(topic);
        c->wake_ = std::move(wake);
        {
            std::lock_guard lock(mutex_);
            if (clients_.size() >= options_.max_clients) return nullptr;
            clients_.push_back(c);
        }
        clients_gauge_.inc();
        return c;
    }

    /// Removes a client (idempotent).
    void detach(const std::shared_ptr<Client>& c) {
        bool removed = false;
        {
            std::lock_guard lock(mutex_);
            removed = std::erase(clients_, c) > 0;
            c->queue_.clear();
            c->wake_ = nullptr;
        }
        if (removed) clients_gauge_.dec();
    }

    /// Moves the client's queued events to `out` (Take::events); when there are none, marks the client waiting
    /// (its wake function will be called) and returns Take::empty; Take::dropped once it was dropped.
    Take take(Client& c, std::vector<std::shared_ptr<const std::string>>& out) {
        std::lock_guard lock(mutex_);
        if (c.dropped_) return Take::dropped;
        if (c.queue_.empty()) {
            c.waiting_ = true;
            return Take::empty;
        }
        for (auto& f : c.queue_) out.push_back(std::move(f));
        c.queue_.clear();
        c.bytes_ = 0;
        c.waiting_ = false;
        return Take::events;
    }

    Stats stats() const {
        std::lock_guard lock(mutex_);
        return {clients_.size(), published_, dropped_};
    }

    const EventStreamOptions& options() const noexcept { return options_; }

private:
    EventStreamOptions options_;
    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<Client>> clients_;
    std::uint64_t published_ = 0;
    std::uint64_t dropped_ = 0;
    Gauge clients_gauge_;
    Counter dropped_counter_;
    Counter events_counter_;
};

} // namespace execution_sentinel::serve

#endif // EXECUTION_SENTINEL_SERVE_EVENT_STREAM_HPP
