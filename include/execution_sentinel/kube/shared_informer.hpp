// SharedInformer<T>: one list+watch of pods, jobs or events in a namespace (or every namespace), fanned out to any
// number of subscribers, each seeing only its objects (its namespace, label selector and name applied locally, with
// the apiserver's results), as client-go's shared informer does. A Sentinel takes its feeds from informers through
// SentinelOptions::shared (sentinel.hpp), so that many runs of one namespace share three watches.
//
// The decisions are pure: ObjectMatcher (what a subscriber selects), route_event (which subscriber an event goes
// to), FanOut<T> (bounded per-subscriber queues; a subscriber that falls behind is resynchronised from the
// informer's store instead of losing events) and SubscriberStore<T> (what a subscriber's own watch would have
// delivered). SharedInformer and InformerSubscription are the thin drivers. See docs/embedding.md, "Sharing watches".
#ifndef EXECUTION_SENTINEL_KUBE_SHARED_INFORMER_HPP
#define EXECUTION_SENTINEL_KUBE_SHARED_INFORMER_HPP

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/store.hpp>
#include <execution_sentinel/kube/watch_machine.hpp>
#include <execution_sentinel/kube/watcher.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

// ------------------------------------------------------------------------------------------- what a subscriber sees

/// The objects one subscriber sees: those a watch of `namespace_` with these selectors would deliver. Empty fields
/// select everything.
struct ObjectFilter {
    std::string namespace_{};      ///< "" = every namespace the informer sees
    std::string label_selector{};  ///< as the apiserver's labelSelector (equality- and set-based)
    std::string name{};            ///< "" = any; else as the field selector metadata.name=NAME
};

/// An ObjectFilter, parsed once. Throws std::invalid_argument for a label selector the apiserver would refuse.
class ObjectMatcher {
public:
    ObjectMatcher() = default;
    explicit ObjectMatcher(ObjectFilter filter)
        : filter_(std::move(filter)), selector_(LabelSelector::parse(filter_.label_selector)) {}

    /// True when the subscriber's own watch would hold `obj`.
    template <class T> bool matches(const T& obj) const noexcept {
        if (!filter_.namespace_.empty() && obj.meta.namespace_ != filter_.namespace_) return false;
        if (!filter_.name.empty() && obj.meta.name != filter_.name) return false;
        return selector_.matches(obj.meta.labels);
    }
    const ObjectFilter& filter() const noexcept { return filter_; }

private:
    ObjectFilter filter_{};
    LabelSelector selector_{};
};

/// Whether an event of the shared watch goes to a subscriber, and whether the subscriber holds the object after it.
struct Route {
    bool deliver = false;
    bool held_after = false;
};

/// Routing of one event (pure): an object that matches is delivered; one that stopped matching (its labels changed)
/// is delivered to the subscriber that holds it, which then drops it (a watch with the selector gets DELETED); a
/// deletion goes to whoever holds or selects the object; `synced` goes to everyone.
inline Route route_event(WatchEventType type, bool matches, bool held) noexcept {
    switch (type) {
    case WatchEventType::added:
    case WatchEventType::modified: return matches ? Route{true, true} : Route{held, false};
    case WatchEventType::deleted: return Route{held || matches, false};
    case WatchEventType::synced: return Route{true, held};
    }
    return {};
}

// ------------------------------------------------------------------------------------------- fan-out (pure)

/// Options of the fan-out. Works with designated initializers.
struct FanOutOptions {
    /// Events queued for one subscriber, at most. A subscriber with this many events not yet taken (a slow run) is
    /// not waited for: its queued events are replaced by one resynchronisation from the informer's store (what it
    /// selects now), from which it derives the changes it missed (deletions included), as after a relist. Default
    /// 4096; 0 is read as 1.
    std::size_t capacity = 4096;
    /// List/watch attempts queued for one subscriber, at most (the oldest are dropped first, and counted). Default
    /// 256.
    std::size_t max_attempts = 256;
};

/// One entry of a subscriber's queue.
template <class T> struct FanOutItem {
    enum class Kind : std::uint8_t {
        event,   ///< a change of the shared watch (or `synced`)
        resync,  ///< every object the subscriber selects, as the informer holds them now
        attempt, ///< a list or watch attempt of the shared watch (connectivity)
        error,   ///< a fatal failure of the shared watch (401, 403, …); the informer retries it
    };
    Kind kind = Kind::event;
    WatchEvent<T> event{};
    std::vector<T> objects{};      ///< resync
    bool complete = false;         ///< resync: the informer's store was current (a full list folded in)
    std::optional<WatchAttempt> attempt{};
    std::optional<Error> error{};
};

/// Counters of one subscriber.
struct SubscriberStats {
    std::uint64_t events = 0;           ///< events queued for it
    std::uint64_t resyncs = 0;          ///< resynchronisations queued (the first, at subscription, included)
    std::uint64_t overflows = 0;        ///< times it fell `capacity` events behind (each made a resync)
    std::uint64_t events_replaced = 0;  ///< queued events a resync replaced
    std::uint64_t attempts_dropped = 0; ///< attempts dropped over max_attempts
    std::size_t queued = 0;             ///< events (and resyncs) in its queue now
    std::size_t peak_queued = 0;
    std::optional<std::chrono::steady_clock::time_point> last_overflow{};
};

/// The fan-out of one shared watch to its subscribers: pure (no I/O, no lock, no clock: time is passed in). The
/// informer calls it with every event after its store folded the event in.
template <class T> class FanOut {
public:
    using Id = std::uint64_t;
    using time_point = std::chrono::steady_clock::time_point;

    explicit FanOut(FanOutOptions options = {}) : options_(options) {
        if (options_.capacity == 0) options_.capacity = 1;
    }

    /// Adds a subscriber. Its queue starts with a resync of what `store` holds for it (complete when the store is
    /// current), so one that comes late sees the current objects first.
    Id add(ObjectMatcher matcher, const Store<T>& store, bool complete) {
        const Id id = ++last_id_;
        auto& s = subs_[id];
        s.matcher = std::move(matcher);
        queue_resync(s, store, complete);
        if (!complete && s.queue.back().objects.empty()) { // nothing to tell yet: the list's events will
            s.queue.clear();
            s.stats.queued = 0;
            s.stats.resyncs = 0;
        }
        return id;
    }
    void remove(Id id) { subs_.erase(id); }
    bool contains(Id id) const { return subs_.count(id) != 0; }
    std::size_t size() const noexcept { return subs_.size(); }
    /// Times a subscriber fell `capacity` events behind and was resynchronised, over all subscribers ever.
    std::uint64_t overflows() const noexcept { return overflows_; }

    /// One event of the shared watch (`store` already holds its outcome). Appends the ids whose queue grew.
    void on_event(const WatchEvent<T>& ev, const Store<T>& store, bool complete, time_point now, std::vector<Id>& woken) {
        const bool sync = ev.type == WatchEventType::synced;
        const std::string key = sync ? std::string() : key_of(ev.object);
        for (auto& [id, s] : subs_) {
            const bool matches = !sync && s.matcher.matches(ev.object);
            const bool held = !sync && s.held.count(key) != 0;
            auto r = route_event(ev.type, matches, held);
            if (!r.deliver) continue;
            if (!sync) {
                if (r.held_after) s.held.insert(key);
                else s.held.erase(key);
            }
            woken.push_back(id);
            if (s.stats.queued >= options_.capacity) { // fallen behind: never wait for it, never lose a change
                ++s.stats.overflows;
                ++overflows_;
                s.stats.last_overflow = now;
                queue_resync(s, store, complete);
                continue;
            }
            FanOutItem<T> item;
            item.kind = FanOutItem<T>::Kind::event;
            item.event = ev;
            push(s, std::move(item));
            ++s.stats.events;
        }
    }

    /// A list or watch attempt of the shared watch: every subscriber sees it (each judges its connectivity).
    void on_attempt(const WatchAttempt& a, std::vector<Id>& woken) {
        for (auto& [id, s] : subs_) {
            if (s.attempts >= options_.max_attempts) {
                for (auto it = s.queue.begin(); it != s.queue.end(); ++it)
                    if (it->kind == FanOutItem<T>::Kind::attempt) {
                        s.queue.erase(it);
                        --s.attempts;
                        ++s.stats.attempts_dropped;
                        break;
                    }
            }
            FanOutItem<T> item;
            item.kind = FanOutItem<T>::Kind::attempt;
            item.attempt = a;
            s.queue.push_back(std::move(item));
            ++s.attempts;
            woken.push_back(id);
        }
    }

    /// A fatal failure of the shared watch: every subscriber sees it.
    void on_error(const Error& e, std::vector<Id>& woken) {
        for (auto& [id, s] : subs_) {
            FanOutItem<T> item;
            item.kind = FanOutItem<T>::Kind::error;
            item.error = e;
            s.queue.push_back(std::move(item));
            woken.push_back(id);
        }
    }

    /// Takes everything queued for `id` (in order).
    std::deque<FanOutItem<T>> take(Id id) {
        auto it = subs_.find(id);
        if (it == subs_.end()) return {};
        std::deque<FanOutItem<T>> out;
        out.swap(it->second.queue);
        it->second.stats.queued = 0;
        it->second.attempts = 0;
        return out;
    }

    const SubscriberStats* stats(Id id) const {
        auto it = subs_.find(id);
        return it == subs_.end() ? nullptr : &it->second.stats;
    }
    const FanOutOptions& options() const noexcept { return options_; }

private:
    struct Sub {
        ObjectMatcher matcher;
        std::deque<FanOutItem<T>> queue;
        std::size_t attempts = 0;             ///< attempt items in `queue`
        std::unordered_set<std::string> held; ///< keys of the objects the subscriber holds once it took its queue
        SubscriberStats stats;
    };

    static std::string key_of(const T& obj) { return obj.meta.namespace_ + "/" + obj.meta.name; }

    void push(Sub& s, FanOutItem<T> item) {
        s.queue.push_back(std::move(item));
        ++s.stats.queued;
        if (s.stats.queued > s.stats.peak_queued) s.stats.peak_queued = s.stats.queued;
    }

    /// Replaces the queued events (and resyncs) by one resync; attempts and errors stay in order.
    void queue_resync(Sub& s, const Store<T>& store, bool complete) {
        std::deque<FanOutItem<T>> kept;
        for (auto& item : s.queue) {
            if (item.kind == FanOutItem<T>::Kind::event) ++s.stats.events_replaced;
            if (item.kind == FanOutItem<T>::Kind::event || item.kind == FanOutItem<T>::Kind::resync) continue;
            kept.push_back(std::move(item));
        }
        s.queue.swap(kept);
        s.stats.queued = 0;
        FanOutItem<T> item;
        item.kind = FanOutItem<T>::Kind::resync;
        item.complete = complete;
        s.held.clear();
        for (const T* obj : store.list()) { // sorted: the subscriber sees the changes in a stable order
            if (!s.matcher.matches(*obj)) continue;
            s.held.insert(key_of(*obj));
            item.objects.push_back(*obj);
        }
        push(s, std::move(item));
        ++s.stats.resyncs;
    }

    FanOutOptions options_;
    std::uint64_t overflows_ = 0;
    Id last_id_ = 0;
    std::map<Id, Sub> subs_;
};

/// What one subscriber has seen (pure): its own store, fed by the items of its queue, delivering exactly the
/// events a watch with its selectors would have delivered — a change once, an object that stopped matching as a
/// deletion, after a resync the difference (deletions with final_state_unknown), `synced` once the picture is
/// current again.
template <class T> class SubscriberStore {
public:
    explicit SubscriberStore(ObjectMatcher matcher = {}) : matcher_(std::move(matcher)) {}

    /// One event of the shared watch: appends what the subscriber sees of it (nothing for a repeat).
    template <class Out> void apply(const WatchEvent<T>& ev, Out& out) {
        switch (ev.type) {
        case WatchEventType::synced:
            synced_ = true;
            out.push_back(WatchEvent<T>{WatchEventType::synced, T{}, false});
            return;
        case WatchEventType::added:
        case WatchEventType::modified:
            if (matcher_.matches(ev.object)) store_.upsert(ev.object, out);
            else store_.remove(ev.object, out); // it left the selection: DELETED, as the apiserver sends it
            return;
        case WatchEventType::deleted: {
            const auto before = out.size();
            store_.remove(ev.object, out);
            if (ev.final_state_unknown && out.size() > before) out.back().final_state_unknown = true;
            return;
        }
        }
    }

    /// A resync: the difference between what the subscriber holds and `objects`, then `synced` when complete.
    template <class Out> void resync(std::vector<T> objects, bool complete, Out& out) {
        store_.replace(std::move(objects), out);
        if (complete) {
            synced_ = true;
            out.push_back(WatchEvent<T>{WatchEventType::synced, T{}, false});
        }
    }

    const Store<T>& store() const noexcept { return store_; }
    /// True once the subscriber's picture was complete (a full list of the shared watch folded in).
    bool synced() const noexcept { return synced_; }
    const ObjectMatcher& matcher() const noexcept { return matcher_; }

private:
    ObjectMatcher matcher_;
    Store<T> store_;
    bool synced_ = false;
};

// ------------------------------------------------------------------------------------------- the drivers

/// Options of a SharedInformer. Works with designated initializers.
struct SharedInformerOptions {
    WatchOptions watch{}; ///< the shared watch: server-side selectors (every subscriber must select a subset), backoff…
    FanOutOptions fan_out{};
};

/// The shared watch's state, as a subscriber samples it for its feed health.
struct InformerStatus {
    bool synced = false;
    bool streaming = false;
    std::uint64_t watch_requests = 0;
    std::uint64_t stream_events = 0;
    WatchStats stats{};
    std::size_t objects = 0;     ///< in the informer's store
    std::size_t subscribers = 0;
    /// Subscribers resynchronised from the store because they fell FanOutOptions::capacity changes behind (a
    /// count over the informer's life).
    std::uint64_t resyncs = 0;
    /// The shared watch's resourceVersion: every change up to it was handed to the subscribers' queues (a
    /// subscription whose pending() is false has delivered it).
    std::string resource_version{};
};

template <Resource T> class InformerSubscription;

/// One list+watch of T in a namespace ("" = every namespace), fanned out to subscriptions. run() drives it (until
/// cancelled); subscribe() adds a subscriber at any time, before or while it runs. All members may be called from
/// any thread; the watch runs on a strand of the informer's executor. Not copyable or movable; it must outlive its
/// subscriptions' next() calls and its run().
template <Resource T> class SharedInformer {
public:
    SharedInformer(boost::asio::any_io_executor ex, Client client, std::string namespace_,
                   SharedInformerOptions options = {})
        : core_(std::make_shared<Core>(boost::asio::make_strand(ex), options.fan_out)) {
        auto user_observer = std::move(options.watch.on_attempt);
        Core* core = core_.get();
        options.watch.on_attempt = [core, user_observer = std::move(user_observer)](const WatchAttempt& a) {
            core->on_attempt(a);
            if (user_observer) user_observer(a);
        };
        // a quiet stream (no event, no attempt) must still show as streaming to the subscribers' feed health
        auto user_opened = std::move(options.watch.on_stream_opened);
        options.watch.on_stream_opened = [core, user_opened = std::move(user_opened)] {
            {
                std::lock_guard lock(core->mutex);
                core->refresh_status();
            }
            if (user_opened) user_opened();
        };
        core_->watcher.emplace(client, std::move(namespace_), std::move(options.watch));
    }
    SharedInformer(const SharedInformer&) = delete;
    SharedInformer& operator=(const SharedInformer&) = delete;

    /// Lists and watches until cancelled (terminal cancellation through the awaiting coroutine's slot: it then
    /// throws system_error(operation_aborted)). Transient failures are retried with backoff; fatal ones (401,
    /// 403, …) are handed to every subscriber (its next() throws them) and retried after the backoff. Call once.
    boost::asio::awaitable<void> run() {
        auto loop = Core::loop(core_); // holds the core: it outlives the informer if need be
        co_return co_await boost::asio::co_spawn(core_->strand, std::move(loop), boost::asio::use_awaitable);
    }

    /// A new subscriber selecting `filter` (throws std::invalid_argument for an invalid selector). Its first
    /// events are the objects the informer holds for it now (and `synced` when the informer is current).
    /// `on_attempt`, when set, is called from the subscription's next() with every list/watch attempt of the
    /// shared watch (it may throw: next() then ends with that exception and the subscription stays usable).
    boost::asio::awaitable<std::unique_ptr<InformerSubscription<T>>>
    subscribe(ObjectFilter filter, std::function<void(const WatchAttempt&)> on_attempt = {}) {
        ObjectMatcher matcher(std::move(filter));
        auto ex = co_await boost::asio::this_coro::executor;
        auto wake = std::make_shared<typename Core::Wake>(ex, 1);
        auto core = core_;
        auto add = Core::add(core, matcher, wake);
        auto id = co_await boost::asio::co_spawn(core->strand, std::move(add), boost::asio::use_awaitable);
        wake->try_send(boost::system::error_code{});
        co_return std::unique_ptr<InformerSubscription<T>>(
            new InformerSubscription<T>(core_, id, std::move(wake), std::move(matcher), std::move(on_attempt)));
    }

    InformerStatus status() const {
        std::lock_guard lock(core_->mutex);
        return core_->status;
    }
    /// The fan-out counters of one subscription (nullopt when it ended).
    std::optional<SubscriberStats> subscriber_stats(const InformerSubscription<T>& s) const;

private:
    friend class InformerSubscription<T>;
    using Strand = boost::asio::strand<boost::asio::any_io_executor>;

    struct Core {
        using Wake = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;
        Core(Strand s, FanOutOptions o) : strand(std::move(s)), fan_out(o) {}

        Strand strand;
        std::optional<Watcher<T>> watcher; ///< used on `strand` only
        mutable std::mutex mutex;          ///< guards what follows
        FanOut<T> fan_out;
        std::map<typename FanOut<T>::Id, std::shared_ptr<Wake>> wakes;
        InformerStatus status;

        bool complete() const { return watcher->synced() && !watcher->store().relisting(); }

        void refresh_status() { // under mutex, on strand
            status.synced = watcher->synced();
            status.streaming = watcher->streaming();
            status.stats = watcher->stats();
            status.watch_requests = status.stats.watch_requests;
            status.stream_events = watcher->stream_events();
            status.objects = watcher->store().size();
            status.subscribers = fan_out.size();
            status.resource_version = watcher->resource_version();
            status.resyncs = fan_out.overflows();
        }

        void wake(const std::vector<typename FanOut<T>::Id>& ids) {
            std::vector<std::shared_ptr<Wake>> targets;
            {
                std::lock_guard lock(mutex);
                for (auto id : ids)
                    if (auto it = wakes.find(id); it != wakes.end()) targets.push_back(it->second);
            }
            for (auto& w : targets) w->try_send(boost::system::error_code{}); // full = already signalled
        }

        void on_attempt(const WatchAttempt& a) { // inside watcher->next(), on strand
            std::vector<typename FanOut<T>::Id> woken;
            {
                std::lock_guard lock(mutex);
                fan_out.on_attempt(a, woken);
                refresh_status();
            }
            wake(woken);
        }

        static boost::asio::awaitable<void> loop(std::shared_ptr<Core> self) {
            Core& core = *self;
            std::vector<typename FanOut<T>::Id> woken;
            for (;;) {
                woken.clear();
                WatchEvent<T> ev;
                try {
                    ev = co_await core.watcher->next();
                } catch (const Error& e) {
                    {
                        std::lock_guard lock(core.mutex);
                        core.fan_out.on_error(e, woken);
                        core.refresh_status();
                    }
                    core.wake(woken);
                    continue; // next() backs off before it tries again
                }
                {
                    std::lock_guard lock(core.mutex);
                    core.fan_out.on_event(ev, core.watcher->store(), core.complete(), std::chrono::steady_clock::now(), woken);
                    core.refresh_status();
                }
                core.wake(woken);
            }
        }

        /// Adds a subscriber (on the strand: the store is read there).
        static boost::asio::awaitable<typename FanOut<T>::Id> add(std::shared_ptr<Core> core, ObjectMatcher matcher,
                                                                   std::shared_ptr<Wake> wake) {
            std::lock_guard lock(core->mutex);
            auto id = core->fan_out.add(std::move(matcher), core->watcher->store(), core->complete());
            core->wakes[id] = std::move(wake);
            core->status.subscribers = core->fan_out.size();
            co_return id;
        }

        void remove(typename FanOut<T>::Id id) {
            std::lock_guard lock(mutex);
            fan_out.remove(id);
            wakes.erase(id);
            status.subscribers = fan_out.size();
        }
    };

    std::shared_ptr<Core> core_;
};

/// One subscriber of a SharedInformer: the interface of a Watcher (next(), store(), synced(), streaming(), …)
/// over the objects its filter selects. Use from one coroutine at a time; ends its subscription when destroyed.
template <Resource T> class InformerSubscription {
public:
    InformerSubscription(const InformerSubscription&) = delete;
    InformerSubscription& operator=(const InformerSubscription&) = delete;
    ~InformerSubscription() { core_->remove(id_); }

    /// The next event, as a Watcher with the subscriber's selectors delivers it. Throws the shared watch's fatal
    /// kube::Error, what on_attempt throws, system_error(operation_aborted) when cancelled (nothing is lost: the
    /// next call goes on).
    boost::asio::awaitable<WatchEvent<T>> next() {
        for (;;) {
            if (!ready_.empty()) {
                auto ev = std::move(ready_.front());
                ready_.pop_front();
                co_return ev;
            }
            if (items_.empty()) {
                std::lock_guard lock(core_->mutex);
                items_ = core_->fan_out.take(id_);
            }
            if (!items_.empty()) {
                auto item = std::move(items_.front());
                items_.pop_front();
                switch (item.kind) {
                case FanOutItem<T>::Kind::event: local_.apply(item.event, ready_); break;
                case FanOutItem<T>::Kind::resync: local_.resync(std::move(item.objects), item.complete, ready_); break;
                case FanOutItem<T>::Kind::attempt:
                    if (on_attempt_) on_attempt_(*item.attempt);
                    break;
                case FanOutItem<T>::Kind::error: throw *item.error;
                }
                continue;
            }
            auto [ec] = co_await wake_->async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
            auto cs = co_await boost::asio::this_coro::cancellation_state;
            if (ec || cs.cancelled() != boost::asio::cancellation_type::none)
                throw boost::system::system_error(boost::asio::error::operation_aborted);
        }
    }

    /// True while changes the shared watch received for this subscriber were not yet delivered by next().
    bool pending() const {
        if (!ready_.empty() || !items_.empty()) return true;
        std::lock_guard lock(core_->mutex);
        auto* s = core_->fan_out.stats(id_);
        return s && s->queued > 0;
    }
    /// The objects the subscriber holds (its selection of the informer's store, as of the events delivered).
    const Store<T>& store() const noexcept { return local_.store(); }
    /// True once the subscriber's picture was complete.
    bool synced() const noexcept { return local_.synced(); }
    /// The shared watch's stream and counters (for feed health).
    bool streaming() const { return status().streaming; }
    WatchStats stats() const { return status().stats; }
    std::uint64_t stream_events() const { return status().stream_events; }
    InformerStatus status() const {
        std::lock_guard lock(core_->mutex);
        return core_->status;
    }
    SubscriberStats fan_out_stats() const {
        std::lock_guard lock(core_->mutex);
        auto* s = core_->fan_out.stats(id_);
        return s ? *s : SubscriberStats{};
    }
    const ObjectFilter& filter() const noexcept { return local_.matcher().filter(); }

private:
    friend class SharedInformer<T>;
    using Core = typename SharedInformer<T>::Core;
    InformerSubscription(std::shared_ptr<Core> core, typename FanOut<T>::Id id, std::shared_ptr<typename Core::Wake> wake,
                         ObjectMatcher matcher, std::function<void(const WatchAttempt&)> on_attempt)
        : core_(std::move(core)), id_(id), wake_(std::move(wake)), local_(std::move(matcher)),
          on_attempt_(std::move(on_attempt)) {}

    std::shared_ptr<Core> core_;
    typename FanOut<T>::Id id_;
    std::shared_ptr<typename Core::Wake> wake_;
    SubscriberStore<T> local_;
    std::function<void(const WatchAttempt&)> on_attempt_;
    std::deque<FanOutItem<T>> items_;   ///< taken from the fan-out, not yet applied
    std::deque<WatchEvent<T>> ready_;   ///< applied, not yet delivered
};

template <Resource T>
std::optional<SubscriberStats> SharedInformer<T>::subscriber_stats(const InformerSubscription<T>& s) const {
    std::lock_guard lock(core_->mutex);
    auto* st = core_->fan_out.stats(s.id_);
    return st ? std::optional<SubscriberStats>(*st) : std::nullopt;
}

/// The informers a Sentinel takes its feeds from instead of opening its own watches (SentinelOptions::shared).
/// Each must watch the run's namespace (or every namespace) with no server-side selector the run's selectors are
/// not a subset of: `pods` and `jobs` unfiltered (or filtered by a selector every run's task selector implies),
/// `events` with the field selector type=Warning. A null informer = the Sentinel opens that watch itself. The engine
/// pod watch uses `pods` too (its selector or name applied locally).
struct SharedFeeds {
    std::shared_ptr<SharedInformer<Pod>> pods{};
    std::shared_ptr<SharedInformer<Job>> jobs{};
    std::shared_ptr<SharedInformer<Event>> events{};
};

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_SHARED_INFORMER_HPP
