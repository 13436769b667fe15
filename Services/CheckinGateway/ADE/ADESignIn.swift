import AppleProtocol
import Foundation
import HTTPTypes
import Hummingbird
import OrchardCore
import OrchardCrypto
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage

/// The `configuration_web_url` variant of ADE enrollment: Setup Assistant opens this page in a web view with the
/// device's signed MachineInfo in `x-apple-aspen-deviceinfo`; the user signs in with a local account (admin API
/// `/ade/accounts`), and the answer to the form is the signed profile (`application/x-apple-aspen-config`), as
/// Apple asks of the last page. For a profile that requires it, this POST is the only way to the profile (the `url`
/// refuses). The signed MachineInfo travels in the form, so the POST is checked as the GET was (it cannot be changed
/// without breaking the signature). Failures are counted per account and per client address, unknown accounts
/// included (`FailureThrottle`: 5 and 20 in 15 minutes lock for 15 minutes, 429); the checks happen before any password
/// is hashed, and hashes run on `PasswordHasher`'s low-priority thread. The page never says whether an account exists.
struct ADESignInRoutes: Sendable {
    let database: Database
    let enrollment: ADEEnrollmentRoutes
    let passwords: PasswordHasher
    let throttle: FailureThrottle
    let accountLimit: Int
    let addressLimit: Int
    /// The TLS terminator's header naming the client address (`ORCHARD_FORWARDED_FOR_HEADER`), when there is one.
    let forwardedFor: HTTPField.Name?

    static let iterations = PasswordHasher.iterations
    static let path = "/mdm/ade/sign-in"

    func add(to router: Router<GatewayContext>) {
        router.get("mdm/ade/sign-in") { request, context -> Response in
            let signed = try await enrollment.signedMachineInfo(request, context: context)
            switch try await enrollment.admit(signed, correlationID: context.correlationID,
                                              address: context.clientAddress(request, forwardedFor: forwardedFor)) {
            case .refused(let answer): return answer
            case .admitted(let admitted):
                if let refused = try await enrollment.platformSSOOnly(admitted, correlationID: context.correlationID) { return refused }
                return page(deviceInfo: Data(signed).base64EncodedString(), serial: admitted.info.serial)
            }
        }
        router.post("mdm/ade/sign-in") { request, context -> Response in
            try await signIn(request, context: context)
        }
    }

    private func signIn(_ request: Request, context: GatewayContext) async throws -> Response {
        let form = FormEncoding.parse(try await request.bodyBytes(limit: 160 * 1024))
        guard let deviceInfo = form["deviceinfo"], let signed = Data(base64Encoded: deviceInfo), !signed.isEmpty else {
            throw refuse(.badRequest, "the sign-in form lacks the device's MachineInfo: open the page from Setup Assistant")
        }
        let address = context.clientAddress(request, forwardedFor: forwardedFor)
        let admitted: ADEEnrollmentRoutes.Admitted
        switch try await enrollment.admit(Array(signed), correlationID: context.correlationID, address: address) {
        case .refused(let answer): return answer
        case .admitted(let a): admitted = a
        }
        if let refused = try await enrollment.platformSSOOnly(admitted, correlationID: context.correlationID) { return refused }
        let serial = admitted.info.serial, correlationID = context.correlationID
        let username = (form["username"] ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        let password = form["password"] ?? ""
        guard (1...200).contains(username.count), !username.containsControlCharacters, (1...1024).contains(password.count) else {
            return page(deviceInfo: deviceInfo, serial: serial, username: String(username.prefix(200)),
                        error: "Enter your user name and password.", status: .badRequest)
        }
        let accountKey = ADEAccountStore.throttleKey(username), addressKey = "ade-address:\(address)"
        if let until = try await throttle.lockedUntil([accountKey, addressKey]) {
            try await enrollment.record(admitted.info, "ade.sign-in.failed", outcome: .refused,
                                        detail: "serial \(serial): account \(username) from \(address): locked until \(ISO8601.string(from: until))",
                                        correlationID: correlationID, address: address)
            var answer = page(deviceInfo: deviceInfo, serial: serial, username: username,
                              error: "Too many failed sign-ins. Try again in a while.", status: .tooManyRequests)
            answer.retryAfter(until: until)
            return answer
        }
        let account = try await ADEAccountStore.find(database, username: username)
        let matches: Bool
        do {
            matches = try await passwords.verify(password, salt: account?.salt, hash: account?.hash, iterations: account?.iterations)
        } catch is BackgroundCPU.Busy {
            var answer = page(deviceInfo: deviceInfo, serial: serial, username: username,
                              error: "Many sign-ins are being checked right now. Try again in a few seconds.", status: .serviceUnavailable)
            answer.retryAfter()
            return answer
        }
        guard matches, let account, !account.disabled else {
            try await throttle.fail(accountKey, limit: accountLimit)
            try await throttle.fail(addressKey, limit: addressLimit)
            try await enrollment.record(admitted.info, "ade.sign-in.failed", outcome: .refused,
                                        detail: "serial \(serial): account \(username) from \(address)", correlationID: correlationID,
                                        address: address)
            return page(deviceInfo: deviceInfo, serial: serial, username: username,
                        error: "The user name or password is not right, or the account is locked. Try again in a while if it keeps failing.",
                        status: .unauthorized)
        }
        try await throttle.clear(accountKey)
        return try await enrollment.serve(admitted, actor: "user:\(username)", correlationID: correlationID)
    }

    private func page(deviceInfo: String, serial: String, username: String = "", error: String? = nil,
                      status: HTTPResponse.Status = .ok) -> Response {
        let escape = htmlEscaped
        let html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Sign in to enroll this device</title>
            <style>body{font:17px -apple-system,system-ui,sans-serif;color:#111;background:#fff;max-width:28em;margin:2em auto;padding:0 1em}
            label{display:block;margin-top:1em;font-weight:600}input{font-size:17px;width:100%;padding:.5em;box-sizing:border-box;border:1px solid #555;border-radius:6px}
            button{margin-top:1.5em;font-size:17px;padding:.6em 1.2em;background:#0a5ad6;color:#fff;border:0;border-radius:6px}
            button:focus,input:focus{outline:3px solid #ffb000}.error{color:#a30000;font-weight:600}</style></head>
            <body><main><h1>Sign in</h1><p>Sign in with your organisation account to set up this device (serial \(escape(serial))).</p>
            \(error.map { "<p class=\"error\" role=\"alert\">\(escape($0))</p>" } ?? "")
            <form method="post" action="sign-in">
            <input type="hidden" name="deviceinfo" value="\(escape(deviceInfo))">
            <label for="username">User name</label>
            <input id="username" name="username" autocomplete="username" autocapitalize="none" required value="\(escape(username))">
            <label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required>
            <button type="submit">Sign in</button></form></main></body></html>
            """
        var response = bytesResponse(Array(html.utf8), contentType: "text/html; charset=utf-8", status: status)
        response.headers[.cacheControl] = "no-store"
        response.headers[HTTPField.Name("Content-Security-Policy")!] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
        return response
    }
}
