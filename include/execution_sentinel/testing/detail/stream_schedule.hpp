// The timing decisions of one open watch or log stream, without I/O: when it ends at its timeout, when a
// BOOKMARK is due, and until when it sleeps while nothing is queued. serve_stream() (streaming.hpp) asks it
// after writing the queued chunks.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_STREAM_SCHEDULE_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_STREAM_SCHEDULE_HPP

#include <chrono>

namespace execution_sentinel::testing::detail {

/// The clock of one stream. A stalled watch sends nothing, not even its end at the timeout, until released.
class StreamSchedule {
public:
    using Clock = std::chrono::steady_clock;
    enum class Next {
        finish,   ///< the timeout passed: end the stream cleanly
        bookmark, ///< send a BOOKMARK now, then call bookmark_sent()
        wait,     ///< sleep until wake_at() or until woken
    };

    /// `bookmarks`: the watch asked for bookmarks (allowWatchBookmarks), one every `bookmark_interval` from `start`.
    StreamSchedule(Clock::time_point start, Clock::time_point deadline, bool bookmarks, Clock::duration bookmark_interval)
        : deadline_(deadline), next_bookmark_(start + bookmark_interval), interval_(bookmark_interval), bookmarks_(bookmarks) {}

    /// What to do at `now`, once the queued chunks are written.
    Next due(Clock::time_point now, bool stalled) const {
        if (stalled) return Next::wait;
        if (now >= deadline_) return Next::finish;
        if (bookmarks_ && now >= next_bookmark_) return Next::bookmark;
        return Next::wait;
    }

    /// A BOOKMARK was sent at `now`: the next one is due an interval later.
    void bookmark_sent(Clock::time_point now) { next_bookmark_ = now + interval_; }

    /// Until when to sleep at `now` when nothing is queued (a new chunk or a stall change wakes the stream earlier).
    Clock::time_point wake_at(Clock::time_point now, bool stalled) const {
        if (stalled) return now + std::chrono::hours(24);
        if (bookmarks_ && next_bookmark_ < deadline_) return next_bookmark_;
        return deadline_;
    }

private:
    Clock::time_point deadline_;
    Clock::time_point next_bookmark_;
    Clock::duration interval_;
    bool bookmarks_;
};

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_STREAM_SCHEDULE_HPP
