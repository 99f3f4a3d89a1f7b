// Intervener: carries out the InterventionPlanner's decisions against the cluster (docs/interventions.md).
// It drains its own report subscription — the watch never waits for it — reads the target object back from the
// API, refuses anything that is not a task of the watched run, acts (or, in dry run, only says what it would do),
// and publishes an INTERVENTION report and an audit record for every decision that matched a policy.
#ifndef EXECUTION_SENTINEL_INTERVENTIONS_INTERVENER_HPP
#define EXECUTION_SENTINEL_INTERVENTIONS_INTERVENER_HPP

#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/interventions/policy.hpp>
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/detail/http_util.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/rfc3339.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel {

/// Where the Intervener's results go. Both optional; called on the Intervener's executor.
struct IntervenerOutputs {
    /// The INTERVENTION report (e.g. `[&](Report r) { sentinel.reports().publish(std::move(r)); }`).
    std::function<void(Report)> publish{};
    /// The audit record (e.g. a history store).
    std::function<void(const InterventionRecord&)> record{};
    /// Log lines (never with a secret: names of objects and the API's answer only).
    std::function<void(std::string_view)> log{};
};

class Intervener {
public:
    /// `client` must outlive run(). Throws ContextError for an invalid context.
    Intervener(kube::Client& client, MonitoringContext context, InterventionSettings settings, IntervenerOutputs out = {})
        : client_(client), context_(std::move(context)), planner_(std::move(settings)), out_(std::move(out)) {
        validate(context_);
    }

    /// Drains `subscription` until its channel closes; handles each report with handle().
    boost::asio::awaitable<void> run(ReportSubscription& subscription) {
        for (;;) {
            auto [ec, report] = co_await subscription.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) {
                if (ec == channel_error::reports_lost) {
                    say("interventions: some reports were lost before they could be considered");
                    continue;
                }
                co_return;
            }
            co_await handle(report, Clock::now());
        }
    }

    /// Decides on one report and carries the decision out. Never throws for cluster errors (they become a
    /// "failed" record); throws only on cancellation.
    boost::asio::awaitable<void> handle(const Report& report, Timestamp now) {
        auto plan = planner_.plan(report, now);
        using V = InterventionPlan::Verdict;
        if (plan.verdict == V::none || plan.verdict == V::duplicate) co_return;
        InterventionRecord rec;
        rec.time = now;
        rec.policy = plan.policy ? plan.policy->name : std::string();
        rec.action = plan.action;
        rec.dry_run = plan.dry_run;
        rec.task_name = report.task_name;
        rec.trigger = report;
        if (plan.verdict == V::limit_reached || plan.verdict == V::no_target) {
            if (!said_.insert(plan.key + "|" + std::string(plan.verdict == V::limit_reached ? "limit" : "target")).second)
                co_return;
            rec.outcome = plan.verdict == V::limit_reached ? "limit_reached" : "no_target";
            rec.error = plan.why;
            finish(rec);
            co_return;
        }
        std::string why;
        bool found = co_await read_target(plan, rec.target, why);
        if (!found) {
            planner_.release(plan);
            rec.outcome = "refused";
            rec.error = why;
            finish(rec);
            co_return;
        }
        if (plan.dry_run) {
            rec.outcome = "dry_run";
            finish(rec);
            co_return;
        }
        try {
            co_await act(plan, rec.target, report);
            rec.outcome = "done";
        } catch (const kube::Error& e) {
            rec.outcome = "failed";
            rec.error = e.code().message();
            if (!e.diagnostics().server_message.empty()) rec.error += ": " + e.diagnostics().server_message;
        }
        finish(rec);
    }

    const InterventionPlanner& planner() const noexcept { return planner_; }
    InterventionPlanner& planner() noexcept { return planner_; }

private:
    void say(std::string_view line) {
        if (out_.log) out_.log(line);
    }

    void finish(const InterventionRecord& rec) {
        say("interventions: " + std::string(to_string(rec.action)) + " " + rec.target.kind + " " + rec.target.name +
            ": " + rec.outcome + (rec.error.empty() ? std::string() : " (" + rec.error + ")"));
        if (out_.record) out_.record(rec);
        if (out_.publish) out_.publish(intervention_report(rec));
    }

    std::string pod_path(const std::string& name) const {
        return "/api/v1/namespaces/" + kube::escape_path_segment(context_.namespace_) + "/pods/" +
               kube::escape_path_segment(name);
    }
    std::string job_path(const std::string& name) const {
        return "/apis/batch/v1/namespaces/" + kube::escape_path_segment(context_.namespace_) + "/jobs/" +
               kube::escape_path_segment(name);
    }

    /// Reads the object the plan aims at and checks that it may be acted on.
    boost::asio::awaitable<bool> read_target(const InterventionPlan& plan, InterventionTarget& target, std::string& why) {
        const bool use_job = plan.action == InterventionAction::suspend_job || plan.pod.empty();
        try {
            if (use_job) {
                auto v = co_await client_.get_json(job_path(plan.job));
                auto* o = v.if_object();
                if (!o) {
                    why = "the API answered something that is not a Job";
                    co_return false;
                }
                auto job = kube::parse_job(*o);
                target = {"Job", job.meta.name, job.meta.uid};
                if (!intervention_allowed(context_, job.meta, false, {}, job.meta.name, why)) co_return false;
                if (plan.action == InterventionAction::suspend_job && (job.complete() || job.failed_or_failing())) {
                    why = "the Job has already finished";
                    co_return false;
                }
                co_return true;
            }
            auto v = co_await client_.get_json(pod_path(plan.pod));
            auto* o = v.if_object();
            if (!o) {
                why = "the API answered something that is not a pod";
                co_return false;
            }
            auto pod = kube::parse_pod(*o);
            target = {"Pod", pod.meta.name, pod.meta.uid};
            std::vector<std::string_view> containers;
            for (auto& c : pod.init_containers) containers.push_back(c.name);
            for (auto& c : pod.containers) containers.push_back(c.name);
            if (!intervention_allowed(context_, pod.meta, true, containers, pod.job_name(), why)) co_return false;
            if (plan.action == InterventionAction::delete_pod) {
                if (pod.meta.deletion_timestamp) {
                    why = "the pod is being deleted already";
                    co_return false;
                }
                if (pod.phase == kube::PodPhase::succeeded || pod.phase == kube::PodPhase::failed) {
                    why = "the pod has already finished";
                    co_return false;
                }
            }
            co_return true;
        } catch (const kube::Error& e) {
            target.kind = use_job ? "Job" : "Pod";
            target.name = use_job ? plan.job : plan.pod;
            why = e.code() == kube::error::not_found ? std::string("the object no longer exists")
                                                     : "it could not be read (" + e.code().message() + ")";
            co_return false;
        }
    }

    boost::asio::awaitable<void> act(const InterventionPlan& plan, const InterventionTarget& target, const Report& report) {
        using boost::beast::http::verb;
        switch (plan.action) {
        case InterventionAction::delete_pod: {
            // Preconditions: delete exactly the pod that was checked, never a replacement of the same name.
            boost::json::object body{{"kind", "DeleteOptions"}, {"apiVersion", "v1"},
                                     {"preconditions", boost::json::object{{"uid", target.uid}}}};
            co_await client_.request_json(verb::delete_, pod_path(target.name), boost::json::value(std::move(body)));
            break;
        }
        case InterventionAction::suspend_job: {
            kube::RequestOptions o;
            o.content_type = "application/merge-patch+json";
            boost::json::value patch = boost::json::object{{"spec", boost::json::object{{"suspend", true}}}};
            co_await client_.request_json(verb::patch, job_path(target.name), std::move(patch), std::move(o));
            break;
        }
        case InterventionAction::annotate: {
            kube::RequestOptions o;
            o.content_type = "application/merge-patch+json";
            std::string note = std::string(to_string(report.type)) + ": " + report.message;
            if (note.size() > 1024) note.resize(1024);
            boost::json::value patch = boost::json::object{
                {"metadata", boost::json::object{{"annotations", boost::json::object{{"execution-sentinel/finding", note}}}}}};
            auto path = target.kind == "Job" ? job_path(target.name) : pod_path(target.name);
            co_await client_.request_json(verb::patch, path, std::move(patch), std::move(o));
            auto now = kube::format_rfc3339(Clock::now());
            boost::json::object ev{
                {"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata", boost::json::object{{"name", target.name + ".sentinel-" + std::to_string(report.sequence)},
                                                 {"namespace", context_.namespace_}}},
                {"involvedObject", boost::json::object{{"apiVersion", target.kind == "Job" ? "batch/v1" : "v1"},
                                                       {"kind", target.kind},
                                                       {"name", target.name},
                                                       {"namespace", context_.namespace_},
                                                       {"uid", target.uid}}},
                {"reason", "SentinelFinding"},
                {"message", note},
                {"type", "Warning"},
                {"count", 1},
                {"firstTimestamp", now},
                {"lastTimestamp", now},
                {"source", boost::json::object{{"component", "execution-sentinel"}}}};
            co_await client_.request_json(verb::post,
                                          "/api/v1/namespaces/" + kube::escape_path_segment(context_.namespace_) +
                                              "/events",
                                          boost::json::value(std::move(ev)));
            break;
        }
        }
    }

    kube::Client& client_;
    MonitoringContext context_;
    InterventionPlanner planner_;
    IntervenerOutputs out_;
    std::set<std::string> said_;
};

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_INTERVENTIONS_INTERVENER_HPP
