#include <execution_sentinel/channel.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/version.hpp>
#if BOOST_VERSION >= 108600
#include <boost/asio/cancel_after.hpp>
#endif

#include <atomic>
#include <chrono>
#include <future>
#include <functional>
#include <map>
#include <numeric>
#include <thread>
#include <vector>

#include "catch.hpp"

namespace asio = boost::asio;
namespace es = execution_sentinel;
using boost::system::error_code;

namespace {

es::Report make_report(es::ReportType type, std::uint64_t sequence, int completed = 0) {
    es::Report r;
    r.type = type;
    r.sequence = sequence;
    r.completed_tasks = completed;
    r.total_tasks = 100;
    r.message = "report " + std::to_string(sequence);
    return r;
}
es::Report progress(std::uint64_t seq, int completed) { return make_report(es::ReportType::PROGRESS, seq, completed); }
es::Report anomaly(std::uint64_t seq) { return make_report(es::ReportType::ANOMALY_OOMKILL, seq); }
es::Report completion(std::uint64_t seq) { return make_report(es::ReportType::COMPLETION, seq); }

struct Received {
    error_code ec;
    es::Report report;
};

/// Receives until the channel says closed (or the receive is aborted).
asio::awaitable<std::vector<Received>> drain(es::ReportSubscription& sub) {
    std::vector<Received> out;
    for (;;) {
        auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
        out.push_back({ec, std::move(r)});
        if (ec == es::channel_error::closed || ec == asio::error::operation_aborted) break;
    }
    co_return out;
}

/// Runs what is ready (restarting the context if it ran out of work before).
void poll(asio::io_context& io) {
    io.restart();
    io.poll();
}

template <class T> T run(asio::io_context& io, asio::awaitable<T> a) {
    auto fut = asio::co_spawn(io, std::move(a), asio::use_future);
    io.restart();
    io.run();
    return fut.get();
}

std::vector<std::uint64_t> sequences(const std::vector<Received>& rs) {
    std::vector<std::uint64_t> out;
    for (auto& r : rs)
        if (!r.ec) out.push_back(r.report.sequence);
    return out;
}

} // namespace

TEST_CASE("channel: every subscriber receives every report in order, then closed", "[channel]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto a = channel.subscribe();
    auto b = channel.subscribe();
    CHECK(channel.subscriber_count() == 2);
    for (std::uint64_t i = 1; i <= 5; ++i) CHECK(channel.publish(i % 2 ? anomaly(i) : progress(i, int(i))));
    channel.close();
    CHECK_FALSE(channel.publish(anomaly(6)));
    CHECK(channel.is_closed());

    auto ra = run(io, drain(a));
    auto rb = run(io, drain(b));
    for (auto* rs : {&ra, &rb}) {
        REQUIRE(rs->size() == 6);
        CHECK(sequences(*rs) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
        CHECK(rs->back().ec == es::channel_error::closed);
        CHECK((*rs)[1].report.type == es::ReportType::PROGRESS);
        CHECK((*rs)[0].report.message == "report 1");
    }
    // Closed stays closed.
    auto again = run(io, drain(a));
    REQUIRE(again.size() == 1);
    CHECK(again[0].ec == es::channel_error::closed);
    CHECK(a.stats().delivered == 5);
}

TEST_CASE("channel: a pending receive is completed by publish and by close", "[channel]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto sub = channel.subscribe();
    std::vector<Received> got;
    sub.async_receive([&](error_code ec, es::Report r) { got.push_back({ec, std::move(r)}); });
    poll(io);
    CHECK(got.empty()); // nothing published yet: still pending
    channel.publish(completion(7));
    CHECK(got.empty()); // publish never runs the handler inline
    poll(io);
    REQUIRE(got.size() == 1);
    CHECK_FALSE(got[0].ec);
    CHECK(got[0].report.sequence == 7);

    sub.async_receive([&](error_code ec, es::Report r) { got.push_back({ec, std::move(r)}); });
    poll(io);
    CHECK(got.size() == 1);
    channel.close();
    CHECK(got.size() == 1); // close never runs the handler inline either
    poll(io);
    REQUIRE(got.size() == 2);
    CHECK(got[1].ec == es::channel_error::closed);
}

TEST_CASE("channel: a receive never completes inline and runs on the handler's executor", "[channel]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto sub = channel.subscribe();
    channel.publish(anomaly(1));
    auto strand = asio::make_strand(io);
    bool done = false;
    bool on_strand = false;
    sub.async_receive(asio::bind_executor(strand, [&](error_code ec, es::Report r) {
        done = !ec && r.sequence == 1;
        on_strand = strand.running_in_this_thread();
    }));
    CHECK_FALSE(done); // a report was ready, yet the handler did not run inside async_receive
    io.run();
    CHECK(done);
    CHECK(on_strand);
}

TEST_CASE("channel: progress reports are coalesced into the latest one when a subscriber is full", "[channel]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto slow = channel.subscribe({.capacity = 4});
    auto roomy = channel.subscribe({.capacity = 1000});
    std::uint64_t seq = 0;
    for (int completed = 1; completed <= 20; ++completed) channel.publish(progress(++seq, completed));
    channel.close();

    auto rs = run(io, drain(slow));
    // At capacity 4, the 5th, 9th, 13th and 17th reports each replace the four queued before them: the last
    // replacement leaves 17 alone, then 18, 19 and 20 fit.
    CHECK(sequences(rs) == std::vector<std::uint64_t>{17, 18, 19, 20});
    REQUIRE(rs.size() == 5);
    CHECK(rs[3].report.completed_tasks == 20); // the latest progress survives
    CHECK(rs[4].ec == es::channel_error::closed);
    CHECK(slow.coalesced_reports() == 16);
    CHECK(slow.lost_reports() == 0);
    CHECK(slow.stats().delivered == 4);

    auto all = run(io, drain(roomy));
    CHECK(sequences(all).size() == 20);
    CHECK(roomy.coalesced_reports() == 0);
}

TEST_CASE("channel: anomaly and completion reports are never coalesced, and kept in order", "[channel]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto sub = channel.subscribe({.capacity = 3, .overflow_limit = 100});
    std::uint64_t seq = 0;
    std::vector<std::uint64_t> anomalies;
    for (int i = 0; i < 30; ++i) {
        channel.publish(progress(++seq, i));
        if (i % 3 == 0) {
            channel.publish(anomaly(++seq));
            anomalies.push_back(seq);
        }
    }
    channel.publish(completion(++seq));
    channel.close();
    auto rs = run(io, drain(sub));
    std::vector<std::uint64_t> got_anomalies;
    for (auto& r : rs)
        if (!r.ec && r.report.type == es::ReportType::ANOMALY_OOMKILL) got_anomalies.push_back(r.report.sequence);
    CHECK(got_anomalies == anomalies);
    auto seqs = sequences(rs);
    CHECK(std::is_sorted(seqs.begin(), seqs.end()));
    REQUIRE(rs.size() >= 2);
    CHECK(rs[rs.size() - 2].report.type == es::ReportType::COMPLETION);
    CHECK(sub.lost_reports() == 0);
    CHECK(sub.coalesced_reports() > 0);
    // The most recent progress before completion is there.
    bool saw_last_progress = false;
    for (auto& r : rs) saw_last_progress |= !r.ec && r.report.type == es::ReportType::PROGRESS && r.report.completed_tasks == 29;
    CHECK(saw_last_progress);
}

TEST_CASE("channel: past capacity + overflow_limit, losses are reported in place with their count", "[channel]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto sub = channel.subscribe({.capacity = 2, .overflow_limit = 3});
    for (std::uint64_t i = 1; i <= 12; ++i) channel.publish(anomaly(i));
    CHECK(sub.lost_reports() == 7);
    CHECK(sub.stats().queued == 5);

    // The first five are received, then one receive reports the loss, then delivery resumes.
    std::vector<Received> rs;
    auto receive_some = [&](int n) -> asio::awaitable<void> {
        for (int i = 0; i < n; ++i) {
            auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
            rs.push_back({ec, std::move(r)});
        }
    };
    run(io, receive_some(6));
    REQUIRE(rs.size() == 6);
    CHECK(sequences(rs) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    CHECK(rs[5].ec == es::channel_error::reports_lost);
    CHECK(std::string(rs[5].ec.category().name()) == "execution_sentinel.channel");
    CHECK(rs[5].ec.message().find("fell too far behind") != std::string::npos);
    CHECK(sub.stats().delivered == 5);
    CHECK(sub.stats().queued == 0);

    channel.publish(completion(13));
    channel.close();
    auto rest = run(io, drain(sub));
    REQUIRE(rest.size() == 2);
    CHECK(rest[0].report.type == es::ReportType::COMPLETION);
    CHECK(rest[1].ec == es::channel_error::closed);
    CHECK(sub.lost_reports() == 7);
}

TEST_CASE("channel: the queue policy is a pure function", "[channel]") {
    std::deque<es::detail::ChannelEntry<es::Report>> q;
    std::size_t queued = 0;
    es::ProgressReportsCoalesce coalesce;
    es::SubscriptionOptions opts{.capacity = 2, .overflow_limit = 1};
    CHECK_FALSE(es::detail::enqueue_with_policy(q, queued, progress(1, 1), coalesce, opts).lost);
    CHECK_FALSE(es::detail::enqueue_with_policy(q, queued, anomaly(2), coalesce, opts).lost);
    // Full: a progress report replaces the queued one and goes to the back.
    auto o = es::detail::enqueue_with_policy(q, queued, progress(3, 2), coalesce, opts);
    CHECK(o.coalesced == 1);
    CHECK_FALSE(o.lost);
    REQUIRE(q.size() == 2);
    CHECK(q[0].report->sequence == 2);
    CHECK(q[1].report->sequence == 3);
    // One anomaly fits in the overflow room, the next two are lost under one marker.
    CHECK_FALSE(es::detail::enqueue_with_policy(q, queued, anomaly(4), coalesce, opts).lost);
    CHECK(es::detail::enqueue_with_policy(q, queued, anomaly(5), coalesce, opts).lost);
    CHECK(es::detail::enqueue_with_policy(q, queued, completion(6), coalesce, opts).lost);
    REQUIRE(q.size() == 4);
    CHECK_FALSE(q[3].report.has_value());
    CHECK(q[3].lost == 2);
    CHECK(queued == 3);
    // capacity 0 is read as 1.
    std::deque<es::detail::ChannelEntry<es::Report>> q2;
    std::size_t queued2 = 0;
    es::SubscriptionOptions zero{.capacity = 0, .overflow_limit = 0};
    CHECK_FALSE(es::detail::enqueue_with_policy(q2, queued2, progress(1, 1), coalesce, zero).lost);
    CHECK(es::detail::enqueue_with_policy(q2, queued2, progress(2, 2), coalesce, zero).coalesced == 1);
    CHECK(es::detail::enqueue_with_policy(q2, queued2, anomaly(3), coalesce, zero).lost);
}

TEST_CASE("channel: a late subscriber receives reports from then on", "[channel]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto early = channel.subscribe();
    channel.publish(progress(1, 1));
    channel.publish(anomaly(2));
    channel.publish(progress(3, 2));
    channel.publish(anomaly(4));
    auto late = channel.subscribe();
    auto late_with_progress = channel.subscribe({.replay_latest_progress = true});
    channel.publish(anomaly(5));
    channel.close();
    CHECK(sequences(run(io, drain(early))) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    CHECK(sequences(run(io, drain(late))) == std::vector<std::uint64_t>{5});
    CHECK(sequences(run(io, drain(late_with_progress))) == std::vector<std::uint64_t>{3, 5});
    // Subscribing after close: closed at once.
    auto after = channel.subscribe();
    auto rs = run(io, drain(after));
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].ec == es::channel_error::closed);
}

TEST_CASE("channel: subscriptions filter by type and severity; lifecycle reports only for those who ask",
          "[channel][filter]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto everything = channel.subscribe();
    auto errors = channel.subscribe({.min_severity = es::Severity::error});
    auto oom_only = channel.subscribe({.types = {es::ReportType::ANOMALY_OOMKILL}});
    auto lifecycle = channel.subscribe({.lifecycle = true});
    auto started_only = channel.subscribe({.types = {es::ReportType::TASK_STARTED}});
    auto lifecycle_failed = channel.subscribe(
        {.types = {es::ReportType::TASK_FAILED, es::ReportType::COMPLETION}, .lifecycle = true});

    auto with = [](es::ReportType type, std::uint64_t seq, es::Severity severity) {
        auto r = make_report(type, seq);
        r.severity = severity;
        return r;
    };
    channel.publish(with(es::ReportType::PROGRESS, 1, es::Severity::info));
    channel.publish(with(es::ReportType::TASK_STARTED, 2, es::Severity::info));
    channel.publish(with(es::ReportType::ANOMALY_OOMKILL, 3, es::Severity::error));
    channel.publish(with(es::ReportType::ANOMALY_OOMKILL, 4, es::Severity::warning));
    channel.publish(with(es::ReportType::TASK_FAILED, 5, es::Severity::error));
    channel.publish(with(es::ReportType::ANOMALY_MEMORY_PRESSURE, 6, es::Severity::warning));
    channel.publish(with(es::ReportType::TASK_COMPLETED, 7, es::Severity::info));
    channel.publish(with(es::ReportType::COMPLETION, 8, es::Severity::critical));
    channel.close();

    CHECK(sequences(run(io, drain(everything))) == std::vector<std::uint64_t>{1, 3, 4, 6, 8});
    CHECK(sequences(run(io, drain(errors))) == std::vector<std::uint64_t>{3, 8});
    CHECK(sequences(run(io, drain(oom_only))) == std::vector<std::uint64_t>{3, 4});
    CHECK(sequences(run(io, drain(lifecycle))) == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(sequences(run(io, drain(started_only))) == std::vector<std::uint64_t>{2});
    CHECK(sequences(run(io, drain(lifecycle_failed))) == std::vector<std::uint64_t>{5, 8});
}

TEST_CASE("channel: the filter is a pure function, and a filtered-out progress report is not replayed",
          "[channel][filter]") {
    es::Report started = make_report(es::ReportType::TASK_RETRIED, 1);
    es::Report warn = make_report(es::ReportType::ANOMALY_STALL, 2);
    warn.severity = es::Severity::warning;
    CHECK_FALSE(es::subscription_accepts({}, started));
    CHECK(es::subscription_accepts({.lifecycle = true}, started));
    CHECK(es::subscription_accepts({.types = {es::ReportType::TASK_RETRIED}}, started));
    CHECK_FALSE(es::subscription_accepts({.types = {es::ReportType::TASK_STARTED}, .lifecycle = true}, started));
    CHECK(es::subscription_accepts({.min_severity = es::Severity::warning}, warn));
    CHECK_FALSE(es::subscription_accepts({.min_severity = es::Severity::error}, warn));
    CHECK_FALSE(es::subscription_accepts({.types = {es::ReportType::ANOMALY_OOMKILL}}, warn));

    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    channel.publish(progress(1, 1));
    auto anomalies = channel.subscribe({.replay_latest_progress = true, .types = {es::ReportType::ANOMALY_OOMKILL}});
    auto progress_too = channel.subscribe({.replay_latest_progress = true});
    channel.publish(anomaly(2));
    channel.close();
    CHECK(sequences(run(io, drain(anomalies))) == std::vector<std::uint64_t>{2});
    CHECK(sequences(run(io, drain(progress_too))) == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("channel: misuse is an error code", "[channel]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto sub = channel.subscribe();
    std::vector<Received> first, second;
    sub.async_receive([&](error_code ec, es::Report r) { first.push_back({ec, std::move(r)}); });
    sub.async_receive([&](error_code ec, es::Report r) { second.push_back({ec, std::move(r)}); });
    poll(io);
    REQUIRE(second.size() == 1);
    CHECK(second[0].ec == es::channel_error::operation_in_progress);
    CHECK(first.empty()); // the pending receive is unaffected
    channel.publish(anomaly(1));
    poll(io);
    REQUIRE(first.size() == 1);
    CHECK_FALSE(first[0].ec);
    CHECK(first[0].report.sequence == 1);

    // Receive on a moved-from subscription.
    auto moved = std::move(sub);
    CHECK(moved.valid());
    CHECK_FALSE(sub.valid());
    std::promise<error_code> stale;
    sub.async_receive([&](error_code ec, es::Report) { stale.set_value(ec); });
    // The handler has no associated executor and the subscription none: it runs on the system executor.
    CHECK(stale.get_future().get() == es::channel_error::unsubscribed);

    // Receive after unsubscribe.
    moved.unsubscribe();
    CHECK(channel.subscriber_count() == 0);
    std::vector<Received> after;
    moved.async_receive([&](error_code ec, es::Report r) { after.push_back({ec, std::move(r)}); });
    poll(io);
    REQUIRE(after.size() == 1);
    CHECK(after[0].ec == es::channel_error::unsubscribed);
}

TEST_CASE("channel: a pending receive can be cancelled without losing a report", "[channel]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto sub = channel.subscribe();

    SECTION("through a cancellation slot") {
        auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
        asio::cancellation_signal signal;
        std::vector<Received> got;
        sub.async_receive(asio::bind_cancellation_slot(
            signal.slot(), [&](error_code ec, es::Report r) { got.push_back({ec, std::move(r)}); }));
        poll(io);
        CHECK(got.empty());
        signal.emit(type);
        CHECK(got.empty()); // cancellation completes through the executor too
        poll(io);
        REQUIRE(got.size() == 1);
        CHECK(got[0].ec == asio::error::operation_aborted);
        signal.emit(type); // a second emission after completion is harmless
        poll(io);
        CHECK(got.size() == 1);
    }
    SECTION("through awaitable operators (a timer wins the race)") {
        using namespace asio::experimental::awaitable_operators;
        auto race = [&]() -> asio::awaitable<bool> {
            asio::steady_timer timer(io, std::chrono::milliseconds(1));
            auto result = co_await (sub.async_receive(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
            co_return result.index() == 1;
        };
        CHECK(run(io, race()));
    }
#if BOOST_VERSION >= 108600
    SECTION("through cancel_after") {
        auto timed = [&]() -> asio::awaitable<error_code> {
            auto [ec, r] = co_await sub.async_receive(
                asio::cancel_after(std::chrono::milliseconds(1), asio::as_tuple(asio::use_awaitable)));
            co_return ec;
        };
        CHECK(run(io, timed()) == asio::error::operation_aborted);
    }
#endif
    // Nothing was consumed by the cancelled receive, and the subscription still works.
    channel.publish(anomaly(42));
    channel.close();
    auto rs = run(io, drain(sub));
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].report.sequence == 42);
    CHECK(rs[1].ec == es::channel_error::closed);
}

TEST_CASE("channel: unsubscribing or destroying the channel completes a pending receive", "[channel]") {
    asio::io_context io;
    std::vector<Received> got;
    auto handler = [&](error_code ec, es::Report r) { got.push_back({ec, std::move(r)}); };
    {
        es::ReportChannel channel(io.get_executor());
        auto sub = channel.subscribe();
        sub.async_receive(handler);
        poll(io);
        sub.unsubscribe();
        poll(io);
        REQUIRE(got.size() == 1);
        CHECK(got[0].ec == asio::error::operation_aborted);
        CHECK_FALSE(sub.valid());
        CHECK(channel.subscriber_count() == 0);
        sub.unsubscribe(); // idempotent: no second completion, and later receives are refused
        poll(io);
        CHECK(got.size() == 1);
        sub.async_receive(handler);
        poll(io);
        REQUIRE(got.size() == 2);
        CHECK(got[1].ec == es::channel_error::unsubscribed);
    }
    es::ReportSubscription survivor;
    {
        es::ReportChannel channel(io.get_executor());
        survivor = channel.subscribe();
        channel.publish(completion(1));
        survivor.async_receive(handler);
        survivor.async_receive(handler); // rejected: one at a time
        poll(io);
        survivor.async_receive(handler); // pending when the channel goes away
    }
    poll(io);
    REQUIRE(got.size() == 5);
    CHECK(got[2].report.type == es::ReportType::COMPLETION);
    CHECK(got[3].ec == es::channel_error::operation_in_progress);
    CHECK(got[4].ec == es::channel_error::closed);
}

TEST_CASE("channel: callback and use_future completion tokens", "[channel]") {
    asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto sub = channel.subscribe();
    auto guard = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });

    auto fut = sub.async_receive(asio::use_future);
    channel.publish(completion(9));
    es::Report r = fut.get();
    CHECK(r.sequence == 9);
    CHECK(r.type == es::ReportType::COMPLETION);

    std::promise<error_code> closed;
    sub.async_receive([&](error_code ec, es::Report) { closed.set_value(ec); });
    channel.close();
    CHECK(closed.get_future().get() == es::channel_error::closed);

    // use_future turns the error into an exception.
    auto fut2 = sub.async_receive(asio::use_future);
    CHECK_THROWS_AS(fut2.get(), boost::system::system_error);

    guard.reset();
    runner.join();
}

TEST_CASE("channel: multi-threaded publishers, subscribers and cancellations", "[channel][threads]") {
    // Run under ThreadSanitizer to prove the locking (docs/embedding.md, "Threading").
    constexpr int publishers = 3;
    constexpr int per_publisher = 1500;
    constexpr std::size_t published_each_kind = std::size_t{publishers} * per_publisher;
    constexpr int subscribers = 4;
    asio::thread_pool pool(4);
    es::ReportChannel channel(pool.get_executor());

    // Room for every anomaly: these subscribers lose nothing, only progress reports may be coalesced.
    std::vector<es::ReportSubscription> subs;
    for (int i = 0; i < subscribers; ++i)
        subs.push_back(channel.subscribe({.capacity = 16, .overflow_limit = published_each_kind}));
    // Two slots and the default overflow room (fewer than the anomalies published): may lose anomalies.
    auto lossy = channel.subscribe({.capacity = 2});

    struct Tally {
        std::map<int, std::vector<std::uint64_t>> anomalies; ///< sequences received, by publisher
        std::size_t progress = 0;                           ///< progress reports received
        std::size_t loss_markers = 0;                       ///< receives completed with reports_lost
        std::size_t other_errors = 0;                       ///< any other error before closed
    };
    auto consume = [&](es::ReportSubscription& sub) -> asio::awaitable<Tally> {
        Tally t;
        for (;;) {
            auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
            if (ec == es::channel_error::closed) break;
            if (ec == es::channel_error::reports_lost) ++t.loss_markers;
            else if (ec) ++t.other_errors;
            else if (r.type == es::ReportType::PROGRESS) ++t.progress;
            else t.anomalies[r.completed_tasks].push_back(r.sequence);
        }
        co_return t;
    };
    std::vector<std::future<Tally>> results;
    for (auto& s : subs) results.push_back(asio::co_spawn(asio::make_strand(pool), consume(s), asio::use_future));
    auto lossy_result = asio::co_spawn(pool, consume(lossy), asio::use_future);

    // A subscriber that keeps racing receives against a short timer (the loser is cancelled), until closed.
    struct Racer {
        std::size_t reports = 0, loss_markers = 0, in_progress = 0, other_errors = 0, delivered = 0, lost = 0;
        bool closed = false;
    };
    auto racer = asio::co_spawn(
        asio::make_strand(pool),
        [&]() -> asio::awaitable<Racer> {
            using namespace asio::experimental::awaitable_operators;
            auto sub = channel.subscribe({.capacity = 1, .overflow_limit = 0});
            Racer out;
            auto count = [&](error_code ec) {
                if (!ec) ++out.reports;
                else if (ec == es::channel_error::reports_lost) ++out.loss_markers;
                else if (ec == es::channel_error::operation_in_progress) ++out.in_progress;
                else if (ec == es::channel_error::closed) out.closed = true;
                else ++out.other_errors;
            };
            while (!out.closed) {
                auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
                (void)r;
                count(ec);
                if (out.closed) break;
                asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::microseconds(50));
                auto raced = co_await (sub.async_receive(asio::as_tuple(asio::use_awaitable)) ||
                                       t.async_wait(asio::as_tuple(asio::use_awaitable)));
                if (raced.index() == 0) count(std::get<0>(std::get<0>(raced)));
            }
            out.delivered = sub.stats().delivered;
            out.lost = sub.lost_reports();
            co_return out;
        },
        asio::use_future);

    // Subscriptions created and destroyed with a receive pending, from a thread outside the pool.
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> churn_started{0}, churn_completed{0}, churn_unexpected{0};
    std::thread churn([&] {
        do {
            auto s = channel.subscribe({.replay_latest_progress = true});
            ++churn_started;
            s.async_receive([&](error_code ec, es::Report) {
                if (ec && ec != asio::error::operation_aborted && ec != es::channel_error::closed) ++churn_unexpected;
                ++churn_completed;
            });
            (void)s.stats();
        } while (!stop.load());
    });

    std::vector<std::thread> threads;
    for (int p = 0; p < publishers; ++p)
        threads.emplace_back([&, p] {
            for (int i = 1; i <= per_publisher; ++i) {
                auto r = anomaly(static_cast<std::uint64_t>(i));
                r.completed_tasks = p;
                channel.publish(r);
                channel.publish(progress(static_cast<std::uint64_t>(i), i));
            }
        });
    for (auto& t : threads) t.join();
    channel.close();

    std::vector<std::uint64_t> all_sequences(per_publisher);
    std::iota(all_sequences.begin(), all_sequences.end(), std::uint64_t{1});
    for (std::size_t i = 0; i < results.size(); ++i) {
        INFO("subscriber " << i);
        auto t = results[i].get();
        CHECK(t.other_errors == 0);
        CHECK(t.loss_markers == 0);
        CHECK(subs[i].lost_reports() == 0);
        REQUIRE(t.anomalies.size() == publishers);
        for (auto& [p, seqs] : t.anomalies) {
            INFO("publisher " << p);
            CHECK(seqs == all_sequences); // each publisher's anomalies, all of them, in publication order
        }
        // Every progress report was either received or coalesced away, never dropped otherwise.
        CHECK(t.progress + subs[i].coalesced_reports() == published_each_kind);
        CHECK(subs[i].stats().delivered == t.progress + published_each_kind);
        CHECK(subs[i].stats().queued == 0);
    }

    // The lossy subscriber: every report is accounted for as received, coalesced or lost, and what it
    // received is still in order.
    auto l = lossy_result.get();
    CHECK(l.other_errors == 0);
    std::size_t lossy_anomalies = 0;
    for (auto& [p, seqs] : l.anomalies) {
        INFO("publisher " << p);
        CHECK(std::adjacent_find(seqs.begin(), seqs.end(), std::greater_equal<>()) == seqs.end());
        lossy_anomalies += seqs.size();
    }
    CHECK(lossy_anomalies + lossy.lost_reports() == published_each_kind);
    CHECK(l.progress + lossy.coalesced_reports() == published_each_kind);
    CHECK(lossy.stats().delivered == l.progress + lossy_anomalies);
    CHECK(l.loss_markers <= lossy.lost_reports());
    CHECK((l.loss_markers > 0) == (lossy.lost_reports() > 0));

    // Cancelled receives never leave a receive pending behind them, and the racer saw the end.
    auto rc = racer.get();
    CHECK(rc.closed);
    CHECK(rc.in_progress == 0);
    CHECK(rc.other_errors == 0);
    // A report (or a loss) handed to a receive that lost the race is discarded by `||`: at most what was handed.
    CHECK(rc.reports <= rc.delivered);
    CHECK(rc.loss_markers <= rc.lost);

    stop = true;
    churn.join();
    pool.join();
    // Destroying a subscription completed its pending receive, exactly once each.
    CHECK(churn_started.load() > 0);
    CHECK(churn_completed.load() == churn_started.load());
    CHECK(churn_unexpected.load() == 0);
}
