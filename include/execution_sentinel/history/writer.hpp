// HistoryWriter: takes history writes off the watch path. push() never blocks (a bounded queue; when it is
// full the record is dropped, counted and said once); a writer thread writes batches to the store. When the
// store fails (locked, read-only, server down) the writer says so once, keeps what it accepted and retries with
// a growing delay; when the store is back it catches up and says so. Nothing accepted is lost while the
// process runs; close() waits a bounded time for the queue to drain and says how much could not be written.
#ifndef EXECUTION_SENTINEL_HISTORY_WRITER_HPP
#define EXECUTION_SENTINEL_HISTORY_WRITER_HPP

#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/history/store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace execution_sentinel::history {

struct HistoryWriterOptions {
    std::size_t capacity = 100000; ///< records queued at most; beyond, push() drops and counts
    std::size_t batch = 512;       ///< records per transaction
    std::chrono::milliseconds retry_initial{100};
    std::chrono::milliseconds retry_max{5000};
    /// One line when the writer degrades, recovers, or drops; never called with a lock held. Default: none.
    std::function<void(std::string_view)> on_status;
};

struct HistoryWriterStats {
    std::size_t accepted = 0; ///< records push() took
    std::size_t written = 0;  ///< records the store has
    std::size_t dropped = 0;  ///< records refused because the queue was full
    std::size_t failures = 0; ///< failed store writes (each retried)
    std::size_t queued = 0;   ///< records waiting
    bool degraded = false;    ///< the last write failed
};

class HistoryWriter {
public:
    explicit HistoryWriter(std::shared_ptr<RunHistoryStore> store, HistoryWriterOptions options = {})
        : store_(std::move(store)), options_(std::move(options)) {
        options_.capacity = std::max<std::size_t>(options_.capacity, 1);
        options_.batch = std::max<std::size_t>(options_.batch, 1);
        thread_ = std::thread([this] { run(); });
    }
    HistoryWriter(const HistoryWriter&) = delete;
    HistoryWriter& operator=(const HistoryWriter&) = delete;
    ~HistoryWriter() { close(std::chrono::seconds(5)); }

    /// Queues a record; never blocks. False when the queue is full or the writer is closed (counted in
    /// `dropped`; the first drop of a series is announced through on_status).
    bool push(HistoryRecord record) {
        std::string note;
        {
            std::lock_guard lock(mutex_);
            if (closed_ || queue_.size() >= options_.capacity) {
                ++stats_.dropped;
                if (!dropping_) {
                    dropping_ = true;
                    note = closed_ ? "history writer is closed: a record was dropped"
                                   : "history queue is full (" + std::to_string(options_.capacity) +
                                         " records): dropping records until it drains";
                }
            } else {
                dropping_ = false;
                queue_.push_back(std::move(record));
                ++stats_.accepted;
                wake_.notify_one();
                return true;
            }
        }
        say(note);
        return false;
    }

    bool push_report(const std::string& run_id, Report report) {
        report.evidence_request.reset();
        return push(ReportRecord{run_id, std::move(report)});
    }

    /// Receives every report of `subscription` and pushes it under `run_id` until the channel is closed or the
    /// receive is cancelled (a loss of the subscriber's own queue is announced through on_status).
    boost::asio::awaitable<void> record(ReportSubscription& subscription, std::string run_id) {
        while (true) {
            auto [ec, report] =
                co_await subscription.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec == channel_error::reports_lost) {
                say("history: some reports were lost before reaching the writer");
                continue;
            }
            if (ec) co_return;
            push_report(run_id, std::move(report));
        }
    }

    /// Waits until everything accepted so far is written, or `timeout` passes; true when written.
    bool flush(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        const auto target = stats_.accepted;
        return idle_.wait_for(lock, timeout, [&] { return stats_.written >= target || stopped_; }) &&
               stats_.written >= target;
    }

    /// Stops accepting, waits up to `timeout` for the queue to be written, stops the thread. Returns the number
    /// of records that could not be written (also announced). Idempotent.
    std::size_t close(std::chrono::milliseconds timeout) {
        {
            std::lock_guard lock(mutex_);
            if (!thread_.joinable()) return queue_.size();
            closed_ = true;
            close_deadline_ = std::chrono::steady_clock::now() + timeout;
            wake_.notify_all();
        }
        thread_.join();
        std::size_t left;
        {
            std::lock_guard lock(mutex_);
            left = queue_.size();
        }
        if (left) say("history store unavailable at exit: " + std::to_string(left) + " records were not written");
        return left;
    }

    HistoryWriterStats stats() const {
        std::lock_guard lock(mutex_);
        auto s = stats_;
        s.queued = queue_.size();
        return s;
    }

private:
    void say(const std::string& line) const {
        if (!line.empty() && options_.on_status) options_.on_status(line);
    }

    void run() {
        auto delay = options_.retry_initial;
        std::unique_lock lock(mutex_);
        while (true) {
            wake_.wait(lock, [&] { return closed_ || !queue_.empty(); });
            if (queue_.empty()) break; // closed and drained
            if (closed_ && std::chrono::steady_clock::now() >= close_deadline_) break;
            const auto n = std::min(queue_.size(), options_.batch);
            std::vector<HistoryRecord> batch(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
            lock.unlock();
            std::string error;
            bool invalid = false;
            try {
                store_->write(batch);
            } catch (const StoreError& e) {
                error = e.what();
            } catch (const std::invalid_argument& e) {
                error = e.what();
                invalid = true;
            } catch (const std::exception& e) {
                error = e.what();
            }
            if (invalid && n > 1) {
                // One bad record must not hold the others back: write them one by one.
                std::size_t bad = 0;
                for (auto& r : batch) {
                    try {
                        store_->write_one(r);
                    } catch (const std::invalid_argument&) {
                        ++bad;
                    } catch (const std::exception& e) {
                        error = e.what();
                        invalid = false;
                        break;
                    }
                }
                if (invalid) error.clear();
                if (bad) say("history: " + std::to_string(bad) + " invalid records were not written");
            } else if (invalid) {
                say("history: an invalid record was not written (" + error + ")");
                error.clear();
            }
            lock.lock();
            if (error.empty()) {
                queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
                stats_.written += n;
                delay = options_.retry_initial;
                if (stats_.degraded) {
                    stats_.degraded = false;
                    const auto queued = queue_.size();
                    lock.unlock();
                    say("history store is available again; writing the " + std::to_string(queued + n) +
                        " records kept meanwhile");
                    lock.lock();
                }
                idle_.notify_all();
                continue;
            }
            ++stats_.failures;
            if (!stats_.degraded) {
                stats_.degraded = true;
                lock.unlock();
                say("history store unavailable, keeping records in memory and retrying: " + error);
                lock.lock();
            }
            // Retry later (sooner when closing, until the close deadline).
            const auto until = std::chrono::steady_clock::now() + delay;
            const bool was_closed = closed_;
            wake_.wait_until(lock, closed_ ? std::min(until, close_deadline_) : until,
                             [&] { return closed_ != was_closed; });
            delay = std::min(delay * 2, options_.retry_max);
        }
        stopped_ = true;
        idle_.notify_all();
    }

    std::shared_ptr<RunHistoryStore> store_;
    HistoryWriterOptions options_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable idle_;
    std::deque<HistoryRecord> queue_;
    HistoryWriterStats stats_;
    bool closed_ = false;
    bool stopped_ = false;
    bool dropping_ = false;
    std::chrono::steady_clock::time_point close_deadline_{};
    std::thread thread_;
};

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_WRITER_HPP
