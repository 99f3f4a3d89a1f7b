// The run history store's outside input: store addresses (--store, SENTINEL_HISTORY, SENTINEL_STATE), their
// redaction for messages, and rows read back from a database (the JSON columns and the row decoders). Every
// failure is a StoreAddressError or a StoreError; a password never survives redaction.
#include <execution_sentinel/history/sql_store.hpp>

#include "fuzz_target.hpp"

#include <string>

namespace h = execution_sentinel::history;

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    // 1. The address parser.
    try {
        auto loc = h::parse_store_location(data);
        expect(loc.kind != h::StoreKind::sqlite || !loc.target.empty(), "a SQLite address has a path");
        (void)loc.display();
    } catch (const h::StoreAddressError&) {
    } catch (const std::exception& e) {
        unexpected(e.what());
    }

    // 2. Redaction: a password made of the input never appears in the address shown.
    std::string password;
    for (char c : data)
        if (c != '@' && c != '/' && c != '?' && c != '#' && c != ':' && c != '&' && c != ' ' &&
            static_cast<unsigned char>(c) >= 0x21 && static_cast<unsigned char>(c) < 0x7f)
            password += c;
    if (password.size() >= 6) {
        const auto shown = h::redact_store_uri("postgresql://user:" + password + "@db:5432/h");
        expect(shown.find(":" + password + "@") == std::string::npos, "a user-part password is redacted");
        const auto param = h::redact_store_uri("postgresql://db/h?password=" + password + "&sslmode=require");
        expect(param.find("password=" + password) == std::string::npos, "a password= parameter is redacted");
    }

    // 3. Rows read back: the input as each JSON column and as a report body.
    const std::string text(data);
    auto rows_must_fail_cleanly = [&](auto&& decode) {
        try {
            decode();
        } catch (const h::StoreError&) {
        } catch (const std::exception& e) {
            unexpected(e.what());
        }
    };
    rows_must_fail_cleanly([&] {
        h::decode_run_row({std::string("r"), std::string("ns"), std::string("wf"), text, std::int64_t{0},
                           std::monostate{}, std::string("failed"), text});
    });
    rows_must_fail_cleanly([&] {
        auto r = h::decode_report_row({std::string("r"), std::int64_t{1}, text});
        expect(r.sequence == 1, "a decoded report has its row's sequence");
    });
    rows_must_fail_cleanly([&] {
        h::decode_task_row({std::string("r"), std::string("t"), std::int64_t{1}, std::string("x"), std::string(""),
                            std::monostate{}, std::monostate{}, text, text, std::monostate{}, std::monostate{}});
    });
    rows_must_fail_cleanly([&] {
        h::decode_delivery_row({std::string("s"), std::string("k"), std::string("r"), text, std::int64_t{1}, text,
                                std::int64_t{0}});
    });
}
