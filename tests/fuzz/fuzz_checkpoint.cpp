// Monitor checkpoints (read back from a file, a database row or a ConfigMap anyone with RBAC can edit): every
// failure is a CheckpointError naming the field; a checkpoint that was accepted leaves a monitor that works on,
// and whose own checkpoint is accepted again.
#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/monitor.hpp>

#include <boost/json/parse.hpp>

#include "fuzz_target.hpp"

namespace es = execution_sentinel;

namespace {
es::MonitoringContext fuzz_context() {
    es::MonitoringContext c;
    c.namespace_ = "wf-fuzz";
    c.engine_pod_name = "hyperflow-engine-0";
    for (int i = 0; i < 4; ++i) c.task_inventory.push_back({"individuals", "individuals", 0, 30.0, "", ""});
    c.task_inventory.push_back({"frequency", "frequency", 1, 15.0, "", ""});
    return c;
}
} // namespace

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    boost::system::error_code ec;
    auto value = boost::json::parse(data, ec);
    if (ec || !value.is_object()) return;
    static const auto context = fuzz_context();
    static const auto digest = es::context_digest(context);
    auto& cp = value.as_object();
    if (cp.contains("context_digest")) cp["context_digest"] = digest; // get past the identity check
    const auto now = es::Clock::now();
    try {
        es::DefaultMonitor m(context, es::SentinelSettings{});
        m.restore(cp, now);
        m.on_tick(now);
        m.take_reports();
        (void)m.summary(now);
        (void)m.view(now);
        es::DefaultMonitor again(context, es::SentinelSettings{});
        again.restore(m.checkpoint(now), now);
        expect(again.sink().last_sequence() == m.sink().last_sequence(), "a restored monitor's checkpoint restores");
        auto copy = cp;
        (void)es::prune_checkpoint(copy, data.size() / 2);
    } catch (const es::CheckpointError&) {
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
