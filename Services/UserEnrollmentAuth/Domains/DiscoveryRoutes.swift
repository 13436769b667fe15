import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OrchardServiceKit

/// Service discovery for account-driven enrollment (REFERENCE §5.1): the device splits the Managed Apple Account
/// at its last `@` and asks `GET https://<domain>/.well-known/com.apple.remotemanagement?user-identifier=…&model-family=…`.
/// A known domain answers `{"Servers":[{"Version","BaseURL"}]}`; anything else `403` with
/// `com.apple.well-known.failed` (the device stops there, iOS 17.5+). An organisation serves this from its mail
/// domain by proxying or redirecting here with the query kept (the device does not re-append it).
struct DiscoveryRoutes: Sendable {
    let domains: ManagedDomains
    let activity: AccountActivity
    /// The terminator's client-address header (`ORCHARD_FORWARDED_FOR_HEADER`), for the activity budget.
    let forwardedFor: HTTPField.Name?
    /// Activity entries per client address per minute (the answers themselves are never limited).
    let budget = ActivityBudget(limit: 30)

    static let modelFamilies: Set<String> = ["AppleTV", "iPad", "iPhone", "Mac", "RealityDevice", "Watch"]

    func add(to router: Router<AccountRequestContext>) {
        router.get(".well-known/com.apple.remotemanagement") { request, context -> Response in
            let query = request.uri.queryParameters
            let recorded = budget.allow(context.clientAddress(request, forwardedFor: forwardedFor))
            guard let identifier = query["user-identifier"].map(String.init), identifier.count <= 320,
                  let at = identifier.lastIndex(of: "@"), at != identifier.startIndex else {
                return failed("user-identifier must be a Managed Apple Account (name@domain)")
            }
            if let family = query["model-family"].map(String.init), !Self.modelFamilies.contains(family) {
                return failed("unknown model-family \(family.prefix(32))")
            }
            guard let domain = try? ManagedDomains.canonical(String(identifier[identifier.index(after: at)...])),
                  let known = try await domains.find(domain) else {
                if recorded {
                    try await activity.record("account.discovery", actor: "service:\(activity.service)", outcome: .refused,
                                              detail: "\(identifier.prefix(320)): not a domain of this organisation", correlationID: context.correlationID)
                }
                return failed("this organisation does not enroll devices for \(identifier[identifier.index(after: at)...].prefix(253))")
            }
            if recorded {
                try await activity.record("account.discovery", actor: "service:\(activity.service)", outcome: .succeeded,
                                          detail: "\(identifier) (\(query["model-family"].map(String.init) ?? "no model family")): \(known.view.mode)",
                                          correlationID: context.correlationID)
            }
            return jsonResponse(.ok, object: ["Servers": [["Version": known.view.mode, "BaseURL": known.view.baseURL]]], noStore: true)
        }
    }

    /// `com.apple.well-known.failed`: the device shows `message` where it can; `description` is for logs.
    private func failed(_ description: String) -> Response {
        jsonResponse(.forbidden, object: [
            "code": "com.apple.well-known.failed", "description": description,
            "message": "This account cannot enroll a device with this organisation. Contact your IT department.",
        ])
    }
}
