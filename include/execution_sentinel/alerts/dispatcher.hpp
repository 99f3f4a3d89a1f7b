// AlertDispatcher: takes the Sentinel's reports from a subscription of the report channel and delivers them to
// Alertmanager, Slack and webhook sinks (docs/alerts.md). Each sink has its own bounded queue and its own coroutine,
// so a slow or failing receiver never holds up the watch nor the other sinks; the delivery ledger makes a restarted
// sentinel skip what was already delivered.
//
// Per sink: a filter (types, minimum severity), deduplication by alert key and a cooldown per (run, task, type,
// severity) through the DeliveryLedger, grouping of bursts into one message, retries with kube::Backoff on 5xx, 429
// (Retry-After honoured), timeouts and connection errors, and a dead-letter record ("dead") after the last attempt.
// The decisions are the pure functions of payload.hpp; this file is the driver.
#ifndef EXECUTION_SENTINEL_ALERTS_DISPATCHER_HPP
#define EXECUTION_SENTINEL_ALERTS_DISPATCHER_HPP

#include <execution_sentinel/alerts/config.hpp>
#include <execution_sentinel/alerts/http_post.hpp>
#include <execution_sentinel/alerts/ledger.hpp>
#include <execution_sentinel/alerts/payload.hpp>
#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/kube/backoff.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::alerts {

/// Options of an AlertDispatcher. Aggregate: use designated initializers.
struct DispatcherOptions {
    AlertContext context;                        ///< run and namespace: labels, keys and ledger records carry them
    std::function<void(std::string_view)> log{}; ///< one line per event worth telling (never a secret); empty = quiet
    std::function<Timestamp()> now{};            ///< wall clock for records and cooldowns; empty = Clock::now
    /// After the report stream ends, how long drain() lets sinks finish (retries included) before it stops them;
    /// an alert already attempted stays "failed" in the ledger and is retried when it is reported again.
    std::chrono::milliseconds shutdown_grace{std::chrono::seconds(10)};
};

/// Counters of one sink (a snapshot).
struct SinkStats {
    std::size_t messages_sent = 0;   ///< messages the receiver accepted (2xx)
    std::size_t alerts_sent = 0;     ///< alerts in those messages
    std::size_t duplicates = 0;      ///< alerts skipped: the ledger says they were sent (or dead-lettered) already
    std::size_t cooled_down = 0;     ///< alerts held back by the cooldown
    std::size_t failed_attempts = 0; ///< attempts that did not deliver
    std::size_t dead_letters = 0;    ///< alerts given up after the last attempt (or a permanent refusal)
    std::size_t overflowed = 0;      ///< alerts lost because the sink's queue was full
};

/// Delivers reports to sinks. Construct, then co_spawn run(subscription) (or call offer() per report, then drain()),
/// all on one executor (a strand when the io_context has several threads). Destroying the dispatcher stops its sink
/// coroutines; it may be destroyed while the io_context still runs them (they stop without touching it again).
class AlertDispatcher {
public:
    /// Throws AlertsConfigError for a sink whose URL is not http(s) or whose CA cannot be loaded.
    AlertDispatcher(boost::asio::any_io_executor ex, AlertsConfig config, std::shared_ptr<DeliveryLedger> ledger,
                    DispatcherOptions options = {})
        : ex_(std::move(ex)), ledger_(std::move(ledger)), options_(std::move(options)),
          idle_(std::make_shared<boost::asio::steady_timer>(ex_)) {
        if (!ledger_) ledger_ = std::make_shared<MemoryDeliveryLedger>();
        std::set<std::string> names;
        for (auto& sc : config.sinks) {
            if (!names.insert(sc.name).second) throw AlertsConfigError("sink " + sc.name + ": the name is used twice");
            auto ep = parse_endpoint(sc.url);
            if (!ep) throw AlertsConfigError("sink " + sc.name + ": the URL is not an http:// or https:// URL");
            if (sc.kind == SinkKind::alertmanager) {
                while (ep->target.size() > 1 && ep->target.back() == '/') ep->target.pop_back();
                if (ep->target == "/") ep->target.clear();
                if (ep->target.find("/api/v2/alerts") == std::string::npos) ep->target += "/api/v2/alerts";
            }
            auto sink = std::make_shared<Sink>(ex_, std::move(sc), std::move(*ep));
            if (sink->endpoint.tls) sink->tls = make_alert_tls_context(sink->config.name, sink->config.ca_pem);
            sinks_.push_back(std::move(sink));
        }
    }

    AlertDispatcher(const AlertDispatcher&) = delete;
    AlertDispatcher& operator=(const AlertDispatcher&) = delete;
    ~AlertDispatcher() {
        *alive_ = false;
        for (auto& s : sinks_) s->stop.emit(boost::asio::cancellation_type::terminal);
    }

    /// Hands `report` to every sink that takes it (filter only: ledger and grouping come in the sink's coroutine).
    /// Never blocks, never waits: a full sink queue counts the alert in `overflowed` and logs it. Returns the
    /// number of sinks the report was queued for. Call on the dispatcher's executor.
    std::size_t offer(const Report& report) {
        start();
        std::size_t queued = 0;
        const auto now = std::chrono::steady_clock::now();
        for (auto& s : sinks_) {
            if (s->closing || !sink_accepts(s->config, report)) continue;
            if (!s->batch.add(make_alert(report, options_.context), now)) {
                ++s->stats.overflowed;
                if (s->stats.overflowed == 1 || s->stats.overflowed % 100 == 0)
                    log("alerts: sink " + s->config.name + ": queue full (" + std::to_string(s->config.queue_capacity) +
                        " alerts); " + std::to_string(s->stats.overflowed) + " alert(s) dropped so far");
                continue;
            }
            ++queued;
            s->wake.cancel();
        }
        return queued;
    }

    /// Receives reports from `subscription` until the channel is closed (or this operation is cancelled), offers
    /// each one, then drain()s. A loss in the channel is logged. Completes on the dispatcher's executor.
    boost::asio::awaitable<void> run(ReportSubscription subscription) {
        start();
        for (;;) {
            auto [ec, report] = co_await subscription.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec == channel_error::reports_lost) {
                log("alerts: reports were lost before they reached the alert sinks (the dispatcher fell behind)");
                continue;
            }
            if (ec) break;
            offer(report);
        }
        co_await drain();
    }

    /// Stops taking reports, lets every sink deliver what it holds (grouping windows are cut short), and completes
    /// when all are done or `shutdown_grace` has passed (then the sinks are stopped: alerts already attempted stay
    /// "failed" in the ledger, alerts not yet attempted are not delivered; both are logged). Afterwards the dispatcher can be used again. Completes on the dispatcher's executor.
    boost::asio::awaitable<void> drain() {
        start();
        for (auto& s : sinks_) {
            s->closing = true;
            s->wake.cancel();
        }
        const auto deadline = std::chrono::steady_clock::now() + options_.shutdown_grace;
        bool stopped = false;
        while (active_ > 0) {
            if (!stopped && std::chrono::steady_clock::now() >= deadline) {
                stopped = true;
                std::size_t left = 0;
                for (auto& s : sinks_) left += s->batch.size() + s->in_flight;
                log("alerts: stopping after " + std::to_string(options_.shutdown_grace.count()) + " ms with " +
                    std::to_string(left) + " alert(s) undelivered; those already attempted stay failed in the "
                    "ledger and are retried when reported again");
                for (auto& s : sinks_) s->stop.emit(boost::asio::cancellation_type::terminal);
            }
            idle_->expires_at(stopped ? std::chrono::steady_clock::now() + std::chrono::milliseconds(50) : deadline);
            (void)co_await idle_->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        }
        // Drained: the dispatcher takes reports again (a later offer() or run() starts the sinks anew).
        for (auto& s : sinks_) s->closing = false;
        started_ = false;
    }

    /// Counters of the sink named `name` (zeros for an unknown name).
    SinkStats stats(const std::string& name) const {
        for (const auto& s : sinks_)
            if (s->config.name == name) return s->stats;
        return {};
    }

    const DeliveryLedger& ledger() const noexcept { return *ledger_; }

private:
    struct Sink {
        Sink(boost::asio::any_io_executor ex, SinkConfig c, Endpoint e)
            : config(std::move(c)), endpoint(std::move(e)),
              batch(config.group_window, config.max_group, config.queue_capacity), wake(ex), pause(ex),
              backoff(config.backoff) {}
        SinkConfig config;
        Endpoint endpoint;
        std::shared_ptr<boost::asio::ssl::context> tls;
        Batcher batch;
        boost::asio::steady_timer wake;
        boost::asio::steady_timer pause;
        kube::Backoff backoff;
        boost::asio::cancellation_signal stop;
        bool closing = false;
        std::size_t in_flight = 0;
        std::optional<std::chrono::steady_clock::time_point> last_message;
        /// Alertmanager: severities an alert fired under, per (alert type, task), so a resolution closes them.
        std::map<std::string, std::set<Severity>> open;
        SinkStats stats;
    };

    void log(const std::string& line) const {
        if (options_.log) options_.log(line);
    }
    Timestamp now() const { return options_.now ? options_.now() : Clock::now(); }

    void start() {
        if (started_) return;
        started_ = true;
        for (auto& s : sinks_) {
            ++active_;
            boost::asio::co_spawn(ex_, worker(s),
                                  boost::asio::bind_cancellation_slot(
                                      s->stop.slot(), [this, alive = alive_](std::exception_ptr e) {
                                          if (!*alive) return; // the dispatcher is gone; nothing to tell
                                          if (e) {
                                              try {
                                                  std::rethrow_exception(e);
                                              } catch (const boost::system::system_error& se) {
                                                  if (se.code() != boost::asio::error::operation_aborted)
                                                      log(std::string("alerts: a sink stopped: ") + se.what());
                                              } catch (const std::exception& ex) {
                                                  log(std::string("alerts: a sink stopped: ") + ex.what());
                                              }
                                          }
                                          --active_;
                                          idle_->cancel();
                                      }));
        }
    }

    static std::string open_key(const Report& r) {
        return std::string(to_string(alert_type_of(r))) + "/" + r.task_name + "/" + r.task_type;
    }

    void safe_record(Sink& s, DeliveryRecord r) {
        try {
            ledger_->record(std::move(r));
        } catch (const std::exception& e) {
            log("alerts: sink " + s.config.name + ": the delivery ledger cannot be written: " + e.what());
        }
    }

    std::optional<DeliveryRecord> safe_find(Sink& s, const std::string& key) {
        try {
            return ledger_->find(s.config.name, key);
        } catch (const std::exception& e) {
            log("alerts: sink " + s.config.name + ": the delivery ledger cannot be read: " + e.what());
            return std::nullopt;
        }
    }

    boost::asio::awaitable<void> worker(std::shared_ptr<Sink> s) {
        using std::chrono::steady_clock;
        for (;;) {
            if (s->batch.empty()) {
                if (s->closing) co_return;
                s->wake.expires_at(steady_clock::time_point::max());
                (void)co_await s->wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
                co_await check_stopped();
                continue;
            }
            if (!s->closing && !s->batch.ready(steady_clock::now())) {
                s->wake.expires_at(s->batch.deadline());
                (void)co_await s->wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
                co_await check_stopped();
                continue;
            }
            auto group = s->batch.take();
            co_await deliver(*s, std::move(group));
        }
    }

    /// Throws operation_aborted when the sink's coroutine was told to stop.
    static boost::asio::awaitable<void> check_stopped() {
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none)
            throw boost::system::system_error(boost::asio::error::operation_aborted);
    }

    boost::asio::awaitable<void> deliver(Sink& s, std::vector<Alert> group) {
        using std::chrono::steady_clock;
        // Deduplicate (ledger and within the group) and apply cooldowns.
        std::vector<Alert> send;
        std::set<std::string> keys, cooled;
        int prior_attempts = 0;
        const Timestamp t = now();
        for (auto& a : group) {
            if (!keys.insert(a.key).second) {
                ++s.stats.duplicates;
                continue;
            }
            auto by_key = safe_find(s, a.key);
            std::optional<DeliveryRecord> by_cooldown;
            if (!is_resolution(a.report) && s.config.cooldown.count() > 0) {
                if (cooled.count(a.cooldown_key)) {
                    ++s.stats.cooled_down;
                    continue;
                }
                by_cooldown = safe_find(s, a.cooldown_key);
            }
            if (auto why = suppression(a, by_key, by_cooldown, s.config.cooldown, t)) {
                if (*why == Suppression::duplicate) ++s.stats.duplicates;
                else ++s.stats.cooled_down;
                continue;
            }
            if (by_key && by_key->state == "failed") prior_attempts = std::max(prior_attempts, by_key->attempts);
            if (!is_resolution(a.report)) cooled.insert(a.cooldown_key);
            send.push_back(std::move(a));
        }
        if (send.empty()) co_return;
        s.in_flight = send.size();

        // The message, identical for every attempt.
        std::string body;
        std::vector<std::pair<std::string, std::string>> headers;
        switch (s.config.kind) {
        case SinkKind::alertmanager: {
            boost::json::array arr;
            for (const auto& a : send) {
                std::vector<Severity> sev;
                if (is_resolution(a.report)) {
                    auto it = s.open.find(open_key(a.report));
                    if (it != s.open.end() && !it->second.empty()) sev.assign(it->second.begin(), it->second.end());
                    else sev = {Severity::warning, Severity::error, Severity::critical};
                }
                append_alertmanager_alerts(arr, a, options_.context, s.config, sev);
            }
            body = boost::json::serialize(arr);
            break;
        }
        case SinkKind::slack: body = boost::json::serialize(slack_message(send, options_.context)); break;
        case SinkKind::webhook: {
            body = boost::json::serialize(webhook_message(send, options_.context));
            headers.emplace_back("Idempotency-Key", group_key(send));
            if (!s.config.hmac_key.empty())
                headers.emplace_back("X-Sentinel-Signature", "sha256=" + hmac_sha256_hex(s.config.hmac_key, body));
            break;
        }
        }

        const int max_attempts = std::max(1, s.config.max_attempts);
        int attempt = std::min(prior_attempts, max_attempts - 1);
        s.backoff.reset();
        for (;;) {
            // At most one message per min_interval (Slack: one per second).
            if (s.last_message && s.config.min_interval.count() > 0) {
                auto next = *s.last_message + s.config.min_interval;
                if (steady_clock::now() < next) {
                    s.pause.expires_at(next);
                    (void)co_await s.pause.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
                    co_await check_stopped();
                }
            }
            ++attempt;
            s.last_message = steady_clock::now();
            PostResult r = co_await post_alert(s.endpoint, headers, body, s.tls, s.config.timeout, s.config.name);
            const AttemptVerdict verdict = verdict_for_status(r.status);
            if (verdict == AttemptVerdict::delivered) {
                ++s.stats.messages_sent;
                s.stats.alerts_sent += send.size();
                const Timestamp done = now();
                for (const auto& a : send) {
                    safe_record(s, {options_.context.run_id, s.config.name, a.key, "sent", attempt, "", done});
                    if (!is_resolution(a.report)) {
                        if (s.config.cooldown.count() > 0)
                            safe_record(s, {options_.context.run_id, s.config.name, a.cooldown_key, "sent", 1, "", done});
                        s.open[open_key(a.report)].insert(a.report.severity);
                    } else {
                        s.open.erase(open_key(a.report));
                    }
                }
                s.in_flight = 0;
                co_return;
            }
            ++s.stats.failed_attempts;
            const bool last = verdict == AttemptVerdict::give_up || attempt >= max_attempts;
            const Timestamp failed_at = now();
            for (const auto& a : send)
                safe_record(s, {options_.context.run_id, s.config.name, a.key, last ? "dead" : "failed", attempt,
                                r.error, failed_at});
            if (last) {
                s.stats.dead_letters += send.size();
                log("alerts: sink " + s.config.name + ": gave up on " + std::to_string(send.size()) + " alert(s) after " +
                    std::to_string(attempt) + " attempt(s): " + r.error + " (recorded as dead letters)");
                s.in_flight = 0;
                co_return;
            }
            auto delay = s.backoff.next_delay(steady_clock::now(), r.retry_after);
            log("alerts: sink " + s.config.name + ": attempt " + std::to_string(attempt) + " of " +
                std::to_string(max_attempts) + " failed: " + r.error + "; retrying in " + std::to_string(delay.count()) +
                " ms");
            s.pause.expires_after(delay);
            (void)co_await s.pause.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            co_await check_stopped();
        }
    }

    boost::asio::any_io_executor ex_;
    std::shared_ptr<DeliveryLedger> ledger_;
    DispatcherOptions options_;
    std::vector<std::shared_ptr<Sink>> sinks_;
    std::shared_ptr<boost::asio::steady_timer> idle_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    bool started_ = false;
    std::size_t active_ = 0;
};

} // namespace execution_sentinel::alerts

#endif // EXECUTION_SENTINEL_ALERTS_DISPATCHER_HPP
