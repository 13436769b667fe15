import Hummingbird
import NIOCore

extension Request {
    /// The body, refused with 413 beyond `limit` bytes.
    public func bodyBytes(limit: Int) async throws -> [UInt8] {
        do {
            var buffer = try await body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw HTTPError(.contentTooLarge, message: "body larger than \(limit) bytes")
        }
    }
}
