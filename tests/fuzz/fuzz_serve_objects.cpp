// What `serve` reads back from the cluster to share the runs between replicas (objects anyone with RBAC may
// edit): a Lease (serve/leases.hpp) and a registered run's ConfigMap (serve/registration.hpp). A Lease never
// throws and names a run only when its annotations agree with its place; a ConfigMap gives the context of the
// run asked for, or a ContextError.
#include <execution_sentinel/serve/leases.hpp>
#include <execution_sentinel/serve/registration.hpp>

#include <boost/json/parse.hpp>

#include "fuzz_target.hpp"

namespace sv = execution_sentinel::serve;

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    boost::system::error_code ec;
    auto value = boost::json::parse(data, ec);
    if (ec) return;
    try {
        if (value.is_object()) {
            const auto lease = sv::lease_from_json(value.as_object());
            if (auto run = sv::lease_run(lease)) {
                expect(run->first == lease.namespace_, "a lease's run is in the lease's namespace");
                expect(lease.name == sv::lease_name(run->first + "/" + run->second), "a lease's name is its run's");
            }
            (void)sv::lease_to_json(lease);
        }
        auto context = sv::context_from_registration_configmap(value, "wf-fuzz", "hyperflow-engine-0");
        expect(context.namespace_ == "wf-fuzz" && context.engine_pod_name == "hyperflow-engine-0",
               "a registration gives the context of the run asked for");
        boost::json::value again = sv::registration_configmap(context);
        expect(sv::context_from_registration_configmap(again, "wf-fuzz", "hyperflow-engine-0") == context,
               "a registration's ConfigMap reads back as its context");
    } catch (const execution_sentinel::ContextError&) {
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
