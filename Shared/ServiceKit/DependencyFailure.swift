import Foundation
import HTTPTypes
import Hummingbird
import OrchardMessaging
import OrchardStorage

extension HTTPField.Name {
    public static let retryAfter = HTTPField.Name("Retry-After")!
}

/// The one mapping from a failure of something a service depends on to the HTTP answer its client gets:
/// - another service gave no reply in time, the database is briefly away, or background work is queued full: 503 with
///   `Retry-After`
///   (the client keeps whatever it was given, and retries);
/// - another service refused the request: that refusal's own status and message (a 503 with `Retry-After`: the
///   other service's own dependency was away);
/// - PostgreSQL refused a value from the request (SQLSTATE class 22): 400.
/// `ObservabilityMiddleware` applies it to every error a route lets through; a route catches these
/// errors itself only when it must do something first (give a link use back, answer in Apple's format).
public enum DependencyFailure {
    public static let retryAfterSeconds = 5

    public static func httpError(for error: any Error) -> HTTPError? {
        switch error {
        case let timedOut as RequestTimedOut:
            return unavailable("no reply to \(timedOut.type) in time; retry shortly")
        case let refused as RequestRefused where refused.httpStatus == 503:
            return unavailable(refused.message)
        case let refused as RequestRefused:
            return HTTPError(HTTPResponse.Status(code: refused.httpStatus), message: refused.message)
        case is BackgroundCPU.Busy:
            return unavailable("busy: too much work of this kind is waiting; retry shortly")
        case let database as PostgresError where database.isUnavailable:
            return unavailable("the database is unavailable; retry shortly")
        case let database as PostgresError where database.sqlState?.hasPrefix("22") == true:
            // Class 22, data exception: a value from the request that PostgreSQL cannot store (a NUL in
            // text, a number out of range). The routes validate their input; this keeps a missed case a 400.
            return HTTPError(.badRequest, message: "a value in the request is out of range or malformed")
        default:
            return nil
        }
    }

    public static func unavailable(_ message: String) -> HTTPError {
        HTTPError(.serviceUnavailable, headers: [.retryAfter: String(retryAfterSeconds)], message: message)
    }
}

extension Response {
    /// `Retry-After` on an answer a route renders itself (a sign-in page's 503 while the directory or the password
    /// checker is away, its 429 while an account is locked): the same header and default as `DependencyFailure`'s.
    public mutating func retryAfter(seconds: Int = DependencyFailure.retryAfterSeconds) {
        headers[.retryAfter] = String(max(1, seconds))
    }

    /// Until `date` (at least a second).
    public mutating func retryAfter(until date: Date) {
        retryAfter(seconds: Int(date.timeIntervalSinceNow.rounded(.up)))
    }
}
