import Foundation

/// An Activation Lock bypass code (Apple's "Creating and using bypass codes"): 16 random bytes, shown as 26 characters
/// of the alphabet `0123456789ACDEFGHJKLMNPQRTUVWXYZ` (5 bits each) with dashes after the 5th, 10th, 14th, 18th and 22nd
/// (31 characters in all); the escrow key sent to Apple is the hex PBKDF2-HMAC-SHA256 of the 16 bytes, with a salt of four
/// zero bytes, 50,000 iterations, 32 bytes.
public struct BypassCode: Sendable, Equatable {
    public let bytes: [UInt8]

    static let alphabet = Array("0123456789ACDEFGHJKLMNPQRTUVWXYZ")
    static let dashes: Set<Int> = [5, 10, 14, 18, 22]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == 16 else { throw CryptoError.openssl("a bypass code is 16 bytes") }
        self.bytes = bytes
    }

    /// A new server-generated code.
    public static func generate() throws -> BypassCode { try BypassCode(bytes: try SecureRandom.bytes(16)) }

    /// A code as a device reports it (`ActivationLockBypassCode`), dashes optional; nil when it is not one.
    public init?(string: String) {
        let characters = string.uppercased().filter { $0 != "-" }
        guard characters.count == 26 else { return nil }
        var acc: UInt32 = 0, bits = 0, out: [UInt8] = []
        for c in characters {
            guard let value = Self.alphabet.firstIndex(of: c) else { return nil }
            acc = (acc << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((acc >> UInt32(bits)) & 0xFF))
            }
        }
        // 130 bits hold 128: the last character's two low bits are padding and must be zero.
        guard out.count == 16, acc & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        bytes = out
    }

    /// The 31-character form a person types.
    public var string: String {
        var values: [Int] = [], acc: UInt32 = 0, bits = 0
        for byte in bytes {
            acc = (acc << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                values.append(Int((acc >> UInt32(bits)) & 0x1F))
            }
        }
        if bits > 0 { values.append(Int((acc << UInt32(5 - bits)) & 0x1F)) }
        var out = ""
        for (i, v) in values.enumerated() {
            if Self.dashes.contains(i) { out.append("-") }
            out.append(Self.alphabet[v])
        }
        return out
    }

    /// What Apple's `POST /device/activationlock` takes as `escrow_key`.
    public var escrowKey: String { Digest.pbkdf2SHA256(bytes: bytes, salt: [0, 0, 0, 0], iterations: 50_000).hexString }
}
