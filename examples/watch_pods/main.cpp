// Watches the pods of a namespace and prints one line per change, until Ctrl-C.
//
//   watch_pods [--kubeconfig PATH] [--context NAME] [-n NAMESPACE] [-l LABEL_SELECTOR]
//
// The kubeconfig is found the way kubectl finds it (--kubeconfig, else KUBECONFIG, else ~/.kube/config, else
// the in-cluster service account). The namespace defaults to the context's namespace, then "default".
// Transient failures (dropped connections, 429/5xx, a silent stream, 410 Expired) are handled by the Watcher;
// fatal ones (bad credentials, RBAC, TLS verification) end the program with the server's message.
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/watcher.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <exception>
#include <iostream>
#include <string>
#include <string_view>

namespace es = execution_sentinel;
namespace kube = es::kube;
namespace asio = boost::asio;

namespace {

std::string_view phase_name(kube::PodPhase p) {
    switch (p) {
    case kube::PodPhase::pending: return "Pending";
    case kube::PodPhase::running: return "Running";
    case kube::PodPhase::succeeded: return "Succeeded";
    case kube::PodPhase::failed: return "Failed";
    default: return "Unknown";
    }
}

std::string describe(const kube::Pod& pod) {
    std::string out = pod.meta.name + " " + std::string(phase_name(pod.phase));
    for (const auto& c : pod.containers) {
        out += " [" + c.name;
        switch (c.state.kind) {
        case kube::ContainerState::Kind::waiting: out += " waiting " + c.state.reason; break;
        case kube::ContainerState::Kind::running: out += " running"; break;
        case kube::ContainerState::Kind::terminated:
            out += " terminated " + c.state.reason + " exit " + std::to_string(c.state.exit_code);
            break;
        default: break;
        }
        if (c.restart_count > 0) out += " restarts " + std::to_string(c.restart_count);
        out += "]";
    }
    return out;
}

asio::awaitable<void> watch_pods(kube::Client client, std::string ns, kube::WatchOptions options) {
    kube::Watcher<kube::Pod> watcher(client, ns, std::move(options));
    for (;;) {
        auto ev = co_await watcher.next();
        switch (ev.type) {
        case kube::WatchEventType::added: std::cout << "ADDED     " << describe(ev.object) << "\n"; break;
        case kube::WatchEventType::modified: std::cout << "MODIFIED  " << describe(ev.object) << "\n"; break;
        case kube::WatchEventType::deleted:
            std::cout << "DELETED   " << describe(ev.object) << (ev.final_state_unknown ? " (while disconnected)" : "")
                      << "\n";
            break;
        case kube::WatchEventType::synced:
            std::cout << "-- in sync: " << watcher.store().size() << " pods in " << ns << "\n";
            break;
        }
        std::cout.flush();
    }
}

} // namespace

int main(int argc, char** argv) {
    kube::KubeconfigOptions config_options;
    std::string ns;
    kube::WatchOptions watch_options;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "missing value after " << arg << "\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--kubeconfig") config_options.path = value();
        else if (arg == "--context") config_options.context = value();
        else if (arg == "-n" || arg == "--namespace") ns = value();
        else if (arg == "-l" || arg == "--selector") watch_options.label_selector = value();
        else {
            std::cerr << "usage: watch_pods [--kubeconfig PATH] [--context NAME] [-n NAMESPACE] [-l SELECTOR]\n";
            return 2;
        }
    }

    try {
        kube::ClusterConfig config = kube::load_default(config_options);
        if (ns.empty()) ns = config.namespace_.empty() ? "default" : config.namespace_;
        std::cerr << "watching pods in " << ns << " on " << config.server << " (" << config.source << ")\n";

        asio::io_context ioc;
        kube::Client client(ioc.get_executor(), std::move(config));

        asio::cancellation_signal stop;
        asio::signal_set signals(ioc, SIGINT, SIGTERM);
        signals.async_wait([&](boost::system::error_code ec, int) {
            if (!ec) stop.emit(asio::cancellation_type::terminal);
        });

        int exit_code = 0;
        asio::co_spawn(ioc, watch_pods(client, ns, watch_options),
                       asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e) {
                           signals.cancel();
                           if (!e) return;
                           try {
                               std::rethrow_exception(e);
                           } catch (const kube::Error& error) {
                               std::cerr << "error: " << error.what() << "\n";
                               exit_code = 1;
                           } catch (const boost::system::system_error& cancelled) {
                               // Ctrl-C
                           } catch (const std::exception& other) {
                               std::cerr << "error: " << other.what() << "\n";
                               exit_code = 1;
                           }
                       }));
        ioc.run();
        return exit_code;
    } catch (const kube::Error& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
