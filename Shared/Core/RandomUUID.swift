#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Random (version 4) UUID strings from glibc's `arc4random_buf` (a ChaCha20 generator seeded and
/// reseeded by the kernel, no system call per id). Foundation's `UUID()` opens and reads
/// `/dev/urandom` each time on Linux (about 2% of the gateway's CPU per check-in, which makes about
/// eight identifiers); message ids, correlation ids and command UUIDs come from here instead.
public enum RandomUUID {
    /// Lower-case, as Orchard writes message and entry ids.
    public static func lowercased() -> String { make(uppercase: false) }

    /// Upper-case, as Apple writes CommandUUID and PayloadUUID.
    public static func uppercased() -> String { make(uppercase: true) }

    private static func make(uppercase: Bool) -> String {
        var bytes: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &bytes) { arc4random_buf($0.baseAddress!, 16) }
        return withUnsafeMutableBytes(of: &bytes) { raw -> String in
            raw[6] = (raw[6] & 0x0F) | 0x40  // version 4
            raw[8] = (raw[8] & 0x3F) | 0x80  // RFC 4122 variant
            let digits: StaticString = uppercase ? "0123456789ABCDEF" : "0123456789abcdef"
            return String(unsafeUninitializedCapacity: 36) { out in
                var o = 0
                for i in 0..<16 {
                    if i == 4 || i == 6 || i == 8 || i == 10 { out[o] = 0x2D; o += 1 }
                    out[o] = digits.utf8Start[Int(raw[i] >> 4)]
                    out[o + 1] = digits.utf8Start[Int(raw[i] & 0x0F)]
                    o += 2
                }
                return o
            }
        }
    }
}
