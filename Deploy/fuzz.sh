#!/usr/bin/env bash
# Coverage-guided fuzzing of the device-facing plist parsers (libFuzzer), for a bounded time:
#   ./Deploy/fuzz.sh [seconds, default 120]
# Builds Fuzz/PlistFuzzer.swift with Shared/AppleProtocol and Shared/Core, runs it on Fuzz/corpus/plist,
# and merges inputs that reach new code back into that corpus (commit them: the test command replays
# every corpus file, see Tests/AppleProtocolTests/FuzzCorpusTests.swift). A crash leaves crash-* files
# in .orchard/fuzz/ and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-120}
export ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
OUT=.orchard/fuzz
mkdir -p "$OUT" Fuzz/corpus/plist
# OrchardCore as a module of its own (AppleProtocol imports it), both instrumented for coverage.
(cd "$OUT" && swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name OrchardCore -emit-module -emit-library -static \
  $(find "$OLDPWD/Shared/Core" -name '*.swift') -o libOrchardCore.a)
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name AppleProtocol -I "$OUT" -L "$OUT" -lOrchardCore \
  Fuzz/PlistFuzzer.swift $(find Shared/AppleProtocol -name '*.swift') -o "$OUT/plist-fuzzer"
mkdir -p "$OUT/new"
# -detect_leaks=0: Foundation's XML plist parser leaks a CFError (~46 bytes) for every malformed XML
# document (seen by this fuzzer, 2026-11-25; docs/decisions.md); leak reports would stop every run there.
"$OUT/plist-fuzzer" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 \
  -artifact_prefix="$OUT/" -print_final_stats=1 "$OUT/new" Fuzz/corpus/plist
# Keep only inputs that add coverage.
"$OUT/plist-fuzzer" -merge=1 Fuzz/corpus/plist "$OUT/new" >/dev/null 2>&1
rm -rf "$OUT/new"
echo "corpus: $(ls Fuzz/corpus/plist | wc -l) inputs in Fuzz/corpus/plist"
