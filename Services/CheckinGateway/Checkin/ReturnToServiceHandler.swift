import AppleProtocol
import Hummingbird
import OrchardStorage

/// `ReturnToService` (iOS, visionOS 26): the device's return-to-service configuration (`ADEReturnToService`). A device
/// whose ADE profile has no Return to Service settings here, or that is not supervised, is answered `Enabled` false.
struct ReturnToServiceHandler: DeviceMessageHandler {
    let returnToService: ADEReturnToService

    func apply(_ m: ReturnToServiceCheckin, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws -> ADEReturnToService.Prepared {
        let prepared = try returnToService.prepare(c, enrollmentID: e.id, actor: "device:\(e.id)", requireBootstrapToken: false)
        let c = prepared.configuration
        journal.activity(actor: "device:\(e.id)", "ade.return-to-service.requested", device: e.id, outcome: c.enabled ? .succeeded : .refused,
                         detail: c.enabled
                            ? "enabled: Wi-Fi profile \(c.wifiProfile == nil ? "none" : "sent"), bootstrap token \(c.bootstrapToken == nil ? "none (full erasure)" : "sent")"
                            : "not enabled: its ADE profile has no Return to Service settings, or it is not supervised")
        return prepared
    }

    func respond(_ m: ReturnToServiceCheckin, to e: AuthorizedEnrollment, applied: ADEReturnToService.Prepared,
                 correlationID: String) async throws -> DeviceAnswer {
        let configuration = try await returnToService.complete(applied, udid: e.id, correlationID: correlationID)
        return DeviceAnswer(response: bytesResponse(configuration.answer, contentType: "application/xml"))
    }
}
