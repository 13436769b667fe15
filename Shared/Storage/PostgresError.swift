/// A failure reported by PostgreSQL or libpq, with the SQLSTATE when the server gave one.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let sqlState: String?

    public init(message: String, sqlState: String?) {
        self.message = message
        self.sqlState = sqlState
    }

    public var description: String { sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message }

    /// 23505: a unique constraint refused the row.
    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// The database could not be reached or is restarting (no SQLSTATE: libpq lost or could not open the
    /// connection; class 08 connection exceptions; 57P01-03 shutdown or start-up; 53300 too many
    /// connections). The request may succeed when retried; nothing was committed by it.
    public var isUnavailable: Bool {
        guard let state = sqlState else { return true }
        return state.hasPrefix("08") || ["57P01", "57P02", "57P03", "53300"].contains(state)
    }
}
