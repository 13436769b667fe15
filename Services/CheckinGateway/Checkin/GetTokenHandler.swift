import AppleProtocol
import OrchardStorage

/// One `TokenServiceType` a device may ask a token of with `GetToken`.
protocol TokenService: Sendable {
    /// In the request's transaction: why this enrollment may not have a token now; nil when it may.
    func refusal(for m: GetToken, from e: AuthorizedEnrollment, in c: Connection) throws -> String?
    /// After the commit: the `TokenData`, or a refusal (logged) when `refusal` gave a reason.
    func tokenData(for m: GetToken, from e: AuthorizedEnrollment, refusal: String?, correlationID: String) async throws -> [UInt8]
}

/// `GetToken` (iOS 17+): dispatched by `TokenServiceType` to the token service that serves it; an
/// unknown type is a 400. https://developer.apple.com/documentation/devicemanagement/get-token
struct GetTokenHandler: DeviceMessageHandler {
    let services: [String: any TokenService]

    struct Applied: Sendable {
        let service: any TokenService
        /// Why this enrollment may not have a token now; nil when it may.
        let refusal: String?
    }

    func apply(_ m: GetToken, to e: AuthorizedEnrollment, in c: Connection, journal: inout Journal) throws -> Applied {
        guard let service = services[m.tokenServiceType] else {
            throw refuse(.badRequest, "unsupported TokenServiceType \(m.tokenServiceType.prefix(64))")
        }
        return Applied(service: service, refusal: try service.refusal(for: m, from: e, in: c))
    }

    func respond(_ m: GetToken, to e: AuthorizedEnrollment, applied: Applied, correlationID: String) async throws -> DeviceAnswer {
        let data = try await applied.service.tokenData(for: m, from: e, refusal: applied.refusal, correlationID: correlationID)
        return DeviceAnswer(response: bytesResponse(GetToken.response(tokenData: data), contentType: "application/xml"))
    }
}
