import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardMessages
import OrchardMessaging
import OrchardStorage

/// The command channel (`PUT` ServerURL): takes the device's result for the previous command and
/// answers with the next one, or an empty body when the queue is empty.
struct CommandChannel: Sendable {
    let database: Database
    let service: String
    let watchEnrollment: WatchEnrollmentSettings
    let pusher: APNsPusher

    func handle(_ result: CommandResult, signer: Certificate, correlationID: String) async throws -> Response {
        guard let id = result.identity.enrollmentKey else { throw refuse(.badRequest, "missing UDID or EnrollmentID") }
        let fingerprint = signer.sha256Fingerprint
        let (next, push) = try await database.transaction { c -> ([UInt8]?, [String]) in
            _ = try EnrollmentAccess.authorize(c, enrollmentID: id, fingerprint: fingerprint)
            var push: [String] = []
            if let requestType = try CommandQueue.record(c, enrollmentID: id, result: result) {
                var journal = Journal(correlationID: correlationID)
                try announce(c, result: result, requestType: requestType, enrollmentID: id, journal: &journal)
                // What the device reported may make it eligible for watch enrollment (or no longer).
                if requestType == "DeviceInformation" && result.status == .acknowledged {
                    push = try watchEnrollment.reconcile(c, only: id, actor: "service:\(service)", journal: &journal).push
                }
                try journal.write(c)
            }
            return (try CommandQueue.next(c, enrollmentID: id, newSession: result.status == .idle), push)
        }
        if !push.isEmpty { await pusher.push(push.filter { $0 != id }) }
        guard let next else { return emptyResponse() }
        return bytesResponse(next, contentType: "application/xml")
    }

    private func announce(_ c: Connection, result: CommandResult, requestType: String, enrollmentID: String,
                          journal: inout Journal) throws {
        let uuid = result.commandUUID ?? ""
        journal.event(DeviceEvent(kind: .commandCompleted, enrollmentID: enrollmentID,
                                  details: ["commandUUID": uuid, "requestType": requestType, "status": result.status.rawValue]))
        let failed = result.status != .acknowledged
        let chain = result.errorChain.first.map { e in
            " (\(e["ErrorDomain"]?.string ?? "") \(e["ErrorCode"]?.integer.map(String.init) ?? ""): \(e["USEnglishDescription"]?.string ?? e["LocalizedDescription"]?.string ?? ""))"
        } ?? ""
        journal.activity(actor: "device:\(enrollmentID)", failed ? "command.failed" : "command.acknowledged", device: enrollmentID,
                         outcome: failed ? .failed : .succeeded, detail: "\(requestType) \(uuid)\(chain)")
        if requestType == "DeviceInformation", result.status == .acknowledged,
           let answers = result.values["QueryResponses"]?.dictionary {
            try c.query("""
                UPDATE enrollments SET serial_number = COALESCE($2, serial_number), os_version = COALESCE($3, os_version),
                    build_version = COALESCE($4, build_version), product_name = COALESCE($5, product_name),
                    model = COALESCE($6, model), device_name = COALESCE($7, device_name), supervised = COALESCE($8, supervised)
                WHERE id = $1
                """, [.text(enrollmentID), .optionalText(answers["SerialNumber"]?.string), .optionalText(answers["OSVersion"]?.string),
                      .optionalText(answers["BuildVersion"]?.string), .optionalText(answers["ProductName"]?.string),
                      .optionalText(answers["Model"]?.string ?? answers["ModelName"]?.string),
                      .optionalText(answers["DeviceName"]?.string), answers["IsSupervised"]?.bool.map(SQLValue.bool) ?? .null])
            var details: [String: String] = [:]
            for key in ["SerialNumber", "OSVersion", "ProductName", "Model"] { details[key] = answers[key]?.string }
            if let supervised = answers["IsSupervised"]?.bool { details["IsSupervised"] = String(supervised) }
            journal.event(DeviceEvent(kind: .informationUpdated, enrollmentID: enrollmentID, details: details))
        }
        if requestType == "RemoveProfile", result.status == .acknowledged,
           let identifier = try c.query("SELECT mdm_payload_identifier FROM enrollments WHERE id = $1", [.text(enrollmentID)])
            .first?.string("mdm_payload_identifier"),
           let removed = try c.query("SELECT plist FROM commands WHERE uuid = $1", [.text(uuid)]).first?.bytes("plist"),
           (try? MDMCommand(plist: removed))?.parameters["Identifier"]?.string == identifier {
            try c.query("UPDATE enrollments SET status = 'unenrolled' WHERE id = $1", [.text(enrollmentID)])
            journal.event(DeviceEvent(kind: .unenrolled, enrollmentID: enrollmentID))
            journal.activity(actor: "device:\(enrollmentID)", "device.unenrolled", device: enrollmentID)
        }
    }
}
