// Bodies of kube/logs.hpp: included by that header when header-only, compiled once by
// <execution_sentinel/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_KUBE_IMPL_LOGS_IPP
#define EXECUTION_SENTINEL_KUBE_IMPL_LOGS_IPP

#include <execution_sentinel/kube/logs.hpp>

#include <boost/asio/use_awaitable.hpp>

namespace execution_sentinel::kube {

EXECUTION_SENTINEL_DECL boost::asio::awaitable<std::vector<LogLine>> tail(Client& client, std::string namespace_, std::string pod,
                                                         std::string container, std::optional<int> tail_lines) {
    RequestOptions ro;
    ro.accept = "*/*";
    std::string target = log_target(namespace_, pod, container, false, std::nullopt, tail_lines);
    std::string no_body;
    auto r = co_await client.request(boost::beast::http::verb::get, std::move(target), std::move(no_body), std::move(ro));
    std::vector<LogLine> out{};
    std::string partial{};
    Timestamp last{};
    auto on_line = [&](std::string_view line) {
        out.push_back(split_log_line(line, last));
        last = out.back().time;
    };
    split_lines(partial, r.body, std::size_t{1} << 20, on_line);
    if (!partial.empty()) on_line(partial);
    co_return out;
}


EXECUTION_SENTINEL_DECL void LogFollower::take_lines(std::string_view bytes) {
    split_lines(partial_, bytes, request_.max_line_bytes, [this](std::string_view raw) {
        LogLine line = split_log_line(raw, last_time_);
        last_time_ = line.time;
        if (dedup_.accept(line)) {
            pending_.push_back(std::move(line));
            delivered_since_open_ = true;
        }
    });
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<void> LogFollower::open() {
    for (;;) {
        std::optional<Timestamp> since = dedup_.last_time();
        std::optional<int> tail_lines;
        if (!since) since = request_.since_time;
        if (opens_ == 0) tail_lines = request_.tail_lines;
        StreamOptions so;
        so.idle_timeout = request_.idle_timeout;
        so.accept = "*/*";
        RequestDecision decision;
        try {
            std::string target = log_target(request_.namespace_, request_.pod, request_.container, true, since, tail_lines);
            stream_.emplace(co_await client_.open_stream(std::move(target), std::move(so)));
            ++opens_;
            delivered_since_open_ = false;
            partial_.clear();
            dedup_.begin_replay();
            co_return;
        } catch (const Error& e) {
            if (e.code() == error::not_found && opens_ > 0) { // the pod is gone: its log ended
                finished_ = true;
                co_return;
            }
            const auto code = static_cast<error>(e.code().value());
            const auto now = RequestMachine::clock::now();
            decision = e.diagnostics().http_status != 0
                           ? reopen_.on_answer(code, e.diagnostics().retry_after_seconds, now, detail::log_not_ready_yet(e))
                           : reopen_.on_transport_failure(code, false, false, now);
            if (decision.action != RequestDecision::Action::retry_after_delay) throw;
        }
        co_await detail::sleep_for(client_.get_executor(), decision.delay);
    }
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<void> LogFollower::on_stream_end(bool delivered_any) {
    bool reopen_later = !delivered_any;
    std::optional<boost::json::value> pod{};
    try {
        pod = co_await client_.get_json("/api/v1/namespaces/" + escape_path_segment(request_.namespace_) + "/pods/" +
                                        escape_path_segment(request_.pod));
    } catch (const Error& e) {
        if (e.code() == error::not_found) {
            finished_ = true;
            co_return;
        }
        if (!is_retryable(e.code())) throw;
        reopen_later = true;
    }
    if (pod && log_finished(*pod, request_.container)) {
        finished_ = true;
        co_return;
    }
    if (reopen_later) co_await detail::sleep_for(client_.get_executor(), reopen_.delay_before_retry(RequestMachine::clock::now()));
    else reopen_.on_healthy();
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<std::optional<LogLine>> LogFollower::next() {
    for (;;) {
        if (!pending_.empty()) {
            LogLine line = std::move(pending_.front());
            pending_.pop_front();
            co_return line;
        }
        if (finished_) co_return std::nullopt;
        if (stream_ && !stream_->is_open()) stream_.reset(); // a cancelled read closed it
        if (!stream_) {
            co_await open();
            continue;
        }
        std::string_view bytes;
        std::optional<Error> failure;
        try {
            bytes = co_await stream_->read_some();
        } catch (const Error& e) {
            failure = e;
        }
        if (failure) {
            stream_.reset();
            partial_.clear(); // an unfinished line comes again after the reopen
            auto decision = reopen_.on_transport_failure(static_cast<error>(failure->code().value()), false, false,
                                                         RequestMachine::clock::now());
            if (decision.action != RequestDecision::Action::retry_after_delay) throw *failure;
            co_await detail::sleep_for(client_.get_executor(), decision.delay);
            continue;
        }
        if (bytes.empty()) {
            if (!partial_.empty()) take_lines("\n");
            stream_.reset();
            co_await on_stream_end(delivered_since_open_);
            continue;
        }
        take_lines(bytes);
    }
}

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_IMPL_LOGS_IPP
