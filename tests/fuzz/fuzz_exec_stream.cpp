// The messages of an exec stream once the WebSocket layer has reassembled them ([channel byte][payload]:
// 1 stdout, 2 stderr, 3 the Status), the Status of channel 3 (v4/v5 JSON, or the plain text of older servers),
// and the body of a refused exec upgrade. The input is a first byte (output limit and HTTP status), then
// messages, each a length byte and that many bytes.
#include <execution_sentinel/kube/exec.hpp>

#include "fuzz_target.hpp"

#include <algorithm>
#include <string>

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace kube = execution_sentinel::kube;
    if (data.empty()) return;
    const auto head = static_cast<unsigned char>(data[0]);
    const std::size_t max_output = 1 + head % 128;
    data.remove_prefix(1);
    try {
        kube::ExecOutputCollector collector(max_output);
        std::string out, err;
        std::string status;
        bool has_status = false;
        std::string_view rest = data;
        while (!rest.empty()) {
            std::size_t n = std::min<std::size_t>(static_cast<unsigned char>(rest[0]), rest.size() - 1);
            std::string_view message = rest.substr(1, n);
            rest.remove_prefix(1 + n);
            collector.on_message(message);
            if (message.empty()) continue;
            switch (static_cast<unsigned char>(message[0])) {
            case 1: out.append(message.substr(1)); break;
            case 2: err.append(message.substr(1)); break;
            case 3: status.append(message.substr(1)); has_status = true; break;
            default: break;
            }
        }
        expect(collector.stdout_data() == out.substr(0, max_output), "stdout is channel 1, cut at the limit");
        expect(collector.stderr_data() == err.substr(0, max_output), "stderr is channel 2, cut at the limit");
        expect(collector.truncated() == (out.size() > max_output || err.size() > max_output),
               "output is marked truncated exactly when it was cut");
        expect(collector.has_status() == has_status && collector.status_payload() == status,
               "the Status is channel 3");

        for (std::string_view payload : {std::string_view(collector.status_payload()), data}) {
            auto s = kube::decode_exec_status(payload);
            expect(s.message.size() <= payload.size() + 64, "the message is bounded by the payload");
            boost::system::error_code ec;
            auto v = boost::json::parse(payload, ec);
            if (ec || !v.is_object()) {
                expect(!s.started && payload.starts_with(s.message) && s.message.size() <= 1000,
                       "text that is not a Status is a failure quoting at most 1000 bytes of it");
                continue;
            }
            auto st = kube::parse_status(v);
            if (st.status == "Success") {
                expect(s.started && s.exit_code == 0, "status Success is exit code 0");
            } else if (s.started) {
                expect(std::any_of(st.causes.begin(), st.causes.end(),
                                   [](auto& c) { return c.reason == "ExitCode"; }),
                       "a failed Status gives an exit code only from an ExitCode cause");
            } else {
                expect(!s.message.empty(), "a Status that says the command did not run says why");
            }
        }

        kube::ExecRequest request;
        request.namespace_ = "wf";
        request.pod = "hyperflow-engine-0";
        request.container = "hyperflow";
        request.command = {"cat", "/work_dir/.workflow-exit-code"};
        const int http_status = 400 + head % 200;
        auto [code, diagnostics] = kube::exec_error_from_response(http_status, data, request, "the kubeconfig");
        expect(!diagnostics.client_message.empty(), "a refused exec says what to do");
        (void)code;
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}
