# Sourced by every launcher: `run CMD ...` prints the command (shell-quoted, one line, "+ " first) and runs it;
# with DRY_RUN=1 it only prints. Environment for the child is passed through `env VAR=VALUE ...` inside CMD, so the
# printed line is exactly what runs. `start CMD ...` is the same in the background (its pid appended to PIDS).
PIDS=()
dry_run() { [[ "${DRY_RUN:-0}" != 0 ]]; }
show() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
}
run() {
  show "$@"
  dry_run || "$@"
}
start() {
  show "$@"
  if ! dry_run; then
    "$@" &
    PIDS+=($!)
  fi
}
