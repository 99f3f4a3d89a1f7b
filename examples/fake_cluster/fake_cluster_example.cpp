// Starts a simulated Kubernetes API server, writes a kubeconfig for it, and plays a HyperFlow scenario on it while
// printing what a client would see. Point kubectl at it while it runs:
//
//   fake_cluster_example [SCENARIO.json]
//   KUBECONFIG=<printed path> kubectl get pods -l app=hyperflow --watch
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <chrono>
#include <exception>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

namespace es = execution_sentinel::testing;

int main(int argc, char** argv) {
    try {
        const std::string file = argc > 1 ? argv[1] : EXECUTION_SENTINEL_EXAMPLE_SCENARIO;
        es::Scenario scenario = es::Scenario::from_file(file);

        es::FakeClusterOptions options;
        options.default_namespace = scenario.namespace_name;
        es::FakeCluster cluster(options);
        const auto kubeconfig = std::filesystem::temp_directory_path() / "execution-sentinel-example.kubeconfig";
        cluster.write_kubeconfig(kubeconfig);

        std::cout << "A simulated cluster is serving at " << cluster.server_url() << "\n"
                  << "Point kubectl at it:\n"
                  << "  export KUBECONFIG=" << kubeconfig.string() << "\n"
                  << "  kubectl get pods -l app=hyperflow --watch\n"
                  << "  kubectl logs " << scenario.engine_pod_name() << " -c hyperflow -f\n"
                  << "  kubectl exec " << scenario.engine_pod_name()
                  << " -c hyperflow -- cat /work_dir/.workflow-exit-code\n"
                  << "The monitor's context for this run:\n  " << scenario.context_json() << "\n\n";

        es::ScenarioRunner runner(cluster, scenario);
        runner.start();
        // Print the phase counts of the task pods once a second while the scenario plays.
        while (!runner.wait_for(std::chrono::seconds(1))) {
            std::map<std::string, int> phases;
            for (auto& pod : cluster.list("pods", scenario.namespace_name))
                if (es::parse_job_name(std::string(pod.at("metadata").at("labels").as_object().contains("job-name")
                                                       ? pod.at("metadata").at("labels").at("job-name").as_string()
                                                       : "")))
                    ++phases[es::pod_phase(pod)];
            std::cout << "task pods:";
            for (auto& [phase, n] : phases) std::cout << " " << phase << "=" << n;
            std::cout << std::endl;
        }
        runner.wait();
        for (auto& e : runner.errors()) std::cerr << "scenario error: " << e << "\n";
        std::cout << "scenario \"" << scenario.name << "\" finished; " << cluster.list("jobs", scenario.namespace_name).size()
                  << " Jobs in namespace " << scenario.namespace_name << "\n";
        cluster.stop();
        std::filesystem::remove(kubeconfig);
        return runner.errors().empty() ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "fake_cluster_example: " << e.what() << "\n";
        return 1;
    }
}
