import COrchardCrypto

/// A failure inside OpenSSL, with what Orchard was doing and OpenSSL's own explanation.
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let detail: String

    public var description: String { "\(operation) failed: \(detail)" }

    public init(operation: String, detail: String) {
        self.operation = operation
        self.detail = detail
    }

    /// Captures and clears OpenSSL's error queue.
    static func openssl(_ operation: String) -> CryptoError {
        guard let message = orc_error_string() else { return CryptoError(operation: operation, detail: "unknown") }
        defer { orc_free(message) }
        return CryptoError(operation: operation, detail: String(cString: message))
    }
}

/// Moves an OpenSSL-allocated buffer into a Swift array and frees it.
func takeBuffer(_ pointer: UnsafeMutablePointer<UInt8>?, _ length: Int) -> [UInt8] {
    guard let pointer else { return [] }
    defer { orc_free(pointer) }
    return Array(UnsafeBufferPointer(start: pointer, count: length))
}

/// Moves an OpenSSL-allocated C string into a Swift string and frees it.
func takeString(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    defer { orc_free(pointer) }
    return String(cString: pointer)
}

/// Calls an OpenSSL function that produces a buffer through out-parameters.
func produceBuffer(
    _ operation: String,
    _ body: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>) -> Int32
) throws -> [UInt8] {
    var out: UnsafeMutablePointer<UInt8>?
    var length = 0
    guard body(&out, &length) == 1 else { throw CryptoError.openssl(operation) }
    return takeBuffer(out, length)
}
