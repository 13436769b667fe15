import AppleProtocol
import Foundation
import HTTPTypes
import Hummingbird
import OrchardCore
import OrchardCrypto
import OrchardSchemas
import OrchardStorage

/// The `configuration_web_url` variant of ADE enrollment: Setup Assistant opens this page in a web view with the
/// device's signed MachineInfo in `x-apple-aspen-deviceinfo`; the user signs in with a local account (admin API
/// `/ade/accounts`), and the answer to the form is the signed profile (`application/x-apple-aspen-config`), as
/// Apple asks of the last page. The signed MachineInfo travels in the form, so the POST is checked as the GET
/// was (it cannot be changed without breaking the signature). Five wrong passwords lock an account for 15 minutes;
/// the page never says whether the account exists.
struct ADESignInRoutes: Sendable {
    let database: Database
    let enrollment: ADEEnrollmentRoutes

    static let iterations = 310_000
    static let maxFailures = 5
    static let lockout: TimeInterval = 900

    func add(to router: Router<GatewayContext>) {
        router.get("mdm/ade/sign-in") { request, context -> Response in
            let signed = try await enrollment.signedMachineInfo(request, correlationID: context.correlationID)
            switch try await enrollment.admit(signed, correlationID: context.correlationID) {
            case .refused(let answer): return answer
            case .admitted(let admitted): return page(deviceInfo: Data(signed).base64EncodedString(), serial: admitted.info.serial)
            }
        }
        router.post("mdm/ade/sign-in") { request, context -> Response in
            let form = FormEncoding.parse(try await request.bodyBytes(limit: 160 * 1024))
            guard let deviceInfo = form["deviceinfo"], let signed = Data(base64Encoded: deviceInfo), !signed.isEmpty else {
                throw refuse(.badRequest, "the sign-in form lacks the device's MachineInfo: open the page from Setup Assistant")
            }
            let admitted: ADEEnrollmentRoutes.Admitted
            switch try await enrollment.admit(Array(signed), correlationID: context.correlationID) {
            case .refused(let answer): return answer
            case .admitted(let a): admitted = a
            }
            let username = (form["username"] ?? "").trimmingCharacters(in: .whitespaces).lowercased()
            let password = form["password"] ?? ""
            guard (1...200).contains(username.count), !username.containsControlCharacters, (1...1024).contains(password.count),
                  try await check(username: username, password: password) else {
                try await enrollment.record(admitted.info, "ade.sign-in.failed", outcome: .refused,
                                            detail: "serial \(admitted.info.serial): account \(username.prefix(200))", correlationID: context.correlationID)
                return page(deviceInfo: deviceInfo, serial: admitted.info.serial, username: username,
                            error: "The user name or password is not right, or the account is locked. Try again in a while if it keeps failing.",
                            status: .unauthorized)
            }
            return try await enrollment.serve(admitted, actor: "user:\(username)", correlationID: context.correlationID)
        }
    }

    /// Whether the password is the account's; counts failures and locks the account after `maxFailures`.
    func check(username: String, password: String) async throws -> Bool {
        guard let row = try await database.query("""
            SELECT salt, password_hash, iterations, disabled, locked_until > now() AS locked FROM ade_accounts WHERE username = $1
            """, [.text(username)]).first, let salt = row.bytes("salt"), let hash = row.bytes("password_hash") else {
            // The same work for an unknown account, so that timing does not tell which accounts exist.
            _ = Digest.pbkdf2SHA256(password: password, salt: Array(repeating: 0, count: 16), iterations: Self.iterations)
            return false
        }
        let ok = Digest.constantTimeEquals(Digest.pbkdf2SHA256(password: password, salt: salt, iterations: row.int("iterations") ?? Self.iterations), hash)
        if ok && row.bool("disabled") != true && row.bool("locked") != true {
            try await database.query("UPDATE ade_accounts SET failures = 0, locked_until = NULL WHERE username = $1", [.text(username)])
            return true
        }
        try await database.query("""
            UPDATE ade_accounts SET failures = failures + 1,
                   locked_until = CASE WHEN failures + 1 >= $2 THEN now() + make_interval(secs => $3) ELSE locked_until END
            WHERE username = $1
            """, [.text(username), .int(Self.maxFailures), .int(Int(Self.lockout))])
        return false
    }

    static func hash(_ password: String) throws -> (salt: [UInt8], hash: [UInt8]) {
        let salt = try SecureRandom.bytes(16)
        return (salt, Digest.pbkdf2SHA256(password: password, salt: salt, iterations: iterations))
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
