// The decisions of alert delivery, without I/O: which reports a sink takes, the stable key of an alert, cooldown
// and deduplication against the delivery ledger, grouping of bursts (Batcher), the bodies sent to Alertmanager,
// Slack and webhooks, the HMAC-SHA256 signature, and what a receiver's answer means (deliver, retry, give up).
#ifndef EXECUTION_SENTINEL_ALERTS_PAYLOAD_HPP
#define EXECUTION_SENTINEL_ALERTS_PAYLOAD_HPP

#include <execution_sentinel/alerts/config.hpp>
#include <execution_sentinel/alerts/ledger.hpp>
#include <execution_sentinel/report.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::alerts {

/// Which run the alerts are about: labels and keys carry it.
struct AlertContext {
    std::string run_id;     ///< stable across restarts of the sentinel (the CLI uses namespace/engine pod)
    std::string namespace_; ///< the workflow's namespace
};

/// One report on its way to one sink.
struct Alert {
    Report report;
    std::string key;          ///< alert_key(): the same alert gets the same key after a restart
    std::string cooldown_key; ///< cooldown_key(): (run, task, type, severity)
};

inline std::string hex(const unsigned char* data, std::size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[data[i] >> 4];
        out += digits[data[i] & 15];
    }
    return out;
}

/// SHA-256 of `data`, lower-case hex.
inline std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    return hex(md, len);
}

/// HMAC-SHA256 of `body` with `key`, lower-case hex (what `X-Sentinel-Signature: sha256=<hex>` carries).
inline std::string hmac_sha256_hex(std::string_view key, std::string_view body) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const unsigned char empty = 0;
    HMAC(EVP_sha256(), key.empty() ? static_cast<const void*>(&empty) : static_cast<const void*>(key.data()), static_cast<int>(key.size()),
         body.empty() ? &empty : reinterpret_cast<const unsigned char*>(body.data()), body.size(), md, &len);
    return hex(md, len);
}

/// A stall resolution or restored connectivity: closes an alert that fired before.
inline bool is_resolution(const Report& r) {
    if (r.type == ReportType::CONNECTIVITY_RESTORED) return true;
    if (r.type == ReportType::ANOMALY_STALL)
        if (auto* v = r.details.if_contains("resolved"); v && v->is_bool() && v->as_bool()) return true;
    return false;
}

/// The alert a resolution closes: ANOMALY_STALL for a resolved stall, CONNECTIVITY_LOSS for restored connectivity.
inline ReportType alert_type_of(const Report& r) {
    return r.type == ReportType::CONNECTIVITY_RESTORED ? ReportType::CONNECTIVITY_LOSS : r.type;
}

/// Whether `sink` takes `r`: its type is listed (or a default alert type when the list is empty) and its severity
/// reaches min_severity. A resolution is taken whenever the type it resolves is taken, whatever its severity.
inline bool sink_accepts(const SinkConfig& sink, const Report& r) {
    const ReportType t = alert_type_of(r);
    const bool listed = sink.types.empty() ? default_alert_type(t)
                                           : std::find(sink.types.begin(), sink.types.end(), t) != sink.types.end();
    if (!listed) return false;
    if (is_resolution(r)) return true;
    return r.severity >= sink.min_severity;
}

/// The details that tell one alert from another of the same type and task (never counts that change over time,
/// never the sequence number or the message).
inline constexpr std::string_view identity_fields[] = {"scope",    "tier",    "level",    "resolved", "pod_name",
                                                       "job_name", "attempts", "attempt", "oom_task", "phase",
                                                       "event",    "cause",   "exit_code", "container", "path"};

/// "RUN/TYPE/SCOPE/FINGERPRINT": the run, the report type, the task (or `type:<task type>`, or `workflow`), and 16
/// hex digits of SHA-256 over the severity and the identifying details. The same finding reported again after a
/// restart has the same key; the sequence number plays no part.
inline std::string alert_key(const Report& r, std::string_view run_id) {
    std::string scope = !r.task_name.empty() ? r.task_name
                        : !r.task_type.empty() ? "type:" + r.task_type
                                               : std::string("workflow");
    std::string material = std::string(to_string(r.type)) + "\n" + std::string(to_string(r.severity)) + "\n" +
                           r.task_name + "\n" + r.task_type + "\n";
    for (auto f : identity_fields)
        if (auto* v = r.details.if_contains(f)) material += std::string(f) + "=" + boost::json::serialize(*v) + "\n";
    return std::string(run_id) + "/" + std::string(to_string(r.type)) + "/" + scope + "/" +
           sha256_hex(material).substr(0, 16);
}

/// "cooldown/RUN/TYPE/TASK/SEVERITY": one cooldown per (run, task, type) and severity, so an escalation is not held
/// back by the cooldown of the milder alert before it.
inline std::string cooldown_key(const Report& r, std::string_view run_id) {
    return "cooldown/" + std::string(run_id) + "/" + std::string(to_string(alert_type_of(r))) + "/" +
           (r.task_name.empty() ? (r.task_type.empty() ? std::string("workflow") : "type:" + r.task_type) : r.task_name) +
           "/" + std::string(to_string(r.severity));
}

inline Alert make_alert(Report r, const AlertContext& ctx) {
    Alert a;
    a.key = alert_key(r, ctx.run_id);
    a.cooldown_key = cooldown_key(r, ctx.run_id);
    a.report = std::move(r);
    return a;
}

/// Why an alert is not sent (or nullopt: send it).
enum class Suppression : std::uint8_t { duplicate, cooldown };

/// The decision against the ledger: a key already sent (or dead-lettered) is a duplicate; an alert whose
/// (run, task, type, severity) was sent less than `cooldown` ago is held back, unless it is a resolution.
inline std::optional<Suppression> suppression(const Alert& a, const std::optional<DeliveryRecord>& by_key,
                                              const std::optional<DeliveryRecord>& by_cooldown,
                                              std::chrono::milliseconds cooldown, Timestamp now) {
    if (by_key && (by_key->state == "sent" || by_key->state == "dead")) return Suppression::duplicate;
    if (is_resolution(a.report) || cooldown.count() <= 0) return std::nullopt;
    if (by_cooldown && by_cooldown->state == "sent" && now - by_cooldown->time < cooldown) return Suppression::cooldown;
    return std::nullopt;
}

/// Collects alerts into groups: the first alert opens a window of `window`; the group is ready when the window
/// has passed or `max_group` alerts wait. At most `capacity` alerts wait; beyond, add() refuses (the caller
/// counts the overflow). Pure: time is passed in.
class Batcher {
public:
    using time_point = std::chrono::steady_clock::time_point;
    Batcher(std::chrono::milliseconds window, std::size_t max_group, std::size_t capacity)
        : window_(window), max_group_(std::max<std::size_t>(max_group, 1)), capacity_(std::max<std::size_t>(capacity, 1)) {}

    /// Queues `a`; false (nothing queued) when `capacity` alerts already wait.
    bool add(Alert a, time_point now) {
        if (queue_.size() >= capacity_) return false;
        if (queue_.empty()) opened_ = now;
        queue_.push_back(std::move(a));
        return true;
    }
    bool empty() const noexcept { return queue_.empty(); }
    std::size_t size() const noexcept { return queue_.size(); }
    /// When the waiting group becomes ready (meaningless when empty()).
    time_point deadline() const noexcept { return queue_.size() >= max_group_ ? opened_ : opened_ + window_; }
    bool ready(time_point now) const noexcept { return !queue_.empty() && now >= deadline(); }
    /// The next group (up to max_group alerts, oldest first); what remains is ready at once.
    std::vector<Alert> take() {
        std::vector<Alert> out;
        while (!queue_.empty() && out.size() < max_group_) {
            out.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
        opened_ -= window_; // the rest already waited
        return out;
    }

private:
    std::chrono::milliseconds window_;
    std::size_t max_group_;
    std::size_t capacity_;
    std::deque<Alert> queue_;
    time_point opened_{};
};

/// The idempotency key of a message: SHA-256 over its alerts' keys (in order), 32 hex digits. A retried or
/// re-sent message has the same key.
inline std::string group_key(const std::vector<Alert>& alerts) {
    std::string material;
    for (const auto& a : alerts) material += a.key + "\n";
    return sha256_hex(material).substr(0, 32);
}

// ------------------------------------------------------------------------------------------------ Alertmanager

/// The labels of an alert in Alertmanager: alertname, run, namespace, task, type, severity (empty ones left out).
/// A resolution carries the labels of the alert it closes, with the `severity` given.
inline boost::json::object alertmanager_labels(const Report& r, const AlertContext& ctx, Severity severity) {
    boost::json::object labels;
    const std::string type(to_string(alert_type_of(r)));
    labels["alertname"] = "Sentinel_" + type;
    labels["type"] = type;
    labels["severity"] = to_string(severity);
    if (!ctx.run_id.empty()) labels["run"] = ctx.run_id;
    if (!ctx.namespace_.empty()) labels["namespace"] = ctx.namespace_;
    if (!r.task_name.empty()) labels["task"] = r.task_name;
    else if (!r.task_type.empty()) labels["task"] = "type:" + r.task_type;
    if (!r.task_type.empty()) labels["task_type"] = r.task_type;
    return labels;
}

/// "key: value" lines of a report's details (strings unquoted), at most `limit` bytes.
inline std::string details_text(const Report& r, std::size_t limit = 2000) {
    std::string out;
    for (const auto& [k, v] : r.details) {
        std::string line = std::string(k) + ": " + (v.is_string() ? std::string(v.as_string()) : boost::json::serialize(v));
        if (out.size() + line.size() + 1 > limit) break;
        out += line + "\n";
    }
    return out;
}

/// One alert for POST /api/v2/alerts. `resolved_severities`: for a resolution, the severities under which the
/// alert it closes fired (each gets an entry with `endsAt`); ignored otherwise.
inline void append_alertmanager_alerts(boost::json::array& out, const Alert& a, const AlertContext& ctx,
                                       const SinkConfig& sink, const std::vector<Severity>& resolved_severities) {
    const Report& r = a.report;
    boost::json::object annotations{{"summary", r.message}, {"description", r.message + "\n" + details_text(r)},
                                     {"sentinel_key", a.key}};
    auto one = [&](Severity sev, bool resolved) {
        boost::json::object alert;
        alert["labels"] = alertmanager_labels(r, ctx, sev);
        alert["annotations"] = annotations;
        Timestamp starts = r.timestamp;
        if (auto* since = r.details.if_contains("since"); since && since->is_string())
            if (auto t = parse_rfc3339(since->as_string()); t && *t <= r.timestamp) starts = *t;
        alert["startsAt"] = format_timestamp(resolved ? starts : r.timestamp);
        if (resolved) alert["endsAt"] = format_timestamp(r.timestamp);
        if (!sink.generator_url.empty()) alert["generatorURL"] = sink.generator_url;
        out.push_back(std::move(alert));
    };
    if (!is_resolution(r)) {
        one(r.severity, false);
        return;
    }
    for (auto sev : resolved_severities) one(sev, true);
}

// ------------------------------------------------------------------------------------------------ Slack

/// Cuts `s` to at most `limit` bytes at a UTF-8 character boundary, ending with "…" when cut.
inline std::string truncate_utf8(std::string s, std::size_t limit) {
    if (s.size() <= limit) return s;
    const std::string ellipsis = "\xE2\x80\xA6";
    std::size_t cut = limit >= ellipsis.size() ? limit - ellipsis.size() : 0;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s.resize(cut);
    if (limit >= ellipsis.size()) s += ellipsis;
    return s;
}

/// Slack's mrkdwn control characters: &, <, >.
inline std::string slack_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '&') out += "&amp;";
        else if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else out += c;
    }
    return out;
}

/// Slack's limit for the text of a section block.
inline constexpr std::size_t slack_section_limit = 3000;

/// A Block Kit message: a header, one section per alert (each at most 3,000 characters), a context line with the
/// run, and the plain `text` fallback that notifications show.
inline boost::json::object slack_message(const std::vector<Alert>& alerts, const AlertContext& ctx) {
    boost::json::array blocks;
    std::string title = alerts.size() == 1 ? std::string(to_string(alerts.front().report.type))
                                           : std::to_string(alerts.size()) + " alerts";
    title += " — run " + ctx.run_id;
    blocks.push_back({{"type", "header"},
                      {"text", {{"type", "plain_text"}, {"text", truncate_utf8(title, 150)}}}});
    std::string fallback = (alerts.size() == 1 ? std::string() : std::to_string(alerts.size()) + " alerts: ");
    for (std::size_t i = 0; i < alerts.size() && blocks.size() < 48; ++i) {
        const Report& r = alerts[i].report;
        std::string state = is_resolution(r) ? "resolved" : std::string(to_string(r.severity));
        std::string text = "*" + std::string(to_string(r.type)) + "* (" + state + ")";
        if (!r.task_name.empty()) text += " · task `" + slack_escape(r.task_name) + "`";
        text += "\n" + slack_escape(r.message);
        std::string details = details_text(r, 1500);
        if (!details.empty()) text += "\n```" + slack_escape(details) + "```";
        blocks.push_back({{"type", "section"},
                          {"text", {{"type", "mrkdwn"}, {"text", truncate_utf8(text, slack_section_limit)}}}});
        if (i) fallback += " | ";
        fallback += std::string(to_string(r.type)) + " (" + state + "): " + r.message;
    }
    std::string context = "run " + ctx.run_id + (ctx.namespace_.empty() ? "" : " · namespace " + ctx.namespace_);
    blocks.push_back({{"type", "context"},
                      {"elements", boost::json::array{{{"type", "mrkdwn"}, {"text", slack_escape(context)}}}}});
    return {{"text", truncate_utf8(fallback, slack_section_limit)}, {"blocks", std::move(blocks)}};
}

// ------------------------------------------------------------------------------------------------ webhook

/// {"version":"1","idempotency_key":GROUP,"run":..,"namespace":..,"alerts":[{"idempotency_key","status","report"}]}.
/// The same alerts give the same bytes (no send time), so a retried message verifies and deduplicates the same.
inline boost::json::object webhook_message(const std::vector<Alert>& alerts, const AlertContext& ctx) {
    boost::json::array items;
    for (const auto& a : alerts)
        items.push_back({{"idempotency_key", a.key},
                         {"status", is_resolution(a.report) ? "resolved" : "firing"},
                         {"report", to_json(a.report)}});
    return {{"version", "1"},
            {"idempotency_key", group_key(alerts)},
            {"run", ctx.run_id},
            {"namespace", ctx.namespace_},
            {"alerts", std::move(items)}};
}

// ------------------------------------------------------------------------------------------------ answers

/// What to do after one attempt.
enum class AttemptVerdict : std::uint8_t { delivered, retry, give_up };

/// 2xx delivered; 408, 425, 429 and 5xx (and no answer at all: status 0) retried; anything else (a 4xx saying the
/// message or the URL is wrong, a redirect) given up at once.
inline AttemptVerdict verdict_for_status(int status) {
    if (status >= 200 && status < 300) return AttemptVerdict::delivered;
    if (status == 0 || status == 408 || status == 425 || status == 429 || status >= 500) return AttemptVerdict::retry;
    return AttemptVerdict::give_up;
}

/// Retry-After in seconds ("120"); an HTTP date or garbage gives nullopt. Clamped to one hour.
inline std::optional<int> parse_retry_after(std::string_view v) {
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    if (v.empty() || v.size() > 9) return std::nullopt;
    int n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + (c - '0');
    }
    return std::min(n, 3600);
}

} // namespace execution_sentinel::alerts

#endif // EXECUTION_SENTINEL_ALERTS_PAYLOAD_HPP
