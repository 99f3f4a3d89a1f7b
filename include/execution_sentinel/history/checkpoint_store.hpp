// HistoryCheckpointStore: run checkpoints (checkpoint.hpp) kept in the run history store — a SQLite file by
// default, PostgreSQL when shared — one row per run key, replaced on save. Saves go through the HistoryWriter's
// queue, so they never block the watch; a store outage delays them and the writer catches up (history.md).
//
//   auto store = history::open_store(history::parse_store_location("sqlite:sentinel.db"));
//   history::HistoryWriter writer(store);
//   options.checkpoints = std::make_shared<history::HistoryCheckpointStore>(store, writer);
#ifndef EXECUTION_SENTINEL_HISTORY_CHECKPOINT_STORE_HPP
#define EXECUTION_SENTINEL_HISTORY_CHECKPOINT_STORE_HPP

#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/history/store.hpp>
#include <execution_sentinel/history/writer.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <vector>
#include <string>
#include <utility>

namespace execution_sentinel::history {

class HistoryCheckpointStore {
public:
    /// `writer` writes to `store` and must outlive this object.
    HistoryCheckpointStore(std::shared_ptr<RunHistoryStore> store, HistoryWriter& writer)
        : store_(std::move(store)), writer_(&writer) {}

    /// Reads the checkpoint (a database read: done once, when a watch starts). Throws StoreError.
    std::optional<boost::json::object> load(const std::string& key) { return store_->load_checkpoint(key); }
    boost::asio::awaitable<std::optional<boost::json::object>> async_load(std::string key) { co_return load(key); }

    /// Queued for the writer; when its queue is full the save is dropped (the next one replaces it anyway).
    void save(std::string key, boost::json::object body) {
        (void)writer_->push(Checkpoint{std::move(key), std::move(body)});
    }

private:
    std::shared_ptr<RunHistoryStore> store_;
    HistoryWriter* writer_;
};

static_assert(CheckpointStore<HistoryCheckpointStore>);

/// Folds into a checkpoint the reports the store recorded for its run: a report recorded after the checkpoint
/// was saved (the process was killed in between) counts as made — it is in the ledger and the counts, and the
/// sequence goes on after it — so a resumed watch does not make it again. Returns how many were added.
inline std::size_t merge_recorded_reports(boost::json::object& cp, const std::vector<Report>& recorded) {
    std::set<std::string> known;
    auto& ledger_value = cp["ledger"];
    if (!ledger_value.is_array()) ledger_value = boost::json::array{};
    auto& ledger = ledger_value.as_array();
    for (auto& k : ledger)
        if (k.is_string()) known.insert(std::string(k.as_string()));
    auto& counts_value = cp["counts"];
    if (!counts_value.is_object()) counts_value = boost::json::object{};
    auto& counts = counts_value.as_object();
    std::uint64_t sequence = 0;
    if (auto* s = cp.if_contains("sequence"); s && s->is_int64() && s->as_int64() > 0)
        sequence = static_cast<std::uint64_t>(s->as_int64());
    else if (s && s->is_uint64())
        sequence = s->as_uint64();
    std::size_t added = 0;
    for (auto& r : recorded) {
        if (r.sequence > sequence) sequence = r.sequence;
        if (r.key.empty() || !known.insert(r.key).second) continue;
        ledger.push_back(boost::json::string(r.key));
        auto& n = counts[to_string(r.type)];
        n = (n.is_int64() ? n.as_int64() : 0) + 1;
        ++added;
    }
    cp["sequence"] = sequence;
    return added;
}

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_CHECKPOINT_STORE_HPP
