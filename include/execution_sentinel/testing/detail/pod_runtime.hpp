// What runs "inside" simulated pods: per-pod virtual file systems, per-container logs, and the small set of
// commands exec can run against them. Pure: no I/O, no locking (the caller locks).
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_POD_RUNTIME_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_POD_RUNTIME_HPP

#include <execution_sentinel/testing/detail/object_store.hpp>
#include <execution_sentinel/testing/detail/selectors.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::testing::detail {

/// Files of one pod: absolute path -> content. Directories exist implicitly as prefixes of file paths.
using VirtualFileSystem = std::map<std::string, std::string>;

/// Removes duplicate and trailing slashes and "." components; relative paths are taken from "/".
inline std::string normalize_path(std::string_view path) {
    std::vector<std::string_view> parts;
    for (std::string_view part : split(path, '/')) {
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (!parts.empty()) parts.pop_back();
            continue;
        }
        parts.push_back(part);
    }
    std::string out;
    for (auto p : parts) { out += '/'; out += p; }
    return out.empty() ? "/" : out;
}

inline bool is_directory(const VirtualFileSystem& fs, const std::string& dir) {
    if (dir == "/") return true;
    const std::string prefix = dir + "/";
    auto it = fs.lower_bound(prefix);
    return it != fs.end() && it->first.compare(0, prefix.size(), prefix) == 0;
}

/// Result of one exec command.
struct ExecResult {
    std::string stdout_data;
    std::string stderr_data;
    int exit_code = 0;
};

/// Splits a simple shell command line on blanks, honouring single and double quotes. nullopt if unbalanced.
inline std::optional<std::vector<std::string>> split_shell_words(std::string_view line) {
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;
    char quote = 0;
    for (char c : line) {
        if (quote != 0) {
            if (c == quote) quote = 0;
            else cur += c;
        } else if (c == '\'' || c == '"') {
            quote = c;
            in_word = true;
        } else if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) { words.push_back(cur); cur.clear(); in_word = false; }
        } else {
            cur += c;
            in_word = true;
        }
    }
    if (quote != 0) return std::nullopt;
    if (in_word) words.push_back(cur);
    return words;
}

/// Runs `cat FILE...`, `test -f|-e|-d PATH`, `ls [DIR]`, `echo ...`, `true`, `false` and `sh -c 'one of those'`
/// against `fs`. Anything else exits 127 with "command not found" on stderr, like busybox sh.
inline ExecResult run_exec_command(const VirtualFileSystem& fs, const std::vector<std::string>& argv) {
    ExecResult r;
    if (argv.empty()) {
        r.exit_code = 127;
        r.stderr_data = "sh: : not found\n";
        return r;
    }
    std::string program = argv[0];
    if (const auto slash = program.rfind('/'); slash != std::string::npos) program = program.substr(slash + 1);
    if ((program == "sh" || program == "bash") && argv.size() >= 3 && argv[1] == "-c") {
        auto words = split_shell_words(argv[2]);
        if (!words) {
            r.exit_code = 2;
            r.stderr_data = "sh: syntax error: unterminated quoted string\n";
            return r;
        }
        if (words->empty()) return r;
        return run_exec_command(fs, *words);
    }
    if (program == "cat") {
        for (std::size_t i = 1; i < argv.size(); ++i) {
            const std::string path = normalize_path(argv[i]);
            auto it = fs.find(path);
            if (it != fs.end()) {
                r.stdout_data += it->second;
            } else {
                r.stderr_data += is_directory(fs, path) ? "cat: read error: Is a directory\n"
                                                        : "cat: can't open '" + argv[i] + "': No such file or directory\n";
                r.exit_code = 1;
            }
        }
        return r;
    }
    if (program == "test" || program == "[") {
        std::vector<std::string> args(argv.begin() + 1, argv.end());
        if (program == "[" && !args.empty() && args.back() == "]") args.pop_back();
        if (args.size() == 2 && (args[0] == "-f" || args[0] == "-e" || args[0] == "-d" || args[0] == "-s")) {
            const std::string path = normalize_path(args[1]);
            const bool file = fs.count(path) != 0;
            const bool dir = is_directory(fs, path);
            bool ok = false;
            if (args[0] == "-f") ok = file;
            else if (args[0] == "-d") ok = dir;
            else if (args[0] == "-e") ok = file || dir;
            else ok = file && !fs.at(path).empty();
            r.exit_code = ok ? 0 : 1;
            return r;
        }
        r.exit_code = 2;
        r.stderr_data = "sh: test: unsupported expression\n";
        return r;
    }
    if (program == "ls") {
        std::vector<std::string> targets(argv.begin() + 1, argv.end());
        if (targets.empty()) targets.push_back("/");
        for (const auto& target : targets) {
            const std::string path = normalize_path(target);
            if (fs.count(path) != 0) {
                r.stdout_data += target + "\n";
                continue;
            }
            if (!is_directory(fs, path)) {
                r.stderr_data += "ls: " + target + ": No such file or directory\n";
                r.exit_code = 1;
                continue;
            }
            const std::string prefix = path == "/" ? "/" : path + "/";
            std::set<std::string> names;
            for (auto it = fs.lower_bound(prefix); it != fs.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
                const std::string rest = it->first.substr(prefix.size());
                names.insert(rest.substr(0, rest.find('/')));
            }
            for (const auto& n : names) r.stdout_data += n + "\n";
        }
        return r;
    }
    if (program == "echo") {
        for (std::size_t i = 1; i < argv.size(); ++i) r.stdout_data += (i > 1 ? " " : "") + argv[i];
        r.stdout_data += "\n";
        return r;
    }
    if (program == "true") return r;
    if (program == "false") {
        r.exit_code = 1;
        return r;
    }
    r.exit_code = 127;
    r.stderr_data = "sh: " + argv[0] + ": command not found\n";
    return r;
}

/// One log line of a container.
struct LogLine {
    std::chrono::system_clock::time_point time;
    std::string text; ///< without the trailing newline
};

/// Logs of one container: the current instance and the previous one (after a restart).
struct ContainerLog {
    std::vector<LogLine> current;
    std::optional<std::vector<LogLine>> previous;
    std::uint64_t generation = 0; ///< incremented by every restart
};

/// Options of a log request (PodLogOptions subset).
struct LogQuery {
    bool timestamps = false;
    bool previous = false;
    std::optional<std::int64_t> tail_lines;
    std::optional<std::chrono::system_clock::time_point> since_time;
    std::optional<std::int64_t> limit_bytes;
};

inline std::string format_log_line(const LogLine& line, bool timestamps) {
    std::string out;
    if (timestamps) {
        out = format_rfc3339(line.time, true);
        out += ' ';
    }
    out += line.text;
    out += '\n';
    return out;
}

/// The text a log request answers for `lines` (already selected current/previous).
inline std::string render_log(const std::vector<LogLine>& lines, const LogQuery& q) {
    std::vector<const LogLine*> selected;
    for (const auto& l : lines)
        if (!q.since_time || l.time >= *q.since_time) selected.push_back(&l);
    std::size_t start = 0;
    if (q.tail_lines && *q.tail_lines >= 0 && static_cast<std::size_t>(*q.tail_lines) < selected.size())
        start = selected.size() - static_cast<std::size_t>(*q.tail_lines);
    std::string out;
    for (std::size_t i = start; i < selected.size(); ++i) out += format_log_line(*selected[i], q.timestamps);
    if (q.limit_bytes && *q.limit_bytes >= 0 && static_cast<std::size_t>(*q.limit_bytes) < out.size())
        out.resize(static_cast<std::size_t>(*q.limit_bytes));
    return out;
}

/// Names of the containers in a pod's spec (containers only, in order).
inline std::vector<std::string> pod_container_names(const boost::json::object& pod) {
    std::vector<std::string> names;
    const auto* containers = json_path(pod, "spec.containers");
    if (containers == nullptr || !containers->is_array()) return names;
    for (const auto& c : containers->as_array()) {
        if (!c.is_object()) continue;
        const auto* n = c.as_object().if_contains("name");
        if (n != nullptr && n->is_string()) names.emplace_back(n->as_string());
    }
    return names;
}

inline std::vector<std::string> pod_init_container_names(const boost::json::object& pod) {
    std::vector<std::string> names;
    const auto* containers = json_path(pod, "spec.initContainers");
    if (containers == nullptr || !containers->is_array()) return names;
    for (const auto& c : containers->as_array()) {
        if (!c.is_object()) continue;
        const auto* n = c.as_object().if_contains("name");
        if (n != nullptr && n->is_string()) names.emplace_back(n->as_string());
    }
    return names;
}

/// Picks the container a log/exec request addresses, as the apiserver does. Throws StatusError 400 when the
/// pod has several containers and none is named, or the named one is not in the pod. When the pod spec names
/// no containers at all, any requested name is accepted and an empty one is answered with `fallback`.
inline std::string resolve_container(const boost::json::object& pod, std::string_view requested,
                                     std::string_view fallback = {}) {
    const auto names = pod_container_names(pod);
    const auto init_names = pod_init_container_names(pod);
    const std::string pod_name = metadata_string(pod, "name");
    if (names.empty() && init_names.empty()) {
        if (!requested.empty()) return std::string(requested);
        if (!fallback.empty()) return std::string(fallback);
        throw StatusError(bad_request_status("a container name must be specified for pod " + pod_name));
    }
    if (requested.empty()) {
        if (names.size() == 1) return names.front();
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : " ") + n;
        std::string message = "a container name must be specified for pod " + pod_name + ", choose one of: [" + list + "]";
        if (!init_names.empty()) {
            std::string il;
            for (const auto& n : init_names) il += (il.empty() ? "" : " ") + n;
            message += " or one of the init containers: [" + il + "]";
        }
        throw StatusError(bad_request_status(message));
    }
    for (const auto& n : names)
        if (n == requested) return n;
    for (const auto& n : init_names)
        if (n == requested) return n;
    throw StatusError(bad_request_status("container " + std::string(requested) + " is not valid for pod " + pod_name));
}

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_POD_RUNTIME_HPP
