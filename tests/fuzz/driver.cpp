// Runs the fuzz targets without libFuzzer, all linked into one program: `--target NAME` picks one, which gets every
// file of the corpus directories given as arguments, then `--iterations N` seeded mutations of them (bit flips,
// byte insertions and deletions, truncation, splicing). Deterministic: the same corpus and seed give the same
// inputs. `--list` prints the targets.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#define EXECUTION_SENTINEL_FUZZ_DRIVER
#include "fuzz_target.hpp"

namespace {
std::map<std::string, execution_sentinel::fuzz::Target>& targets() {
    static std::map<std::string, execution_sentinel::fuzz::Target> all;
    return all;
}
} // namespace

bool execution_sentinel::fuzz::register_target(const char* name, Target target) {
    targets().emplace(name, target);
    return true;
}

namespace {

std::string mutate(std::string s, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
    auto pick = [&](std::size_t n) { return n == 0 ? std::size_t{0} : static_cast<std::size_t>(rng() % n); };
    static const char* tokens[] = {"{", "}", "[", "]", "\"", ":", ",", "\n", "\\u0000", "null", "-1",
                                   "99999999999999999999", "\"type\"", "\"object\"", "ERROR", "\xff", " ",
                                   "- ", ": ", "*", "&a", "!!binary", "1e308", "\"\""};
    int rounds = 1 + static_cast<int>(pick(4));
    for (int r = 0; r < rounds; ++r) {
        switch (pick(7)) {
        case 0: if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1u << pick(8)); break;
        case 1: s.insert(pick(s.size() + 1), tokens[pick(std::size(tokens))]); break;
        case 2: if (!s.empty()) { auto p = pick(s.size()); s.erase(p, 1 + pick(std::min<std::size_t>(16, s.size() - p))); } break;
        case 3: s.resize(pick(s.size() + 1)); break;
        case 4: { auto& o = corpus[pick(corpus.size())]; auto p = pick(o.size() + 1); s.insert(pick(s.size() + 1), o.substr(p, pick(64))); } break;
        case 5: if (!s.empty()) { auto p = pick(s.size()); s.insert(p, std::string(1 + pick(8), s[p])); } break;
        case 6: if (!s.empty()) s[pick(s.size())] = static_cast<char>(pick(256)); break;
        }
    }
    return s;
}
} // namespace

int main(int argc, char** argv) {
    long iterations = 2000;
    unsigned long long seed = 1;
    std::vector<std::string> corpus;
    execution_sentinel::fuzz::Target target = nullptr;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--iterations" && i + 1 < argc) { iterations = std::stol(argv[++i]); continue; }
        if (a == "--seed" && i + 1 < argc) { seed = std::stoull(argv[++i]); continue; }
        if (a == "--list") {
            for (auto& [name, f] : targets()) std::printf("%s\n", name.c_str());
            return 0;
        }
        if (a == "--target" && i + 1 < argc) {
            auto found = targets().find(argv[++i]);
            if (found == targets().end()) {
                std::fprintf(stderr, "no fuzz target named %s (--list prints them)\n", argv[i]);
                return 2;
            }
            target = found->second;
            continue;
        }
        std::vector<std::filesystem::path> files;
        if (std::filesystem::is_directory(a)) {
            for (auto& e : std::filesystem::directory_iterator(a))
                if (e.is_regular_file()) files.push_back(e.path());
            std::sort(files.begin(), files.end());
        } else {
            files.emplace_back(a);
        }
        for (auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            std::ostringstream ss;
            ss << in.rdbuf();
            corpus.push_back(ss.str());
        }
    }
    if (target == nullptr) {
        std::fprintf(stderr, "usage: %s --target NAME [--iterations N] [--seed S] CORPUS... | --list\n", argv[0]);
        return 2;
    }
    if (corpus.empty()) corpus.emplace_back();
    for (auto& c : corpus) target(c);
    std::mt19937_64 rng(seed);
    for (long i = 0; i < iterations; ++i) target(mutate(corpus[rng() % corpus.size()], corpus, rng));
    std::printf("fuzz smoke: %zu corpus inputs and %ld mutations ran without a finding\n", corpus.size(), iterations);
    return 0;
}
