import Foundation
import Hummingbird
import OrchardStorage

/// What a device request produced: the HTTP answer, and the enrollments to push once it committed.
struct DeviceAnswer: Sendable {
    var response: Response
    var push: [String] = []
}

/// Handles one message type for an enrollment the pipeline already authenticated and authorized.
/// Handlers hold no SQL and no transactions: `apply` runs inside the pipeline's transaction (the one
/// that authorized the enrollment) through the stores, and what it adds to the journal
/// commits with it; `respond` runs after the commit (calls to other services go there).
protocol DeviceMessageHandler<Message>: Sendable {
    associatedtype Message: Sendable
    associatedtype Applied: Sendable

    var access: EnrollmentAccess { get }
    /// Whether `apply` writes the enrollment row's `last_seen_at` itself (else the pipeline does).
    var recordsLastSeen: Bool { get }
    /// Checks that need no enrollment (and may wait), before the transaction opens.
    func check(_ message: Message) async throws
    /// A statement that needs only the message and the request's credential, sent in the round trip that reads the
    /// enrollment for the authorization, so it costs none of its own. It runs before the authorization is decided:
    /// it must repeat the binding (enrollment and identity) in its own WHERE clause, and a refusal rolls it back with
    /// the transaction. Its rows reach `apply` as `AuthorizedEnrollment.leadingRows`. Not for Authenticate.
    func leadingStatement(_ message: Message, enrollmentID: String, credential: DeviceCredential) -> (String, [SQLValue])?
    func apply(_ message: Message, to enrollment: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws -> Applied
    func respond(_ message: Message, to enrollment: AuthorizedEnrollment, applied: Applied,
                 correlationID: String) async throws -> DeviceAnswer
    /// The error the device is answered with when the transaction failed with `error`: a statement `apply` sent
    /// with the COMMIT fails there, outside `apply`.
    func transactionFailed(_ error: any Error) -> any Error
}

extension DeviceMessageHandler {
    var access: EnrollmentAccess { .active }
    var recordsLastSeen: Bool { false }
    func check(_ message: Message) async throws {}
    func leadingStatement(_ message: Message, enrollmentID: String, credential: DeviceCredential) -> (String, [SQLValue])? { nil }
    func transactionFailed(_ error: any Error) -> any Error { error }
}

extension DeviceMessageHandler where Applied == Void {
    func respond(_ message: Message, to enrollment: AuthorizedEnrollment, applied: Void,
                 correlationID: String) async throws -> DeviceAnswer {
        DeviceAnswer(response: emptyResponse())
    }
}
