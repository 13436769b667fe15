import AppleProtocol
import Foundation
import NIOConcurrencyHelpers
import OrchardTestSupport

/// Check-in throughput of account-driven enrollments (the bearer validated on every request) against as many plain
/// ones, on the same stack, alternated twice: TokenUpdate check-ins, pre-signed. The enrollments themselves are
/// `orchard-sim load`'s business (Deploy/bench-enrollment.sh byod runs both); here they are only the set-up.
/// `mac`: account-driven Macs (User Enrollment), their user channel (the bearer validated) against their own device
/// channel (no bearer), the same TokenUpdate check-in on each.
struct BearerCheckinBenchmark {
    let environment: SimulatorEnvironment
    let devices: Int
    let concurrency: Int
    var mac = false

    func run() async throws {
        let flows = try await EnrollmentFlows(environment: environment, narrator: .silent)
        let accounts = NIOLockedValueBox<[SimulatedDevice]>([]), plain = NIOLockedValueBox<[SimulatedDevice]>([])
        _ = try await LoadPatterns.closedLoop(0..<devices, concurrency: concurrency) { [mac] _ in
            let account = try await flows.enrollAccount(.byod, platform: mac ? "macOS" : "iOS")
            let device = mac ? account : try await flows.enrollThroughLink(platform: "iOS")
            accounts.withLockedValue { $0.append(account) }
            plain.withLockedValue { $0.append(device) }
        }
        let rounds = 5
        func signedUpdates(_ fleet: [SimulatedDevice], userChannel: Bool) throws -> [(SimulatedDevice, SimulatedDevice.Presigned, Bool)] {
            try fleet.map { ($0, try $0.presign(userChannel ? $0.userTokenUpdateMessage : $0.tokenUpdateMessage), userChannel) }
        }
        let accountSigned = try signedUpdates(accounts.withLockedValue { $0 }, userChannel: mac)
        let plainSigned = try signedUpdates(plain.withLockedValue { $0 }, userChannel: false)
        func measure(_ items: [(SimulatedDevice, SimulatedDevice.Presigned, Bool)]) async throws -> Double {
            let total = items.count * rounds
            let seconds = try await LoadPatterns.closedLoop(0..<total, concurrency: concurrency) { i in
                let (device, message, userChannel) = items[i % items.count]
                let r = userChannel ? try await device.sendOnUserChannel(message, to: device.checkInURL, contentType: CheckinMessage.contentType)
                    : try await device.send(message, to: device.checkInURL, contentType: CheckinMessage.contentType)
                guard r.status == 200 else { throw SimulatorError("check-in → \(r.status) \(r.text.prefix(200))") }
            }
            return Double(total) / seconds
        }
        print(mac ? "Mac check-in throughput, TokenUpdate, \(devices) account-driven Macs, user channel (bearer) vs device channel (none), \(rounds) per channel, \(concurrency) at a time:"
                  : "check-in throughput, TokenUpdate, \(devices) enrollments each, \(rounds) per enrollment, \(concurrency) at a time:")
        var account: [Double] = [], plainRates: [Double] = []
        for _ in 0..<2 {
            account.append(try await measure(accountSigned))
            plainRates.append(try await measure(plainSigned))
        }
        let a = account.reduce(0, +) / 2, p = plainRates.reduce(0, +) / 2
        print(String(format: mac ? "  user channel (bearer validated): %@ check-ins/s; device channel: %@ check-ins/s; user/device = %.1f%%"
                                 : "  account-driven (bearer validated): %@ check-ins/s; plain: %@ check-ins/s; account-driven/plain = %.1f%%",
                     account.map { String(format: "%.0f", $0) }.joined(separator: ", "),
                     plainRates.map { String(format: "%.0f", $0) }.joined(separator: ", "), a / p * 100))
    }
}
