import AppleProtocol
import OrchardCrypto
import OrchardSchemas
import OrchardStorage

/// `TokenUpdate`: push credentials, after installation and whenever they change. The first one enrolls
/// the device and queues DeviceInformation. https://developer.apple.com/documentation/devicemanagement/token-update
struct TokenUpdateHandler: DeviceMessageHandler {
    let topic: PushTopicCheck
    let secrets: SecretBox
    let service: String
    /// Flows that act when a device enrolls (ADE setup).
    var observers: [any EnrollmentObserver] = []

    var recordsLastSeen: Bool { true }

    func check(_ m: TokenUpdate) async throws { try await topic.check(m.topic) }

    /// Whether this TokenUpdate enrolled the device.
    func apply(_ m: TokenUpdate, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws -> Bool {
        let unlock = try m.unlockToken.map { try secrets.seal($0, context: "unlock/\(e.id)") }
        try EnrollmentStore.tokenUpdate(c, id: e.id, fingerprint: e.credential.fingerprint, m, sealedUnlockToken: unlock)
        guard e.status != .enrolled else {
            journal.event(DeviceEvent(kind: .tokenUpdated, enrollmentID: e.id))
            return false
        }
        // A User Enrollment (no UDID) may not be asked for its UDID, serial number or IMEI.
        let queries = e.record?.account?.mode == AccountEnrollmentMode.userEnrollment.rawValue ? MDMCommand.userEnrollmentQueries : MDMCommand.standardQueries
        try CommandQueue.enqueueForRequestingDevice(c, MDMCommand.deviceInformation(queries: queries), enrollmentID: e.id,
                                                    requestedBy: "service:\(service)", journal: &journal)
        journal.event(DeviceEvent(kind: .enrolled, enrollmentID: e.id,
                                  details: ["awaitingConfiguration": String(m.awaitingConfiguration)]))
        let phone = e.record?.pairedWith
        journal.activity(actor: "device:\(e.id)", phone == nil ? "device.enrolled" : "watch.enrolled", device: e.id,
                         related: phone.map { [$0] } ?? [])
        for observer in observers { _ = try observer.enrolled(m, enrollment: e, in: c, journal: &journal) }
        return true
    }

    func respond(_ m: TokenUpdate, to e: AuthorizedEnrollment, applied enrolled: Bool, correlationID: String) async throws -> DeviceAnswer {
        DeviceAnswer(response: emptyResponse(), push: enrolled ? [e.id] : [])
    }
}
