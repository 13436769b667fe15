import OrchardCore
import AppleProtocol
import Foundation
import Hummingbird
import OrchardCrypto
import OrchardSchemas
import OrchardMessaging
import OrchardStorage

extension AdminRoutes {
    /// `/admin/v1/signing-identities`: profile-signer's CA and signing certificate (it answers over Kafka).
    func addSigningIdentityRoutes(to admin: RouterGroup<GatewayContext>) {
        admin.get("signing-identities") { _, context -> DescribeSigningIdentities.Reply in
            try await requests.request(DescribeSigningIdentities(), timeout: requestTimeout, correlationID: context.correlationID)
        }
    }
}
