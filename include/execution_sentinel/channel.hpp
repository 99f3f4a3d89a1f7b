// The report channel: an awaitable broadcast channel with any number of subscribers (a UI and a replanner can
// both listen). Publishing never blocks and never waits for a subscriber; each subscriber has its own bounded
// queue with a documented policy when it is full (docs/embedding.md, "The report channel"):
//
//   * below `capacity` queued reports, every report is queued;
//   * at `capacity`, a new PROGRESS report replaces every PROGRESS report still queued for that subscriber
//     (the newest progress report carries the current counts) — counted in `coalesced_reports()`;
//   * any other report (anomalies, connectivity, completion) is still queued, up to `capacity +
//     overflow_limit`; past that it is lost, counted in `lost_reports()`, and the loss is delivered in order,
//     at the place where it happened, as one receive completing with `channel_error::reports_lost`.
//     Nothing is dropped silently.
//
// A subscription may take only some reports (SubscriptionOptions: report types, minimum severity); the
// task-lifecycle stream (TASK_STARTED … TASK_RETRIED) reaches only the subscriptions that ask for it.
//
// Receives complete through any Asio completion token, never inline, on the handler's associated executor
// (the subscription's executor when the handler has none). All shared state is guarded by one mutex: publish,
// subscribe, receive, cancel and close may be called from any thread of a multi-threaded io_context.
#ifndef EXECUTION_SENTINEL_CHANNEL_HPP
#define EXECUTION_SENTINEL_CHANNEL_HPP

#include <execution_sentinel/report.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace execution_sentinel {

/// Errors a subscription's receive completes with (besides `boost::asio::error::operation_aborted` when the
/// receive is cancelled or the subscription is destroyed or unsubscribed while the receive is pending).
enum class channel_error {
    closed = 1,            ///< the channel was closed and every report queued for this subscriber was received
    operation_in_progress, ///< another receive on the same subscription is still pending (misuse)
    reports_lost,          ///< reports were lost here because the subscriber fell too far behind; see lost_reports()
    unsubscribed,          ///< receive on a subscription that was unsubscribed or moved from (misuse)
};

namespace detail {
class channel_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "execution_sentinel.channel"; }
    std::string message(int value) const override {
        switch (static_cast<channel_error>(value)) {
        case channel_error::closed: return "the report channel is closed and drained";
        case channel_error::operation_in_progress:
            return "another receive is already pending on this subscription";
        case channel_error::reports_lost:
            return "reports were lost because this subscriber fell too far behind";
        case channel_error::unsubscribed: return "the subscription was unsubscribed";
        }
        return "unknown execution_sentinel.channel error";
    }
};
} // namespace detail

inline const boost::system::error_category& channel_category() noexcept {
    static const detail::channel_category_impl instance;
    return instance;
}

inline boost::system::error_code make_error_code(channel_error e) noexcept {
    return {static_cast<int>(e), channel_category()};
}

} // namespace execution_sentinel

namespace boost::system {
template <> struct is_error_code_enum<::execution_sentinel::channel_error> : std::true_type {};
} // namespace boost::system

namespace execution_sentinel {

/// Per-subscriber limits and options. Aggregate: use designated initializers.
struct SubscriptionOptions {
    /// Reports queued for this subscriber before progress reports are coalesced. Default 256; 0 is read as 1.
    std::size_t capacity = 256;
    /// Non-progress reports (anomalies, connectivity, completion) queued beyond `capacity` before further
    /// reports are lost (and reported lost). Default 4096; 0 means no extra room.
    std::size_t overflow_limit = 4096;
    /// Start with the latest progress report published before subscribe(), if any. Default false: a
    /// subscriber receives only reports published after it subscribed.
    bool replay_latest_progress = false;
    /// Only reports of these types reach this subscriber. Empty (default): every type except the task-lifecycle
    /// stream (see `lifecycle`).
    std::vector<ReportType> types{};
    /// Only reports at least this severe reach this subscriber. Default info: all of them.
    Severity min_severity = Severity::info;
    /// Opt in to the task-lifecycle stream (TASK_STARTED, TASK_COMPLETED, TASK_FAILED, TASK_RETRIED: one report
    /// per task transition, for a replanner that needs every one). Default false: these reports reach only the
    /// subscriptions that set this flag or name them in `types`.
    bool lifecycle = false;
};

/// Whether a report reaches a subscription with these options (pure): its type is one the subscription takes
/// (`types`, or every non-lifecycle type when empty; a lifecycle type also with `lifecycle`) and it is at least
/// `min_severity`.
inline bool subscription_accepts(const SubscriptionOptions& o, const Report& r) noexcept {
    if (r.severity < o.min_severity) return false;
    const bool named = std::find(o.types.begin(), o.types.end(), r.type) != o.types.end();
    if (is_lifecycle(r.type)) return o.lifecycle ? (o.types.empty() || named) : named;
    return o.types.empty() || named;
}

/// Values other than reports are not filtered.
template <class T> inline bool subscription_accepts(const SubscriptionOptions&, const T&) noexcept { return true; }

/// Counters of one subscription (a snapshot).
struct SubscriptionStats {
    std::size_t queued = 0;    ///< reports queued now
    std::size_t delivered = 0; ///< reports handed to a receive
    std::size_t coalesced = 0; ///< progress reports replaced by a newer one while the queue was full
    std::size_t lost = 0;      ///< reports lost because the queue was over capacity + overflow_limit
};

/// Tells the channel which reports may be coalesced: PROGRESS reports.
struct ProgressReportsCoalesce {
    bool operator()(const Report& r) const noexcept { return r.type == ReportType::PROGRESS; }
};

namespace detail {

template <class T> class ReceiveOpBase {
public:
    virtual ~ReceiveOpBase() = default;
    /// Posts the completion to the handler's executor; never invokes the handler inline.
    virtual void complete(boost::system::error_code ec, T value, bool from_cancellation) = 0;
};

/// Posts `handler(ec, value)` to the handler's associated executor (or `fallback`).
template <class T, class Handler, class Executor>
void post_completion(Handler handler, const Executor& fallback, boost::system::error_code ec, T value) {
    auto ex = boost::asio::get_associated_executor(handler, fallback);
    boost::asio::post(ex, [h = std::move(handler), ec, v = std::move(value)]() mutable {
        std::move(h)(ec, std::move(v));
    });
}

template <class T, class Handler, class Executor> class ReceiveOp final : public ReceiveOpBase<T> {
public:
    using HandlerExecutor = boost::asio::associated_executor_t<Handler, Executor>;
    using WorkExecutor = std::decay_t<decltype(boost::asio::prefer(
        std::declval<HandlerExecutor>(), boost::asio::execution::outstanding_work.tracked))>;

    ReceiveOp(Handler h, const Executor& fallback)
        : handler_(std::move(h)),
          work_(boost::asio::prefer(boost::asio::get_associated_executor(handler_, fallback),
                                    boost::asio::execution::outstanding_work.tracked)),
          slot_(boost::asio::get_associated_cancellation_slot(handler_)) {}

    boost::asio::cancellation_slot& slot() { return slot_; }

    void complete(boost::system::error_code ec, T value, bool from_cancellation) override {
        auto work = std::move(work_);
        auto slot = slot_;
        boost::asio::post(work, [h = std::move(handler_), slot, ec, v = std::move(value),
                                 from_cancellation]() mutable {
            // Runs on the handler's executor, where the owner of the cancellation signal lives. A slot whose
            // signal fired stays as it is: its handler may still be running on the emitting thread.
            if (!from_cancellation && slot.is_connected()) slot.clear();
            std::move(h)(ec, std::move(v));
        });
    }

private:
    Handler handler_;
    WorkExecutor work_;
    boost::asio::cancellation_slot slot_;
};

/// One queue entry: a report, or a marker saying `lost` reports were lost at this place.
template <class T> struct ChannelEntry {
    std::optional<T> report;
    std::size_t lost = 0;
};

/// What happened to one published report in one subscriber's queue.
struct EnqueueOutcome {
    std::size_t coalesced = 0; ///< queued progress reports removed in favour of the new one
    bool lost = false;         ///< the new report was not queued; a loss marker records it
};

/// The full-queue policy as a pure function of the queue and the new report (no locking, no I/O).
/// `queued` counts the entries holding a report (loss markers excluded) and is kept up to date.
template <class T, class Coalescible>
EnqueueOutcome enqueue_with_policy(std::deque<ChannelEntry<T>>& queue, std::size_t& queued, T report,
                                   const Coalescible& coalescible, const SubscriptionOptions& opts) {
    EnqueueOutcome out;
    const std::size_t capacity = std::max<std::size_t>(opts.capacity, 1);
    if (queued < capacity) {
        queue.push_back({std::move(report), 0});
        ++queued;
        return out;
    }
    if (coalescible(report)) {
        // The newest progress report supersedes the queued ones: remove them, keep the rest in order.
        auto first = std::remove_if(queue.begin(), queue.end(), [&](const ChannelEntry<T>& e) {
            return e.report.has_value() && coalescible(*e.report);
        });
        out.coalesced = static_cast<std::size_t>(std::distance(first, queue.end()));
        queue.erase(first, queue.end());
        queued -= out.coalesced;
        queue.push_back({std::move(report), 0});
        ++queued;
        return out;
    }
    // Anomalies, connectivity and completion reports: room beyond capacity, then an explicit loss marker.
    if (queued - std::min(queued, capacity) < opts.overflow_limit) {
        queue.push_back({std::move(report), 0});
        ++queued;
        return out;
    }
    out.lost = true;
    if (!queue.empty() && !queue.back().report)
        ++queue.back().lost;
    else
        queue.push_back({std::nullopt, 1});
    return out;
}

template <class T> struct SubscriberState {
    explicit SubscriberState(SubscriptionOptions o) : options(o) {}
    SubscriptionOptions options;
    std::deque<ChannelEntry<T>> queue;
    std::size_t queued = 0;
    std::unique_ptr<ReceiveOpBase<T>> pending; ///< non-null only while `queue` is empty
    std::uint64_t pending_id = 0;
    bool attached = true;
    std::size_t delivered = 0;
    std::size_t coalesced = 0;
    std::size_t lost = 0;
};

template <class T, class Coalescible> class ChannelState {
public:
    using Subscriber = SubscriberState<T>;
    using Completion = std::pair<std::unique_ptr<ReceiveOpBase<T>>, T>;

    explicit ChannelState(boost::asio::any_io_executor ex) : executor(std::move(ex)) {}

    const boost::asio::any_io_executor executor;

    std::shared_ptr<Subscriber> subscribe(const SubscriptionOptions& opts) {
        auto sub = std::make_shared<Subscriber>(opts);
        std::lock_guard lock(mutex_);
        if (opts.replay_latest_progress && latest_progress_ && subscription_accepts(opts, *latest_progress_)) {
            sub->queue.push_back({*latest_progress_, 0});
            sub->queued = 1;
        }
        if (!closed_) subscribers_.push_back(sub);
        return sub;
    }

    bool publish(T report) {
        std::vector<std::unique_ptr<ReceiveOpBase<T>>> ready;
        std::vector<T> values;
        {
            std::lock_guard lock(mutex_);
            if (closed_) return false;
            const bool progress = coalescible_(report);
            if (progress) latest_progress_ = report;
            for (auto& sub : subscribers_) {
                if (!subscription_accepts(sub->options, report)) continue;
                if (sub->pending) {
                    ready.push_back(std::move(sub->pending));
                    values.push_back(report);
                    ++sub->delivered;
                    continue;
                }
                auto outcome = enqueue_with_policy(sub->queue, sub->queued, report, coalescible_, sub->options);
                sub->coalesced += outcome.coalesced;
                if (outcome.lost) ++sub->lost;
            }
        }
        for (std::size_t i = 0; i < ready.size(); ++i) ready[i]->complete({}, std::move(values[i]), false);
        return true;
    }

    void close() {
        std::vector<std::unique_ptr<ReceiveOpBase<T>>> ready;
        {
            std::lock_guard lock(mutex_);
            if (closed_) return;
            closed_ = true;
            for (auto& sub : subscribers_)
                if (sub->pending) ready.push_back(std::move(sub->pending));
            subscribers_.clear(); // queued reports stay with each subscriber until received
        }
        for (auto& op : ready) op->complete(channel_error::closed, T{}, false);
    }

    bool closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }

    std::size_t subscriber_count() const {
        std::lock_guard lock(mutex_);
        return subscribers_.size();
    }

    void unsubscribe(const std::shared_ptr<Subscriber>& sub) {
        std::unique_ptr<ReceiveOpBase<T>> op;
        {
            std::lock_guard lock(mutex_);
            if (!sub->attached) return;
            sub->attached = false;
            std::erase(subscribers_, sub);
            sub->queue.clear();
            sub->queued = 0;
            op = std::move(sub->pending);
        }
        if (op) op->complete(boost::asio::error::operation_aborted, T{}, false);
    }

    bool attached(const Subscriber& sub) const {
        std::lock_guard lock(mutex_);
        return sub.attached;
    }

    SubscriptionStats stats(const Subscriber& sub) const {
        std::lock_guard lock(mutex_);
        return {sub.queued, sub.delivered, sub.coalesced, sub.lost};
    }

    /// Starts a receive: completes it (posted) at once when a report, a loss or the end is known, else
    /// keeps it pending. Two pending receives are refused with operation_in_progress.
    template <class Handler>
    void start_receive(const std::shared_ptr<ChannelState>& self, const std::shared_ptr<Subscriber>& sub,
                       Handler handler) {
        std::unique_lock lock(mutex_);
        if (!sub->attached) {
            lock.unlock();
            post_completion<T>(std::move(handler), executor, channel_error::unsubscribed, T{});
            return;
        }
        if (sub->pending) {
            lock.unlock();
            post_completion<T>(std::move(handler), executor, channel_error::operation_in_progress, T{});
            return;
        }
        if (!sub->queue.empty()) {
            auto entry = std::move(sub->queue.front());
            sub->queue.pop_front();
            if (entry.report) {
                --sub->queued;
                ++sub->delivered;
                lock.unlock();
                post_completion<T>(std::move(handler), executor, {}, std::move(*entry.report));
            } else {
                lock.unlock();
                post_completion<T>(std::move(handler), executor, channel_error::reports_lost, T{});
            }
            return;
        }
        if (closed_) {
            lock.unlock();
            post_completion<T>(std::move(handler), executor, channel_error::closed, T{});
            return;
        }
        auto op = std::make_unique<ReceiveOp<T, Handler, boost::asio::any_io_executor>>(std::move(handler), executor);
        const std::uint64_t id = ++next_op_id_;
        if (op->slot().is_connected()) {
            std::weak_ptr<ChannelState> weak_self = self;
            std::weak_ptr<Subscriber> weak_sub = sub;
            op->slot().assign([weak_self, weak_sub, id](boost::asio::cancellation_type type) {
                if (type == boost::asio::cancellation_type::none) return;
                auto s = weak_self.lock();
                auto b = weak_sub.lock();
                if (s && b) s->cancel_receive(*b, id);
            });
        }
        sub->pending = std::move(op);
        sub->pending_id = id;
    }

private:
    void cancel_receive(Subscriber& sub, std::uint64_t id) {
        std::unique_ptr<ReceiveOpBase<T>> op;
        {
            std::lock_guard lock(mutex_);
            if (!sub.pending || sub.pending_id != id) return; // already completed
            op = std::move(sub.pending);
        }
        op->complete(boost::asio::error::operation_aborted, T{}, true);
    }

    mutable std::mutex mutex_;
    bool closed_ = false;
    std::vector<std::shared_ptr<Subscriber>> subscribers_;
    std::optional<T> latest_progress_;
    std::uint64_t next_op_id_ = 0;
    [[no_unique_address]] Coalescible coalescible_{};
};

} // namespace detail

/// A broadcast channel of values of type `T`; `Coalescible` says which values may be coalesced when a
/// subscriber's queue is full. Use `ReportChannel`.
template <class T, class Coalescible> class BasicReportChannel {
    using State = detail::ChannelState<T, Coalescible>;

public:
    using executor_type = boost::asio::any_io_executor;
    using value_type = T;

    /// One subscriber's end of the channel. Move-only; destroying it (or unsubscribe()) removes the
    /// subscriber and completes a pending receive with operation_aborted.
    class Subscription {
    public:
        Subscription() = default;
        Subscription(Subscription&&) noexcept = default;
        Subscription& operator=(Subscription&& other) noexcept {
            if (this != &other) {
                unsubscribe();
                state_ = std::move(other.state_);
                sub_ = std::move(other.sub_);
            }
            return *this;
        }
        Subscription(const Subscription&) = delete;
        Subscription& operator=(const Subscription&) = delete;
        ~Subscription() { unsubscribe(); }

        /// Receives the next report. Completion signature `void(boost::system::error_code, T)`.
        /// Completes with the next queued report; with `channel_error::reports_lost` (and a default `T`)
        /// at the place where reports were lost; with `channel_error::closed` once the channel is closed and
        /// everything queued was received; with `channel_error::operation_in_progress` when another receive
        /// is pending (the pending one is unaffected); with `boost::asio::error::operation_aborted` when
        /// cancelled through the handler's cancellation slot (any cancellation type; no report is consumed)
        /// or when the subscription is unsubscribed or destroyed meanwhile. Never completes inline: the
        /// handler runs on its associated executor, else on the channel's executor. The channel may be
        /// destroyed while a receive is pending (it is then closed).
        template <class CompletionToken>
        auto async_receive(CompletionToken&& token) {
            return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, T)>(
                [](auto handler, std::shared_ptr<State> state, std::shared_ptr<typename State::Subscriber> sub) {
                    if (!state) {
                        // A moved-from or default-constructed subscription: refuse, still without inline completion.
                        auto ex = boost::asio::get_associated_executor(handler);
                        detail::post_completion<T>(std::move(handler), ex, channel_error::unsubscribed, T{});
                        return;
                    }
                    state->start_receive(state, sub, std::move(handler));
                },
                token, state_, sub_);
        }

        /// Removes this subscriber: queued reports are discarded, a pending receive completes with
        /// operation_aborted, later receives complete with channel_error::unsubscribed. Idempotent.
        void unsubscribe() {
            if (state_ && sub_) state_->unsubscribe(sub_);
        }

        /// False for a default-constructed, moved-from or unsubscribed subscription.
        bool valid() const { return state_ && sub_ && state_->attached(*sub_); }

        /// Counters for this subscriber (thread-safe snapshot).
        SubscriptionStats stats() const { return state_ && sub_ ? state_->stats(*sub_) : SubscriptionStats{}; }
        /// Total reports lost for this subscriber (each loss also completes one receive with reports_lost).
        std::size_t lost_reports() const { return stats().lost; }
        /// Total progress reports coalesced away for this subscriber.
        std::size_t coalesced_reports() const { return stats().coalesced; }

        /// The channel's executor (used for handlers that have no associated executor).
        executor_type get_executor() const { return state_ ? state_->executor : executor_type{}; }

    private:
        friend class BasicReportChannel;
        Subscription(std::shared_ptr<State> state, std::shared_ptr<typename State::Subscriber> sub)
            : state_(std::move(state)), sub_(std::move(sub)) {}
        std::shared_ptr<State> state_;
        std::shared_ptr<typename State::Subscriber> sub_;
    };

    /// A channel whose handlers without an associated executor run on `ex`.
    explicit BasicReportChannel(executor_type ex) : state_(std::make_shared<State>(std::move(ex))) {}
    BasicReportChannel(const BasicReportChannel&) = delete;
    BasicReportChannel& operator=(const BasicReportChannel&) = delete;
    /// Closes the channel: subscribers still receive what was queued for them, then channel_error::closed.
    ~BasicReportChannel() { state_->close(); }

    /// A new subscriber that receives every report published from now on (and, with
    /// `replay_latest_progress`, the latest progress report first). After close() the subscription
    /// receives only what `replay_latest_progress` gives, then channel_error::closed. Thread-safe.
    Subscription subscribe(SubscriptionOptions options = {}) {
        return Subscription(state_, state_->subscribe(options));
    }

    /// Hands `report` to every subscriber; never blocks and never runs a handler inline. Returns false
    /// (and drops the report) when the channel is closed. Thread-safe.
    bool publish(T report) { return state_->publish(std::move(report)); }

    /// Ends the channel: pending receives complete with channel_error::closed; queued reports can still be
    /// received. Idempotent, thread-safe.
    void close() { state_->close(); }

    bool is_closed() const { return state_->closed(); }
    /// Subscribers currently attached (not counting those detached by close()).
    std::size_t subscriber_count() const { return state_->subscriber_count(); }
    executor_type get_executor() const { return state_->executor; }

private:
    std::shared_ptr<State> state_;
};

/// The channel of the Sentinel's reports: PROGRESS reports may be coalesced, nothing else is.
using ReportChannel = BasicReportChannel<Report, ProgressReportsCoalesce>;
/// A subscriber's end of a ReportChannel.
using ReportSubscription = ReportChannel::Subscription;

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_CHANNEL_HPP
