import AppleProtocol
import OrchardStorage

/// `DeclarativeManagement`: the declarative-management endpoints carried over check-in.
struct DeclarativeManagementHandler: DeviceMessageHandler {
    let declarations: DeclarationService

    func apply(_ m: DeclarativeManagementCheckin, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws {}

    func respond(_ m: DeclarativeManagementCheckin, to e: AuthorizedEnrollment, applied: Void,
                 correlationID: String) async throws -> DeviceAnswer {
        DeviceAnswer(response: try await declarations.respond(to: m, enrollmentID: e.id, correlationID: correlationID))
    }
}
