// ConfigMapCheckpointStore: run checkpoints (checkpoint.hpp) in a ConfigMap of the run's namespace, for a sentinel
// that runs in the cluster without a disk of its own. Needs get, create and update on configmaps in that
// namespace (docs/restarts.md has the Role).
//
//   kube::ConfigMapCheckpointStore::Options o;
//   o.namespace_ = context.namespace_;
//   o.holder = pod_name; // who writes: a second writer of the same run is refused
//   options.checkpoints = std::make_shared<kube::ConfigMapCheckpointStore>(ex, cluster, o);
//
// - One ConfigMap per run key, named "execution-sentinel-ckpt-<16 hex digits of the key's hash>", the checkpoint
//   in data["checkpoint.json"], the key in data["key"], the writer in the annotation execution-sentinel/holder.
// - Bounded: a ConfigMap holds at most 1 MiB; checkpoints are pruned (prune_checkpoint) under Options::max_bytes.
// - Guarded: every update carries the resourceVersion this store last read or wrote. A 409 Conflict means someone
//   else wrote: when the holder written there is another one, this store stops writing (said once through
//   Options::log) — two writers cannot both win; when it is its own (a retried write that did land), it goes on.
// - save() never blocks: the newest body waits in one slot; one coroutine writes, newest last.
#ifndef EXECUTION_SENTINEL_KUBE_CONFIGMAP_CHECKPOINT_STORE_HPP
#define EXECUTION_SENTINEL_KUBE_CONFIGMAP_CHECKPOINT_STORE_HPP

#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace execution_sentinel::kube {

class ConfigMapCheckpointStore {
public:
    struct Options {
        std::string namespace_;                       ///< the run's namespace (required)
        std::string holder = "execution-sentinel";    ///< this writer's identity (its pod name, for instance)
        std::size_t max_bytes = 1000 * 1024;          ///< serialized checkpoint limit (the ConfigMap's is 1 MiB)
        std::function<void(std::string_view)> log{};  ///< problems, each said once
    };

    /// What happened so far (for tests and metrics).
    struct Stats {
        std::uint64_t writes = 0;    ///< accepted creates and updates
        std::uint64_t conflicts = 0; ///< 409 answers
        std::uint64_t failures = 0;  ///< other failed writes (retried with the next save)
        std::uint64_t pruned = 0;    ///< checkpoints that had to be pruned to fit
        bool lost = false;           ///< another holder writes this run: this store stopped writing
    };

    ConfigMapCheckpointStore(boost::asio::any_io_executor ex, ClusterConfig cluster, Options options)
        : state_(std::make_shared<State>(ex, std::move(cluster), std::move(options))) {
        if (state_->options.namespace_.empty()) throw std::invalid_argument("ConfigMapCheckpointStore: namespace_ is required");
    }

    /// The ConfigMap name for a run key.
    static std::string configmap_name(std::string_view key) {
        return "execution-sentinel-ckpt-" + execution_sentinel::detail::es_fnv1a_hex(key);
    }

    /// Reads the run's checkpoint; nullopt when there is none. Throws kube::Error when the API fails, and
    /// CheckpointError when the ConfigMap holds something that is not a checkpoint.
    boost::asio::awaitable<std::optional<boost::json::object>> async_load(std::string key) {
        auto st = state_;
        auto cm = co_await get(st, key);
        if (!cm) co_return std::nullopt;
        co_return read_body(*cm);
    }

    /// Hands over a newer checkpoint; written in the background. Never blocks.
    void save(std::string key, boost::json::object body) {
        auto st = state_;
        {
            std::lock_guard lock(st->mutex);
            if (st->stats.lost) return;
            st->pending = Pending{std::move(key), std::move(body)};
            if (st->writing) return;
            st->writing = true;
        }
        // posted, not dispatched: the caller (a Sentinel on the same executor) goes on at once
        boost::asio::post(st->strand, [st] { boost::asio::co_spawn(st->strand, write_loop(st), boost::asio::detached); });
    }

    Stats stats() const {
        std::lock_guard lock(state_->mutex);
        return state_->stats;
    }
    /// Whether a write is still queued or running.
    bool busy() const {
        std::lock_guard lock(state_->mutex);
        return state_->writing;
    }

private:
    struct Pending {
        std::string key;
        boost::json::object body;
    };
    struct State {
        State(boost::asio::any_io_executor ex, ClusterConfig cluster, Options o)
            : strand(boost::asio::make_strand(ex)), client(strand, std::move(cluster)), options(std::move(o)) {}
        boost::asio::strand<boost::asio::any_io_executor> strand;
        Client client;
        Options options;
        std::mutex mutex;
        std::optional<Pending> pending;
        bool writing = false;
        Stats stats;
        std::string resource_version; ///< of the ConfigMap as last read or written ("" = not known to exist)
        bool said_too_large = false;
        bool said_failure = false;
    };

    static std::string path(const State& st, std::string_view name = {}) {
        std::string p = "/api/v1/namespaces/" + st.options.namespace_ + "/configmaps";
        if (!name.empty()) p += "/" + std::string(name);
        return p;
    }

    static void say(State& st, const std::string& line) {
        if (st.options.log) st.options.log(line);
    }

    static boost::asio::awaitable<std::optional<boost::json::object>> get(std::shared_ptr<State> st, std::string key) {
        try {
            auto v = co_await st->client.request_json(boost::beast::http::verb::get, path(*st, configmap_name(key)));
            if (!v.is_object()) throw CheckpointError("checkpoint ConfigMap: the answer is not an object");
            auto& o = v.as_object();
            if (auto* meta = o.if_contains("metadata"); meta && meta->is_object())
                if (auto* rv = meta->as_object().if_contains("resourceVersion"); rv && rv->is_string()) {
                    std::lock_guard lock(st->mutex);
                    st->resource_version = std::string(rv->as_string());
                }
            co_return std::move(o);
        } catch (const Error& e) {
            if (e.diagnostics().http_status == 404) {
                std::lock_guard lock(st->mutex);
                st->resource_version.clear();
                co_return std::nullopt;
            }
            throw;
        }
    }

    static std::string holder_of(const boost::json::object& cm) {
        if (auto* meta = cm.if_contains("metadata"); meta && meta->is_object())
            if (auto* ann = meta->as_object().if_contains("annotations"); ann && ann->is_object())
                if (auto* h = ann->as_object().if_contains("execution-sentinel/holder"); h && h->is_string())
                    return std::string(h->as_string());
        return {};
    }

    static boost::json::object read_body(const boost::json::object& cm) {
        const auto* data = cm.if_contains("data");
        if (!data || !data->is_object()) throw CheckpointError("checkpoint ConfigMap: no data");
        const auto* text = data->as_object().if_contains("checkpoint.json");
        if (!text || !text->is_string()) throw CheckpointError("checkpoint ConfigMap: no data.checkpoint.json");
        boost::system::error_code ec;
        auto v = boost::json::parse(std::string_view(text->as_string()), ec);
        if (ec || !v.is_object())
            throw CheckpointError("checkpoint ConfigMap: data.checkpoint.json is not a JSON object");
        return std::move(v.as_object());
    }

    static boost::json::object manifest(const State& st, const std::string& key, const std::string& text,
                                        const std::string& rv) {
        boost::json::object meta{{"name", configmap_name(key)},
                                 {"namespace", st.options.namespace_},
                                 {"labels", {{"app.kubernetes.io/managed-by", "execution-sentinel"},
                                             {"execution-sentinel/checkpoint", "true"}}},
                                 {"annotations", {{"execution-sentinel/holder", st.options.holder}}}};
        if (!rv.empty()) meta["resourceVersion"] = rv;
        return {{"apiVersion", "v1"},
                {"kind", "ConfigMap"},
                {"metadata", std::move(meta)},
                {"data", {{"checkpoint.json", text}, {"key", key}}}};
    }

    static boost::asio::awaitable<void> write_loop(std::shared_ptr<State> st) {
        for (;;) {
            Pending p;
            std::string rv;
            {
                std::lock_guard lock(st->mutex);
                if (!st->pending || st->stats.lost) {
                    st->writing = false;
                    co_return;
                }
                p = std::move(*st->pending);
                st->pending.reset();
                rv = st->resource_version;
            }
            auto pruned = prune_checkpoint(p.body, st->options.max_bytes);
            if (!pruned.fits) {
                if (!st->said_too_large) say(*st, "checkpoint of " + p.key + " does not fit a ConfigMap (" +
                                                      std::to_string(pruned.bytes) + " bytes even pruned); not saved");
                st->said_too_large = true;
                continue;
            }
            if (!pruned.pruned.empty()) {
                std::lock_guard lock(st->mutex);
                ++st->stats.pruned;
            }
            co_await write_one(st, p, boost::json::serialize(p.body), rv);
        }
    }

    /// One create or guarded update; a conflict is resolved by reading who wrote.
    static boost::asio::awaitable<void> write_one(std::shared_ptr<State> st, const Pending& p, const std::string& text,
                                                  std::string rv) {
        using boost::beast::http::verb;
        for (int round = 0; round < 3; ++round) {
            try {
                HttpResponse answer;
                RequestOptions ro;
                if (rv.empty()) {
                    ro.idempotent = false;
                    answer = co_await st->client.request(verb::post, path(*st),
                                                         boost::json::serialize(manifest(*st, p.key, text, {})), ro);
                } else {
                    answer = co_await st->client.request(verb::put, path(*st, configmap_name(p.key)),
                                                         boost::json::serialize(manifest(*st, p.key, text, rv)), ro);
                }
                boost::system::error_code ec;
                auto v = boost::json::parse(answer.body, ec);
                std::lock_guard lock(st->mutex);
                ++st->stats.writes;
                st->resource_version.clear();
                if (!ec && v.is_object())
                    if (auto* meta = v.as_object().if_contains("metadata"); meta && meta->is_object())
                        if (auto* r = meta->as_object().if_contains("resourceVersion"); r && r->is_string())
                            st->resource_version = std::string(r->as_string());
                co_return;
            } catch (const Error& e) {
                const int status = e.diagnostics().http_status;
                if (status != 409 && !(status == 404 && !rv.empty())) {
                    std::lock_guard lock(st->mutex);
                    ++st->stats.failures;
                    if (!st->said_failure) {
                        st->said_failure = true;
                        if (st->options.log) st->options.log("checkpoint not saved to its ConfigMap (retried with the next one): " +
                                                             std::string(e.what()));
                    }
                    co_return;
                }
                if (status == 409) {
                    std::lock_guard lock(st->mutex);
                    ++st->stats.conflicts;
                }
            }
            // 409 (someone wrote, or it exists already) or 404 on update (it was deleted): read who holds it
            std::optional<boost::json::object> current;
            try {
                current = co_await get(st, p.key);
            } catch (const std::exception&) {
                co_return;
            }
            if (!current) {
                rv.clear(); // gone: create it again
                continue;
            }
            auto holder = holder_of(*current);
            if (!holder.empty() && holder != st->options.holder) {
                std::lock_guard lock(st->mutex);
                st->stats.lost = true;
                st->pending.reset();
                if (st->options.log)
                    st->options.log("another sentinel (" + holder.substr(0, 253) + ") writes the checkpoint of " + p.key +
                                    "; this one stops writing it");
                co_return;
            }
            std::lock_guard lock(st->mutex);
            rv = st->resource_version;
        }
    }

    std::shared_ptr<State> state_;
};

static_assert(CheckpointStore<ConfigMapCheckpointStore>);

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_CONFIGMAP_CHECKPOINT_STORE_HPP
