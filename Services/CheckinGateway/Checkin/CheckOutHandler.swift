import AppleProtocol
import OrchardSchemas
import OrchardStorage

/// `CheckOut`: the MDM profile was removed (sent only when the profile asks, and best effort).
struct CheckOutHandler: DeviceMessageHandler {
    var access: EnrollmentAccess { .activeOrCheckedOut }

    func apply(_ m: CheckOut, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws {
        try EnrollmentStore.setStatus(c, id: e.id, fingerprint: e.credential.fingerprint, .checkedOut)
        journal.event(DeviceEvent(kind: .checkedOut, enrollmentID: e.id))
        journal.activity(actor: "device:\(e.id)", "device.checked-out", device: e.id)
    }
}
