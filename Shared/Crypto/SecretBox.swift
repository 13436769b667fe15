import COrchardCrypto

/// Encrypts secrets at rest (AES-256-GCM) under the key-encryption key from configuration.
/// `context` is bound as associated data, so a sealed value moved to another row does not open.
public struct SecretBox: Sendable {
    private let key: [UInt8]

    public init(key: [UInt8]) throws {
        guard key.count == 32 else {
            throw CryptoError(operation: "loading key-encryption key", detail: "expected 32 bytes, got \(key.count)")
        }
        self.key = key
    }

    public func seal(_ plaintext: [UInt8], context: String) throws -> [UInt8] {
        let aad = Array(context.utf8)
        return try key.withUnsafeBufferPointer { k in
            try produceBuffer("sealing secret") {
                orc_aead_seal(k.baseAddress, aad, aad.count, plaintext, plaintext.count, $0, $1)
            }
        }
    }

    public func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        let aad = Array(context.utf8)
        return try key.withUnsafeBufferPointer { k in
            try produceBuffer("opening secret (wrong key or context?)") {
                orc_aead_open(k.baseAddress, aad, aad.count, sealed, sealed.count, $0, $1)
            }
        }
    }
}
