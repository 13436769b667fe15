#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer with AddressSanitizer) of what devices send, for a bounded time:
#   ./Deploy/fuzz.sh [seconds, default 120] [target: plist (default) or cms]
# plist: Fuzz/PlistFuzzer.swift with Shared/AppleProtocol and Shared/Core — every check-in message,
#        command result and MachineInfo goes through these parsers.
# cms:   Fuzz/CMSSignatureFuzzer.swift with Shared/Crypto, its C shim and OpenSSL — what the gateway does with an
#        Mdm-Signature before any trust decision (its own DER walk that splits out the certificates, SignedDataSplit,
#        then OpenSSL's parse and verification).
# Runs on Fuzz/corpus/<target> and merges inputs that reach new code back into it (commit them: the test
# command replays the plist corpus; the cms corpus is replayed here). A crash leaves crash-* files in
# .orchard/fuzz/ and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-120}
TARGET=${2:-plist}
OUT=.orchard/fuzz
mkdir -p "$OUT" "Fuzz/corpus/$TARGET"
case "$TARGET" in
  plist)
    # OrchardCore as a module of its own (AppleProtocol imports it), both instrumented for coverage.
    (cd "$OUT" && swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name OrchardCore -emit-module -emit-library -static \
      $(find "$OLDPWD/Shared/Core" -name '*.swift') -o libOrchardCore.a)
    swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name AppleProtocol -I "$OUT" -L "$OUT" -lOrchardCore \
      Fuzz/PlistFuzzer.swift $(find Shared/AppleProtocol -name '*.swift') -o "$OUT/plist-fuzzer"
    # Foundation's XML plist parser leaks a CFError (~46 bytes) per malformed XML document (seen by this
    # fuzzer, 2026-11-25; docs/decisions.md): leak detection is off so runs look for crashes.
    LEAKS=0
    ;;
  cms)
    command -v pkg-config >/dev/null && pkg-config --exists openssl || apt-get install -y -qq libssl-dev pkg-config >/dev/null
    # The C shim instrumented like the Swift around it, and a module map for it (SwiftPM makes one in a package build).
    clang -O1 -g -fsanitize=fuzzer-no-link,address -IShared/COrchardCrypto/include -c Shared/COrchardCrypto/orchard_crypto.c \
      -o "$OUT/orchard_crypto.o"
    mkdir -p "$OUT/include"
    printf 'module COrchardCrypto {\n  header "%s"\n  link "crypto"\n  export *\n}\n' "$PWD/Shared/COrchardCrypto/include/orchard_crypto.h" \
      > "$OUT/include/module.modulemap"
    swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name OrchardCrypto -I "$OUT/include" \
      Fuzz/CMSSignatureFuzzer.swift Shared/Crypto/*.swift "$OUT/orchard_crypto.o" $(pkg-config --libs openssl) -o "$OUT/cms-fuzzer"
    # Leaks count here: this is code reached before any trust decision.
    LEAKS=1
    ;;
  *) echo "usage: fuzz.sh [seconds] [plist|cms]" >&2; exit 2 ;;
esac
export ASAN_OPTIONS=detect_leaks=$LEAKS${ASAN_OPTIONS:+:$ASAN_OPTIONS}
rm -rf "$OUT/new" && mkdir -p "$OUT/new"
"$OUT/$TARGET-fuzzer" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -detect_leaks=$LEAKS \
  -artifact_prefix="$OUT/" -print_final_stats=1 "$OUT/new" "Fuzz/corpus/$TARGET"
# Keep only inputs that add coverage.
"$OUT/$TARGET-fuzzer" -merge=1 "Fuzz/corpus/$TARGET" "$OUT/new" >/dev/null 2>&1
rm -rf "$OUT/new"
echo "corpus: $(ls "Fuzz/corpus/$TARGET" | wc -l) inputs in Fuzz/corpus/$TARGET"
