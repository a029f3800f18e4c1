#!/usr/bin/env bash
# Speed benchmark of `codifier pack` against repomix (npm) and code2prompt (crates.io), and the
# floor (walk + read + parallel o200k tokenize + write: examples/pack_floor.rs). Not run in CI.
#
#   bash scripts/bench-pack.sh <checkout-dir>...
#
# Same files for every tool: codifier lists the files it keeps with its defaults (.gitignore,
# default ignores, no binaries, no files with secrets); they are copied to <work>/<name>-aligned
# and every tool packs that copy with its own defaults, so differences in default ignores do not
# change what is measured. Each tool's output is checked for how many files it really included.
# Settings: XML output, exact o200k token counts, secret scan on where the tool has one
# (codifier: on; repomix: its secretlint check, on by default; code2prompt: has none).
#
# Environment: RUNS (default 5), WORK (default a new temp dir), TOOLS (which to run, default
# "codifier codifier-cached floor repomix code2prompt"), REPOMIX (a repomix binary; else npm
# installs it into WORK), CODE2PROMPT (a code2prompt binary; else `cargo install` into WORK,
# which compiles for many minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -ge 1 ] || { echo "usage: $0 <checkout-dir>..." >&2; exit 2; }
RUNS=${RUNS:-5}
read -r -a TOOLS <<<"${TOOLS:-codifier codifier-cached floor repomix code2prompt}"
wants() { [[ " ${TOOLS[*]} " == *" $1 "* ]]; }
WORK=${WORK:-$(mktemp -d -t codifier-bench-XXXXXX)}
mkdir -p "$WORK"
echo "work directory: $WORK" >&2

cargo build --release --bins --example pack_floor >&2
CODIFIER="${CARGO_TARGET_DIR:-$PWD/target}/release/codifier"
FLOOR="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/pack_floor"
if wants repomix && [ -z "${REPOMIX:-}" ]; then
    npm install --silent --prefix "$WORK/npm" repomix >&2
    REPOMIX="$WORK/npm/node_modules/.bin/repomix"
fi
if wants code2prompt && [ -z "${CODE2PROMPT:-}" ]; then
    cargo install --quiet code2prompt --root "$WORK/c2p" >&2
    CODE2PROMPT="$WORK/c2p/bin/code2prompt"
fi
command -v hyperfine >/dev/null || { echo "install hyperfine (apt-get install hyperfine)" >&2; exit 1; }

peak_rss_mb() { # command... → peak resident memory in MB
    /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}'
}

# command... → the most private memory (RssAnon: heap, stacks, dirtied pages) seen while it ran,
# in MB, sampled every millisecond. Maximum RSS also counts the pages of the program's own
# executable and libraries it touched, which for a small pack outweigh what the packing holds.
peak_private_mb() {
    python3 - "$@" <<'EOF'
import subprocess, sys, time
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
peak = 0
while child.poll() is None:
    try:
        with open(f"/proc/{child.pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    peak = max(peak, int(line.split()[1]))
    except (FileNotFoundError, ProcessLookupError):
        break
    time.sleep(0.001)
child.wait()
print(f"{peak / 1024:.0f}")
EOF
}

printf '| repository | tool | median s | max RSS MB | peak private MB | files in output |\n|---|---|---|---|---|---|\n' > "$WORK/table.md"
for source in "$@"; do
    name=$(basename "$source")
    aligned="$WORK/$name-aligned"
    "$CODIFIER" pack "$source" --no-cache --style json -o "$WORK/$name-list.json" 2>/dev/null
    python3 - "$WORK/$name-list.json" "$source" "$aligned" <<'EOF'
import json, os, shutil, sys
listing, source, target = sys.argv[1:]
files = [f["path"] for f in json.load(open(listing))["files"]]
for path in files:
    os.makedirs(os.path.dirname(os.path.join(target, path)), exist_ok=True)
    shutil.copyfile(os.path.join(source, path), os.path.join(target, path))
print(f"{len(files)} files aligned", file=sys.stderr)
EOF
    total=$(find "$aligned" -type f | wc -l)
    out="$WORK/$name-out"
    mkdir -p "$out"
    declare -A cmd=(
        [codifier]="$CODIFIER pack $aligned --no-cache -o $out/codifier.xml"
        [codifier-cached]="$CODIFIER pack $aligned -o $out/codifier-cached.xml"
        [floor]="$FLOOR $aligned $out/floor.xml"
        [repomix]="${REPOMIX:-repomix} $aligned --style xml -o $out/repomix.xml --quiet"
        # code2prompt 4.3 counts with cl100k at most (no o200k) and copies to the clipboard
        # only when asked (-c).
        [code2prompt]="${CODE2PROMPT:-code2prompt} $aligned --output-format xml --output-file $out/code2prompt.xml --encoding cl100k"
    )
    # The cached variant reads a warm token-count cache (a re-pack of an unchanged repository).
    export CODIFIER_DATA_DIR="$WORK/data"
    ${cmd[codifier-cached]} 2>/dev/null
    named=()
    for tool in "${TOOLS[@]}"; do named+=(-n "$tool" "${cmd[$tool]}"); done
    hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$WORK/$name-times.json" \
        "${named[@]}" >&2
    for tool in "${TOOLS[@]}"; do
        median=$(python3 -c "import json,sys; r=[x for x in json.load(open(sys.argv[1]))['results'] if x['command']==sys.argv[2]][0]; print(f\"{r['median']:.2f}\")" "$WORK/$name-times.json" "$tool")
        # shellcheck disable=SC2086
        peak=$(peak_rss_mb ${cmd[$tool]})
        # shellcheck disable=SC2086
        private=$(peak_private_mb ${cmd[$tool]})
        case $tool in
            code2prompt) files=$(grep -c '^ *<file path=' "$out/code2prompt.xml" || true) ;;
            *) files=$(grep -c '^<file path=' "$out/${tool}.xml" || true) ;;
        esac
        printf '| %s (%s files) | %s | %s | %s | %s | %s |\n' "$name" "$total" "$tool" "$median" "$peak" "$private" "$files" >> "$WORK/table.md"
    done
done
cat "$WORK/table.md"
