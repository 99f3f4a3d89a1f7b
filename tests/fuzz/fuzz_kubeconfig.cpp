// kubeconfig YAML (or JSON), loaded from memory and, for one input in eight, through the entry point the CLI
// uses: load_default() with the file as the explicit path (the file read, the YAML parse, the merge, the context
// selection), which must give the same outcome. Each is done for the current-context and for the context named
// by a first line "# NAME". The file lives alone in a private directory and the environment is empty, so nothing
// of the machine is read. Every failure is a kube::Error; every success names a server host and port, and a
// credential provider.
// (Exec plugins are only run when credentials are requested, which this target never does.)
#include <execution_sentinel/kube/config.hpp>

#include "fuzz_target.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace {
/// A private directory holding only the kubeconfig file, removed at exit.
struct KubeconfigFile {
    std::filesystem::path dir;
    std::filesystem::path path;
    KubeconfigFile() {
        std::string templ = (std::filesystem::temp_directory_path() / "execution-sentinel-fuzz-XXXXXX").string();
        if (::mkdtemp(templ.data()) == nullptr) execution_sentinel::fuzz::unexpected("mkdtemp failed");
        dir = templ;
        path = dir / "kubeconfig";
    }
    ~KubeconfigFile() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};
} // namespace

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace kube = execution_sentinel::kube;
    static KubeconfigFile file;
    // "# NAME" on the first line: also load context NAME, as --kube-context NAME does.
    std::string named_context;
    if (data.starts_with("# ")) named_context = std::string(data.substr(2, std::min(data.find('\n'), std::size_t{66}) - 2));
    // Writing the file is slow: the CLI's entry point runs on one input in eight (chosen by length, so the same
    // input always takes the same path) and must agree with the in-memory loader.
    const bool through_file = data.size() % 8 == 0;
    if (through_file) {
        std::ofstream out(file.path, std::ios::binary | std::ios::trunc);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
    }
    for (const std::string& context : {std::string(), named_context}) {
        kube::KubeconfigOptions options;
        options.context = context;
        options.environment.getenv = [](const std::string&) { return std::optional<std::string>{}; };
        options.environment.service_account_dir = (file.dir / "no-service-account").string();
        std::optional<kube::ClusterConfig> in_memory;
        std::error_code in_memory_error;
        try {
            // Relative paths resolve against the directory of the origin: the same as for the file.
            in_memory = kube::load_kubeconfig_from_string(data, file.path.string(), options);
            expect(!in_memory->host.empty() && !in_memory->port.empty(), "a loaded cluster has a host and a port");
            expect(in_memory->credentials != nullptr, "a loaded cluster has a credential provider");
        } catch (const kube::Error& e) {
            in_memory_error = e.code();
        } catch (const std::exception& e) {
            unexpected(e.what());
        }
        if (!through_file) continue;
        try {
            options.path = file.path.string();
            auto config = kube::load_default(options);
            expect(in_memory && config.server == in_memory->server && config.host == in_memory->host &&
                       config.port == in_memory->port && config.namespace_ == in_memory->namespace_,
                   "the file loads as the same text in memory does");
        } catch (const kube::Error& e) {
            expect(!in_memory && e.code() == in_memory_error, "the file fails as the same text in memory does");
        } catch (const std::exception& e) {
            unexpected(e.what());
        }
    }
}
