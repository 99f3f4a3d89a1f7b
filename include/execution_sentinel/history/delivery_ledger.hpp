// The alert dispatcher's delivery ledger (alerts/ledger.hpp) kept in the run history store, so that alert
// deduplication and cooldowns survive a restart and are shared by the sentinels of one PostgreSQL store.
#ifndef EXECUTION_SENTINEL_HISTORY_DELIVERY_LEDGER_HPP
#define EXECUTION_SENTINEL_HISTORY_DELIVERY_LEDGER_HPP

#include <execution_sentinel/alerts/ledger.hpp>
#include <execution_sentinel/history/store.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace execution_sentinel::history {

/// alerts::DeliveryLedger over a RunHistoryStore (its sentinel_alert_deliveries table). `record` throws StoreError
/// (a std::runtime_error) when the store cannot be written, as the ledger interface says.
class StoreDeliveryLedger final : public alerts::DeliveryLedger {
public:
    explicit StoreDeliveryLedger(std::shared_ptr<RunHistoryStore> store) : store_(std::move(store)) {}

    std::optional<alerts::DeliveryRecord> find(const std::string& sink, const std::string& key) override {
        auto d = store_->find_delivery(sink, key);
        if (!d) return std::nullopt;
        return alerts::DeliveryRecord{d->run_id, d->sink, d->key, d->state, d->attempts, d->last_error, d->time};
    }

    void record(alerts::DeliveryRecord r) override {
        store_->record_delivery(AlertDelivery{std::move(r.run_id), std::move(r.sink), std::move(r.key),
                                              std::move(r.state), r.attempts, std::move(r.last_error), r.time});
    }

private:
    std::shared_ptr<RunHistoryStore> store_;
};

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_DELIVERY_LEDGER_HPP
