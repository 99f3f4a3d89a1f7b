// Container log bytes from the kubelet (`follow=true&timestamps=true`), as LogFollower and tail() read them: cut
// into lines across two reads (at a position taken from the input) with a line limit taken from the input, each
// line split into its timestamp and text, then a reopened stream that repeats the lines from the last second,
// as the kubelet does for `sinceTime`, passed through the LogDeduplicator.
#include <execution_sentinel/kube/logs.hpp>

#include "fuzz_target.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace kube = execution_sentinel::kube;
    if (data.size() < 2) return;
    // A limit of 0 is outside the domain (LogRequest::max_line_bytes is at least 1).
    const std::size_t max_line = 1 + static_cast<unsigned char>(data[0]) % 64;
    const std::size_t reopen_at = static_cast<unsigned char>(data[1]);
    data.remove_prefix(2);
    const std::size_t split = data.empty() ? 0 : reopen_at % (data.size() + 1);
    try {
        std::vector<std::string> raw;
        std::string partial;
        auto on_line = [&](std::string_view line) { raw.emplace_back(line); };
        kube::split_lines(partial, data.substr(0, split), max_line, on_line);
        kube::split_lines(partial, data.substr(split), max_line, on_line);
        expect(partial.size() <= max_line, "the partial line never exceeds the limit");
        std::size_t delivered = partial.size();
        for (auto& line : raw) {
            expect(line.size() <= max_line, "a delivered line is at most max_line bytes");
            expect(line.find('\n') == std::string::npos, "a delivered line holds no newline");
            delivered += line.size();
        }
        expect(delivered + static_cast<std::size_t>(std::count(data.begin(), data.end(), '\n')) == data.size(),
               "every byte is delivered, kept as the partial line, or is a line end");
        if (!partial.empty()) raw.push_back(partial); // the end of the stream delivers the partial line

        std::vector<kube::LogLine> lines;
        kube::Timestamp last{};
        bool ordered = true;
        for (auto& r : raw) {
            auto line = kube::split_log_line(r, last);
            std::string_view body = r;
            if (!body.empty() && body.back() == '\r') body.remove_suffix(1);
            expect(body.ends_with(line.text), "the text of a log line is the end of the line");
            if (line.time < last) ordered = false;
            last = line.time;
            lines.push_back(std::move(line));
        }

        // First stream: every line is new. Then a reopen from the last second: the repeated lines are dropped
        // and only the lines after them are delivered (when the kubelet's times never go back).
        kube::LogDeduplicator dedup;
        const std::size_t first = std::min(lines.size(), reopen_at % (lines.size() + 1));
        for (std::size_t i = 0; i < first; ++i) expect(dedup.accept(lines[i]), "a first stream delivers every line");
        dedup.begin_replay();
        std::vector<kube::LogLine> accepted;
        if (auto since = dedup.last_time()) {
            auto second = std::chrono::floor<std::chrono::seconds>(*since);
            for (std::size_t i = 0; i < first; ++i)
                if (lines[i].time >= second && dedup.accept(lines[i])) accepted.push_back(lines[i]);
        }
        for (std::size_t i = first; i < lines.size(); ++i)
            if (dedup.accept(lines[i])) accepted.push_back(lines[i]);
        if (ordered)
            expect(std::equal(accepted.begin(), accepted.end(), lines.begin() + static_cast<std::ptrdiff_t>(first),
                              lines.end()),
                   "after a reopen, exactly the lines not delivered before are delivered");
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
