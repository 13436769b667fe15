import COrchardCrypto
import Foundation

/// Hashes used for token storage and fingerprints, HMACs and PBKDF2: OpenSSL's (libcrypto is linked for CMS anyway;
/// swift-crypto and its second copy of BoringSSL left the build, docs/decisions.md).
public enum Digest {
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 32
        _ = orc_digest("SHA256", data, data.count, &out, &length)
        return out
    }

    /// HMAC-SHA1: only where a protocol requires it (OAuth 1.0a signatures of ABM's `/session`).
    public static func hmacSHA1(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 20
        _ = orc_hmac("SHA1", key, key.count, data, data.count, &out, &length)
        return out
    }

    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        _ = orc_hmac_sha256(key, key.count, data, data.count, &out)
        return out
    }

    /// PBKDF2-HMAC-SHA256 of a password (local accounts): 32 bytes.
    public static func pbkdf2SHA256(password: String, salt: [UInt8], iterations: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let length = password.utf8.count
        _ = password.withCString { orc_pbkdf2_sha256($0, length, salt, salt.count, Int32(iterations), &out, 32) }
        return out
    }

    /// PBKDF2-HMAC-SHA256 of raw bytes (which may hold zeros): 32 bytes.
    public static func pbkdf2SHA256(bytes: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                _ = orc_pbkdf2_sha256(chars.baseAddress, chars.count, salt, salt.count, Int32(iterations), &out, 32)
            }
        }
        return out
    }

    /// Compares two byte strings in time that depends only on their lengths.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

/// Cryptographically secure random bytes from OpenSSL's DRBG.
public enum SecureRandom {
    public static func bytes(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard orc_random_bytes(&out, count) == 1 else { throw CryptoError.openssl("random generation") }
        return out
    }

    /// A URL-safe random token of `byteCount` bytes (default 256 bits).
    public static func token(byteCount: Int = 32) throws -> String {
        base64URL(try bytes(byteCount))
    }
}

extension Array where Element == UInt8 {
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The bytes of base64url text (padding optional); nil when it is not base64url or longer than 16 KiB.
public func fromBase64URL<S: StringProtocol>(_ text: S) -> [UInt8]? {
    guard text.count <= 16_384 else { return nil }
    var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while s.count % 4 != 0 { s += "=" }
    return Data(base64Encoded: s).map(Array.init)
}

/// Base64 without padding, with the URL-safe alphabet.
public func base64URL(_ bytes: [UInt8]) -> String {
    var s = Data(bytes).base64EncodedString()
    s = s.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    while s.hasSuffix("=") { s.removeLast() }
    return s
}
