// A PostgreSQL server started by the test process itself (Debian's `postgresql` package), for the tests of the
// PostgreSQL history store and of `serve` sharing one.
#ifndef EXECUTION_SENTINEL_TESTS_SUPPORT_PG_SERVER_HPP
#define EXECUTION_SENTINEL_TESTS_SUPPORT_PG_SERVER_HPP

#include "catch.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace execution_sentinel::test_support {

/// A PostgreSQL server for this test process: initdb into a temporary directory, pg_ctl start on 127.0.0.1
/// with a free port and the socket in that directory, as the postgres user when running as root. Stopped and
/// removed at exit. `skip` says why it could not start. One per process (instance()).
class PgServer {
public:
    static PgServer& instance() {
        static PgServer server;
        return server;
    }
    const std::string& skip() const { return skip_; }

    /// A fresh database; its URI.
    std::string create_database() {
        const std::string name = "t" + std::to_string(++databases_);
        PGconn* c = PQconnectdb((base_ + "postgres").c_str());
        REQUIRE(PQstatus(c) == CONNECTION_OK);
        PGresult* r = PQexec(c, ("CREATE DATABASE " + name).c_str());
        const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        PQfinish(c);
        REQUIRE(ok);
        return base_ + name;
    }

    bool stop() { return run_pg("pg_ctl -D " + data_ + " -m fast -w stop >>" + dir_ + "/ctl.log 2>&1"); }
    bool start() {
        return run_pg("pg_ctl -D " + data_ + " -l " + dir_ + "/server.log -w -t 60 -o \"-p " + std::to_string(port_) +
                      " -k " + dir_ + " -c listen_addresses=127.0.0.1 -c fsync=off\" start >>" + dir_ +
                      "/ctl.log 2>&1");
    }

    ~PgServer() {
        if (started_) stop();
        if (!dir_.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
        }
    }

private:
    PgServer() {
        for (auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", dir_error_))
            if (std::filesystem::exists(entry.path() / "bin" / "initdb")) bin_ = (entry.path() / "bin").string();
        if (bin_.empty()) {
            skip_ = "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)";
            return;
        }
        if (::geteuid() == 0) {
            // initdb refuses to run as root: run the server as the postgres user (or nobody).
            for (const char* name : {"postgres", "nobody"})
                if (auto* pw = ::getpwnam(name)) {
                    user_ = name;
                    uid_ = pw->pw_uid;
                    gid_ = pw->pw_gid;
                    break;
                }
            if (user_.empty()) {
                skip_ = "running as root and neither a postgres nor a nobody user exists";
                return;
            }
        }
        std::string tmpl = "/tmp/es-pg-XXXXXX";
        if (!::mkdtemp(tmpl.data())) {
            skip_ = "cannot create a temporary directory";
            return;
        }
        dir_ = tmpl;
        data_ = dir_ + "/data";
        if (!user_.empty() && ::chown(dir_.c_str(), uid_, gid_) != 0) {
            skip_ = "cannot give " + dir_ + " to user " + user_;
            return;
        }
        port_ = free_port();
        if (!run_pg("initdb -D " + data_ + " -U sentinel -A trust --no-locale -E UTF8 >" + dir_ + "/initdb.log 2>&1")) {
            skip_ = "initdb failed (see its log in " + dir_ + "/initdb.log)";
            return;
        }
        if (!start()) {
            skip_ = "pg_ctl start failed: " + tail(dir_ + "/server.log");
            return;
        }
        started_ = true;
        base_ = "postgresql://sentinel@127.0.0.1:" + std::to_string(port_) + "/";
    }

    static int free_port() {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        socklen_t len = sizeof a;
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        ::close(fd);
        return ntohs(a.sin_port);
    }

    static std::string tail(const std::string& path) {
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        auto s = ss.str();
        return s.size() > 400 ? s.substr(s.size() - 400) : s;
    }

    bool run_pg(const std::string& command) {
        std::string line = bin_ + "/" + command;
        if (!user_.empty()) line = "su -s /bin/sh " + user_ + " -c '" + line + "'";
        return std::system(line.c_str()) == 0;
    }

    std::error_code dir_error_;
    std::string bin_, user_, dir_, data_, base_, skip_;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
    int port_ = 0;
    bool started_ = false;
    int databases_ = 0;
};

} // namespace execution_sentinel::test_support

#endif // EXECUTION_SENTINEL_TESTS_SUPPORT_PG_SERVER_HPP
