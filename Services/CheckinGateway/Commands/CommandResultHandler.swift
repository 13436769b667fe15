import AppleProtocol
import Foundation
import OrchardSchemas
import OrchardStorage

/// Something that reacts when a device finishes a command, inside the transaction that recorded the
/// result (a flow subscribes here instead of the command channel calling into it).
protocol CommandResultObserver: Sendable {
    /// Returns the enrollments to push once the transaction committed.
    func commandFinished(_ result: CommandResult, requestType: String, enrollment: AuthorizedEnrollment, in c: Connection,
                         journal: inout Journal) throws -> [String]
}

/// The command channel (`PUT` ServerURL): records the device's result for the command it was sent and
/// answers with the next one, or an empty body when the queue is empty.
struct CommandResultHandler: DeviceMessageHandler {
    let observers: [any CommandResultObserver]

    struct Applied: Sendable {
        /// The next command (its `plist`), read once the transaction committed.
        var next: PendingRows
        var push: [String]
    }

    /// The result is recorded in the round trip that reads the enrollment.
    func leadingStatement(_ result: CommandResult, enrollmentID: String, credential: DeviceCredential) -> (String, [SQLValue])? {
        CommandQueue.recordStatement(enrollmentID: enrollmentID, fingerprint: credential.fingerprint, result: result)
    }

    func apply(_ result: CommandResult, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws -> Applied {
        var push: [String] = []
        if let requestType = CommandQueue.finished(e.leadingRows, result: result) {
            try announce(c, result: result, requestType: requestType, enrollment: e, journal: &journal)
            for observer in observers {
                push += try observer.commandFinished(result, requestType: requestType, enrollment: e, in: c, journal: &journal)
            }
        }
        let next = try CommandQueue.next(c, enrollmentID: e.id, newSession: result.status == .idle)
        return Applied(next: next, push: push.filter { $0 != e.id })
    }

    func respond(_ result: CommandResult, to e: AuthorizedEnrollment, applied: Applied, correlationID: String) async throws -> DeviceAnswer {
        guard let next = applied.next.rows.first?.bytes("plist") else { return DeviceAnswer(response: emptyResponse(), push: applied.push) }
        return DeviceAnswer(response: bytesResponse(next, contentType: "application/xml"), push: applied.push)
    }

    private func announce(_ c: Connection, result: CommandResult, requestType: String, enrollment e: AuthorizedEnrollment,
                          journal: inout Journal) throws {
        let uuid = result.commandUUID ?? ""
        journal.event(DeviceEvent(kind: .commandCompleted, enrollmentID: e.id,
                                  details: ["commandUUID": uuid, "requestType": requestType, "status": result.status.rawValue]))
        let failed = result.status != .acknowledged
        let chain = result.errorSummary
        journal.activity(actor: "device:\(e.id)", failed ? "command.failed" : "command.acknowledged", device: e.id,
                         outcome: failed ? .failed : .succeeded, detail: "\(requestType) \(uuid)\(chain)")
        guard result.status == .acknowledged else { return }
        if requestType == "DeviceInformation", let information = DeviceInformationResult(result) {
            try EnrollmentStore.recordDeviceInformation(c, id: e.id, information)
            var details: [String: String] = [:]
            details["SerialNumber"] = information.serialNumber
            details["OSVersion"] = information.osVersion
            details["ProductName"] = information.productName
            details["Model"] = information.model
            if let supervised = information.isSupervised { details["IsSupervised"] = String(supervised) }
            journal.event(DeviceEvent(kind: .informationUpdated, enrollmentID: e.id, details: details))
        }
        if requestType == "RemoveProfile", let identifier = e.record?.profileIdentifier,
           let removed = try CommandQueue.plist(c, uuid: uuid),
           (try? MDMCommand(plist: removed))?.parameters["Identifier"]?.string == identifier {
            try EnrollmentStore.setStatus(c, id: e.id, fingerprint: e.credential.fingerprint, .unenrolled)
            journal.event(DeviceEvent(kind: .unenrolled, enrollmentID: e.id))
            journal.activity(actor: "device:\(e.id)", "device.unenrolled", device: e.id)
        }
    }
}

extension CommandResult {
    /// The first error of the device's `ErrorChain` for the log, as " (domain code: description)"; empty without one.
    var errorSummary: String {
        errorChain.first.map { e in
            " (\(e["ErrorDomain"]?.string ?? "") \(e["ErrorCode"]?.integer.map(String.init) ?? ""): \(e["USEnglishDescription"]?.string ?? e["LocalizedDescription"]?.string ?? ""))"
        } ?? ""
    }
}
