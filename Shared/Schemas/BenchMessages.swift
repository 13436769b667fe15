import OrchardMessaging

/// A request answered by `orchard-bench respond`: measures the request/reply path alone.
public struct BenchEcho: RequestSchema, Equatable {
    public static let topic = "orchard.bench-requests.v1"
    public static let type = "bench.echo"
    public static let version = 1

    public var id: String
    public var payload: String

    public var key: String { id }

    public init(id: String, payload: String) {
        self.id = id
        self.payload = payload
    }

    public struct Reply: Codable, Sendable, Equatable {
        public var id: String
        public var payload: String
        public var responder: String

        public init(id: String, payload: String, responder: String) {
            self.id = id
            self.payload = payload
            self.responder = responder
        }
    }
}

/// An event applied by `orchard-bench apply`: proves at-least-once delivery with idempotent apply.
public struct BenchEvent: MessageSchema, Equatable {
    public static let topic = "orchard.bench-events.v1"
    public static let type = "bench.event"
    public static let version = 1

    public var sequence: Int
    public var stream: String

    public var key: String { "\(stream)-\(sequence % 64)" }

    public init(sequence: Int, stream: String) {
        self.sequence = sequence
        self.stream = stream
    }
}
