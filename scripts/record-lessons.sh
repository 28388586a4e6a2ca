#!/bin/sh
# Regenerates assets/recordings/NAME.jsonl: one recording of each shipped lesson that needs slow
# motion (`slow = true`), made on the real kernel with `tcp-lab run NAME --slow DELAY --format json`.
# tcp-lab embeds them: without the privilege for slow motion, `tcp-lab lesson NAME` plays the
# lesson from its recording. Run as root (slow motion needs it), from the checkout, after a build:
#   cargo build --release && su -c 'scripts/record-lessons.sh'      # or: sudo scripts/record-lessons.sh
# Then rebuild (the recordings are compiled in) and run `cargo test --test lessons`, which checks
# that every expectation of each scenario is met in its recording.
# Names given (`scripts/record-lessons.sh zero-window`): only those lessons. A scenario may choose
# its own delay with a line `# record: --slow 50ms` (the congestion lessons: a 64 KiB transfer
# at 300 ms each way would take minutes).
# Environment: TCP_LAB (the binary, default target/release/tcp-lab), DELAY (default 300ms).
set -eu
cd "$(dirname "$0")/.."
bin=${TCP_LAB:-target/release/tcp-lab}
[ -x "$bin" ] || { echo "record-lessons: $bin not found: cargo build --release first" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "record-lessons: slow motion needs root: su -c '$0' (or sudo $0)" >&2; exit 2; }
mkdir -p assets/recordings
if [ $# -gt 0 ]; then
    set -- $(for n in "$@"; do echo "assets/scenarios/$n.toml"; done)
else
    set -- assets/scenarios/*.toml
fi
for toml in "$@"; do
    [ -f "$toml" ] || { echo "record-lessons: no $toml" >&2; exit 2; }
    grep -q '^slow = true' "$toml" || continue
    name=$(basename "$toml" .toml)
    out=assets/recordings/$name.jsonl
    delay=$(sed -n 's/^# record: --slow \([0-9a-z.]*\)$/\1/p' "$toml")
    delay=${delay:-${DELAY:-300ms}}
    printf 'recording %s … ' "$name"
    # JSON is English whatever the locale; a failed run is not kept.
    if "$bin" --lang en run "$name" --slow "$delay" --format json > "$out.tmp"; then
        mv "$out.tmp" "$out"
        echo "$(wc -l < "$out") lines"
    else
        rm -f "$out.tmp"
        echo "FAILED (run it alone: $bin run $name --slow $delay)" >&2
        exit 1
    fi
done
