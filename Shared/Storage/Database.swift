import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// A pool of PostgreSQL connections for one service schema. Statements run on a dedicated thread
/// pool sized to the connection count, so blocking libpq calls never touch an event loop.
public final class Database: Sendable {
    public let schema: String
    private let conninfo: String
    private let threads: NIOThreadPool
    private let state: NIOLockedValueBox<PoolState>
    private let maxConnections: Int

    private struct PoolState {
        var idle: [Connection] = []
        var open = 0
        var waiters: [CheckedContinuation<Connection?, any Error>] = []
        var closed = false
    }

    /// - Parameters:
    ///   - conninfo: a libpq connection string or `postgres://` URL.
    ///   - schema: the service's own schema; it becomes the connections' search_path.
    public init(conninfo: String, schema: String, maxConnections: Int = 8) throws {
        guard schema.range(of: "^[a-z_][a-z0-9_]*$", options: .regularExpression) != nil else {
            throw PostgresError(message: "invalid schema name \(schema)", sqlState: nil)
        }
        self.conninfo = conninfo
        self.schema = schema
        self.maxConnections = maxConnections
        self.threads = NIOThreadPool(numberOfThreads: maxConnections)
        self.threads.start()
        self.state = NIOLockedValueBox(PoolState())
    }

    /// Runs body with a connection on the pool's threads.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let connection = try await checkout()
        do {
            let value = try await threads.runIfActive { try body(connection) }
            checkin(connection)
            return value
        } catch {
            checkin(connection)
            throw error
        }
    }

    /// Holds one connection for `body`, which may await other work between its statements (`Held.run`). The
    /// connection goes back to the pool when body returns; a transaction body left open is rolled back first.
    public func withHeldConnection<T: Sendable>(_ body: (Held) async throws -> T) async throws -> T {
        let connection = try await checkout()
        let held = Held(connection: connection, threads: threads)
        do {
            let value = try await body(held)
            await held.closeOpenTransaction()
            checkin(connection)
            return value
        } catch {
            await held.closeOpenTransaction()
            checkin(connection)
            throw error
        }
    }

    /// A connection held across awaits by `withHeldConnection`. Its statements run on the pool's threads.
    public struct Held: Sendable {
        let connection: Connection
        let threads: NIOThreadPool

        /// Runs body with the held connection on the pool's threads.
        public func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
            let connection = self.connection
            return try await threads.runIfActive { try body(connection) }
        }

        /// Rolls back a transaction the body began and did not end, so the pool never hands one out.
        func closeOpenTransaction() async {
            let connection = self.connection
            _ = try? await threads.runIfActive { connection.rollbackIfInTransaction() }
        }
    }

    /// Runs one statement.
    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLValue] = []) async throws -> [Row] {
        try await withConnection { try $0.query(sql, parameters) }
    }

    /// Runs body in a transaction: all its statements commit together or not at all.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await withConnection { try $0.transaction(body) }
    }

    /// Whether a statement round trip works now (for /readyz).
    public func ping() async -> Bool {
        (try? await query("SELECT 1")) != nil
    }

    /// Closes idle connections and refuses new work.
    public func shutdown() async {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<Connection?, any Error>] in
            s.closed = true
            s.idle.removeAll()
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        waiters.forEach { $0.resume(throwing: PostgresError(message: "database pool closed", sqlState: nil)) }
        try? await threads.shutdownGracefully()
    }

    private enum Checkout { case ready(Connection), create, wait }

    private func checkout() async throws -> Connection {
        let decision: Checkout = try state.withLockedValue { s in
            if s.closed { throw PostgresError(message: "database pool closed", sqlState: nil) }
            if let c = s.idle.popLast() { return .ready(c) }
            if s.open < maxConnections { s.open += 1; return .create }
            return .wait
        }
        switch decision {
        case .ready(let c): return c
        case .create: return try await connect()
        case .wait:
            let handed: Connection? = try await withCheckedThrowingContinuation { continuation in
                state.withLockedValue { $0.waiters.append(continuation) }
            }
            // nil means a slot was freed by a broken connection: open a new one in its place.
            if let handed { return handed }
            return try await connect()
        }
    }

    private func connect() async throws -> Connection {
        let conninfo = self.conninfo, schema = self.schema
        do {
            return try await threads.runIfActive { try Connection(conninfo: conninfo, searchPath: schema) }
        } catch {
            releaseSlot()
            throw error
        }
    }

    private func checkin(_ connection: Connection) {
        guard connection.isHealthy else { return releaseSlot() }
        let waiter = state.withLockedValue { s -> CheckedContinuation<Connection?, any Error>? in
            if s.closed { s.open -= 1; return nil }
            if s.waiters.isEmpty { s.idle.append(connection); return nil }
            return s.waiters.removeFirst()
        }
        waiter?.resume(returning: connection)
    }

    private func releaseSlot() {
        let waiter = state.withLockedValue { s -> CheckedContinuation<Connection?, any Error>? in
            if s.waiters.isEmpty { s.open -= 1; return nil }
            return s.waiters.removeFirst()
        }
        waiter?.resume(returning: nil)
    }
}

