// The delivery ledger: what was sent to which sink, so that deduplication and cooldowns survive a restart of the
// sentinel. Two calls, `find` and `record`; implemented here in memory and as a JSON file (written to a temporary
// file and renamed over the old one, so a crash leaves either the old or the new ledger, never half of one). A
// history store implements the same two calls. The ledger holds keys, states, counts and redacted errors —
// never a URL path, a key, or a message body.
#ifndef EXECUTION_SENTINEL_ALERTS_LEDGER_HPP
#define EXECUTION_SENTINEL_ALERTS_LEDGER_HPP

#include <execution_sentinel/report.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace execution_sentinel::alerts {

/// One delivery (or a cooldown mark) of one alert key to one sink.
struct DeliveryRecord {
    std::string run_id;
    std::string sink;
    std::string key;
    std::string state;      ///< "sent", "failed" (attempts so far, will retry) or "dead" (gave up: dead letter)
    int attempts = 0;
    std::string last_error; ///< the last failure, with the receiver's URL redacted; empty when sent
    Timestamp time{};       ///< when the record was written (wall clock)
    friend bool operator==(const DeliveryRecord&, const DeliveryRecord&) = default;
};

/// Where delivery records live. `find` and `record` may be called from the dispatcher's executor only (one
/// caller at a time); implementations that are shared more widely guard themselves.
class DeliveryLedger {
public:
    virtual ~DeliveryLedger() = default;
    /// The latest record of `key` for `sink`, if any.
    virtual std::optional<DeliveryRecord> find(const std::string& sink, const std::string& key) = 0;
    /// Stores `r`, replacing the record of the same (sink, key). Throws std::runtime_error when it cannot.
    virtual void record(DeliveryRecord r) = 0;
};

/// A ledger in memory: deduplication for the life of the process (tests, embedding without a disk).
class MemoryDeliveryLedger : public DeliveryLedger {
public:
    std::optional<DeliveryRecord> find(const std::string& sink, const std::string& key) override {
        std::lock_guard lock(mutex_);
        auto it = records_.find({sink, key});
        if (it == records_.end()) return std::nullopt;
        return it->second;
    }
    void record(DeliveryRecord r) override {
        std::lock_guard lock(mutex_);
        auto k = std::make_pair(r.sink, r.key);
        records_[std::move(k)] = std::move(r);
    }
    /// Every record, ordered by (sink, key).
    std::vector<DeliveryRecord> records() const {
        std::lock_guard lock(mutex_);
        std::vector<DeliveryRecord> out;
        for (const auto& [k, v] : records_) out.push_back(v);
        return out;
    }

protected:
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, std::string>, DeliveryRecord> records_;
};

inline boost::json::object to_json(const DeliveryRecord& r) {
    return {{"run_id", r.run_id}, {"sink", r.sink},         {"key", r.key},
            {"state", r.state},   {"attempts", r.attempts}, {"last_error", r.last_error},
            {"time", format_timestamp(r.time)}};
}

/// A ledger kept in one JSON file ({"version":1,"records":[...]}), rewritten atomically (temporary file, fsync,
/// rename) after every record. Records older than `retention` are dropped when the file is written. The file is
/// read once, at construction: a missing file is an empty ledger; an unreadable or malformed one throws
/// std::runtime_error naming the file.
class JsonFileDeliveryLedger : public MemoryDeliveryLedger {
public:
    explicit JsonFileDeliveryLedger(std::filesystem::path path,
                                    std::chrono::hours retention = std::chrono::hours(24 * 14))
        : path_(std::move(path)), retention_(retention) {
        std::error_code ec;
        if (!std::filesystem::exists(path_, ec)) return;
        std::ifstream in(path_, std::ios::binary);
        if (!in) throw std::runtime_error(path_.string() + ": cannot read the delivery ledger");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        boost::system::error_code jec;
        auto v = boost::json::parse(text, jec);
        const boost::json::array* records = nullptr;
        if (!jec && v.is_object())
            if (auto* a = v.as_object().if_contains("records")) records = a->if_array();
        if (!records) throw std::runtime_error(path_.string() + ": not a delivery ledger (expected {\"records\": [...]})");
        for (const auto& item : *records) {
            const auto* o = item.if_object();
            if (!o) continue;
            auto str = [&](const char* k) -> std::string {
                if (auto* s = o->if_contains(k); s && s->is_string()) return std::string(s->as_string());
                return {};
            };
            DeliveryRecord r;
            r.run_id = str("run_id");
            r.sink = str("sink");
            r.key = str("key");
            r.state = str("state");
            r.last_error = str("last_error");
            if (auto* a = o->if_contains("attempts"); a && a->is_int64()) r.attempts = static_cast<int>(a->as_int64());
            if (auto t = parse_rfc3339(str("time"))) r.time = *t;
            if (r.sink.empty() || r.key.empty()) continue;
            records_[{r.sink, r.key}] = std::move(r);
        }
    }

    void record(DeliveryRecord r) override {
        std::lock_guard lock(mutex_);
        auto k = std::make_pair(r.sink, r.key);
        records_[std::move(k)] = std::move(r);
        write_locked();
    }

    const std::filesystem::path& path() const noexcept { return path_; }

private:
    void write_locked() {
        const auto horizon = Clock::now() - retention_;
        boost::json::array arr;
        for (auto it = records_.begin(); it != records_.end();) {
            if (it->second.time < horizon) {
                it = records_.erase(it);
                continue;
            }
            arr.push_back(to_json(it->second));
            ++it;
        }
        boost::json::object doc{{"version", 1}, {"records", std::move(arr)}};
        std::string text = boost::json::serialize(doc);
        text += '\n';
        auto tmp = path_;
        tmp += ".tmp";
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) throw std::runtime_error(path_.string() + ": cannot write the delivery ledger");
        std::size_t done = 0;
        while (done < text.size()) {
            auto n = ::write(fd, text.data() + done, text.size() - done);
            if (n <= 0) {
                ::close(fd);
                throw std::runtime_error(path_.string() + ": cannot write the delivery ledger (disk full?)");
            }
            done += static_cast<std::size_t>(n);
        }
        ::fsync(fd);
        ::close(fd);
        std::error_code ec;
        std::filesystem::rename(tmp, path_, ec);
        if (ec) throw std::runtime_error(path_.string() + ": cannot replace the delivery ledger: " + ec.message());
    }

    std::filesystem::path path_;
    std::chrono::hours retention_;
};

} // namespace execution_sentinel::alerts

#endif // EXECUTION_SENTINEL_ALERTS_LEDGER_HPP
