import AppleProtocol
import OrchardStorage

/// What an iPhone reports in DeviceInformation (supervision, OS version, model) may make it eligible for
/// watch enrollment, or no longer: the watch flow subscribes to finished commands and reconciles.
struct WatchEligibilityObserver: CommandResultObserver {
    let settings: WatchEnrollmentSettings
    let service: String

    func commandFinished(_ result: CommandResult, requestType: String, enrollment: AuthorizedEnrollment, in c: Connection,
                         journal: inout Journal) throws -> [String] {
        guard requestType == "DeviceInformation", result.status == .acknowledged else { return [] }
        return try settings.reconcile(c, only: enrollment.id, actor: "service:\(service)", journal: &journal).push
    }
}
