#!/usr/bin/env bash
# The live terminal view of execution-sentinel in a real pseudo-terminal: runs `demo` on a small scenario inside
# a detached tmux session of a fixed size, captures the screen, and checks that it shows the phases, the
# progress, the anomalies and the summary, fits the width, and holds no raw escape sequences.
# Usage: bash cli_tty.sh <path-to-execution-sentinel-cluster>     (exit 77 when tmux is missing)
set -u
cluster_bin=${1:?usage: cli_tty.sh <path-to-execution-sentinel-cluster>}
bin="$(cd "$(dirname "$cluster_bin")/.." && pwd)/execution-sentinel/execution-sentinel"
if ! command -v tmux >/dev/null || ! command -v python3 >/dev/null; then
  echo "SKIP: tmux and python3 are needed"
  exit 77
fi
if [ ! -x "$bin" ]; then
  echo "FAIL: execution-sentinel not found at $bin"
  exit 1
fi

tmp=$(mktemp -d)
socket="$tmp/tmux.sock"
session=es-cli-tty
tmx() { tmux -S "$socket" "$@"; }
cleanup() {
  tmx kill-server 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && sed 's/^/    /' <<<"$2"; }

cat >scenario.json <<'EOF'
{"name": "cli-tty", "namespace": "cli-tty", "time_scale": 0.1, "seed": 11,
 "engine": {"at": 0},
 "task_defaults": {"pending": 2, "duration": 10},
 "tasks": [
   {"type": "individuals", "proc_id": 1, "start": 1},
   {"type": "individuals", "proc_id": 2, "start": 1, "outcome": "oom", "failed_attempts": 1,
    "memory_limit": "64Mi"},
   {"type": "individuals", "proc_id": 3, "start": 1, "duration": 12},
   {"type": "sifting", "proc_id": 4, "start": 1, "duration": 3},
   {"type": "individuals_merge", "proc_id": 5, "start": 16},
   {"type": "mutation_overlap", "proc_id": 6, "start": 30},
   {"type": "frequency", "proc_id": 7, "start": 30}],
 "completion": {"at": 45, "exit_code": 0}}
EOF

# run WIDTH HEIGHT ENV... : plays the scenario in a WIDTHxHEIGHT terminal; leaves the final screen in screen.txt
# and its scrollback (plain) and screen.esc (with the escape sequences tmux keeps: colours only), the exit
# status in status.
run() {
  local width=$1 height=$2
  shift 2
  rm -f status screen.txt screen.esc
  tmx kill-server 2>/dev/null
  # remain-on-exit keeps the final screen after the program ends.
  tmx -f /dev/null new-session -d -s "$session" -x "$width" -y "$height" \
    "env TERM=screen $* '$bin' demo --scenario scenario.json --poll 0.2 --timeout 60; echo \$? > '$tmp/status'; sleep 30"
  tmx set-option -t "$session" remain-on-exit on >/dev/null 2>&1
  local mid_done=0
  for _ in $(seq 1 300); do
    if [ -s status ]; then break; fi
    if [ "$mid_done" = 0 ] && tmx capture-pane -p -t "$session" 2>/dev/null | grep -q "tasks completed"; then
      tmx capture-pane -p -t "$session" >screen-mid.txt
      mid_done=1
    fi
    sleep 0.1
  done
  tmx capture-pane -p -S - -t "$session" >screen.txt
  tmx capture-pane -p -e -S - -t "$session" >screen.esc
  tmx kill-server 2>/dev/null
}

check_screen() {
  local name=$1 width=$2
  if [ "$(cat status 2>/dev/null)" = 0 ]; then ok "$name: exit 0"; else not_ok "$name: exit status '$(cat status 2>/dev/null)'" "$(cat screen.txt)"; fi
  local s
  for s in "individuals" "individuals_merge" "sifting" "mutation_overlap" "frequency" \
           "7/7 tasks completed" "Workflow succeeded" "OOM kill"; do
    if grep -qF "$s" screen.txt; then ok "$name: shows '$s'"; else not_ok "$name: does not show '$s'" "$(cat screen.txt)"; fi
  done
  local wide
  wide=$(python3 -c 'import sys
w = int(sys.argv[1])
for line in open(sys.argv[2], encoding="utf-8", errors="replace"):
    if len(line.rstrip("\n")) > w:
        print(line.rstrip("\n")); break' "$width" screen.txt)
  [ -z "$wide" ] && ok "$name: fits $width columns" || not_ok "$name: a line is wider than $width" "$wide"
  # Raw escape garbage: anything tmux did not interpret shows up as literal text.
  local raw='\[[0-9;]+[A-Za-z]|\[\?[0-9]+[hl]|\^\[|\\e\[|\\x1b|\\033|'$'\x1b'
  if grep -qE "$raw" screen.txt; then
    not_ok "$name: raw escape sequences on the screen" "$(grep -nE "$raw" screen.txt | head -5)"
  else
    ok "$name: no raw escape sequences"
  fi
  # Redrawn in place: the phase block appears once on the final screen, not once per update.
  local headers
  headers=$(grep -c "^execution-sentinel  ns cli-tty" screen.txt)
  [ "$headers" = 1 ] && ok "$name: the live block is redrawn in place" || not_ok "$name: $headers copies of the live block" "$(cat screen.txt)"
}

run 100 40
check_screen "100x40" 100
if grep -q $'\x1b\[3[1-3]m' screen.esc; then ok "100x40: colours are used"; else not_ok "100x40: no colours" "$(cat -v screen.esc | head)"; fi
if [ -s screen-mid.txt ] && grep -q "tasks completed" screen-mid.txt; then ok "100x40: a live view while running"; else not_ok "100x40: no live view seen while running"; fi

run 60 30
check_screen "60x30" 60

run 100 40 NO_COLOR=1
check_screen "NO_COLOR" 100
if grep -q $'\x1b\[3[0-9]m' screen.esc; then not_ok "NO_COLOR: colours used anyway" "$(cat -v screen.esc | head)"; else ok "NO_COLOR: no colours"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
