import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OrchardCore
import OrchardCrypto
import OrchardMessaging
import OrchardSchemas
import OrchardServiceKit
import OrchardStorage

/// The sign-in page of account-driven enrollment (REFERENCE §5.4). The device opens the challenge's `url` with
/// `?user-identifier=<Managed Apple Account>` in a web view (ASWebAuthenticationSession); the user signs in against the
/// domain's directory, and success ends with `308` to
/// `apple-remotemanagement-user-login://authentication-results?access-token=<token>`.
/// CSRF: the form carries `<nonce>.<expiry>.<account>.<HMAC>` and the nonce is also in a SameSite=Strict cookie; both must
/// agree. A page opened for one account (`user-identifier`, or `login_hint` in the OAuth 2 variant) binds that account
/// into the same MAC: its form signs in only that account, so the token the device gets is for the account it asked for.
/// Failures are counted per account and per address (`FailureThrottle`); passwords are never logged or recorded.
struct SignInRoutes: Sendable {
    let database: Database
    let activity: AccountActivity
    let domains: ManagedDomains
    let tokens: AccountTokens
    let grants: OAuthGrants
    let challenges: AccountChallenges
    let throttle: FailureThrottle
    let accountLimit: Int
    let addressLimit: Int
    let csrfKey: [UInt8]
    let secureCookies: Bool
    /// The TLS terminator's header naming the client address (`ORCHARD_FORWARDED_FOR_HEADER`), when there is one.
    let forwardedFor: HTTPField.Name?
    let logger: Logger

    static let path = AccountChallenges.signInPath
    static let cookie = "orchard_sign_in"
    static let formLifetime: TimeInterval = 1800
    static let callback = "apple-remotemanagement-user-login://authentication-results"

    func add(to router: Router<AccountRequestContext>) {
        router.get(RouterPath(stringLiteral: Self.path)) { request, _ -> Response in
            let user = Self.clean(request.uri.queryParameters["user-identifier"].map(String.init) ?? "") ?? ""
            let domain = user.split(separator: "@").last.flatMap { try? ManagedDomains.canonical(String($0)) }
            let mode = try await domain.asyncFlatMap { try await domains.find($0)?.view.mode }
            return try page(user: user, mode: mode, boundTo: user.isEmpty ? nil : user)
        }
        router.post(RouterPath(stringLiteral: Self.path)) { request, context -> Response in
            try await signIn(request, context: context)
        }
    }

    private func signIn(_ request: Request, context: AccountRequestContext) async throws -> Response {
        let form = FormEncoding.parse(try await request.bodyBytes(limit: 16 * 1024))
        // The OAuth 2 variant carries the authorization request in hidden fields: checked again here.
        var parsed: OAuthRequest?
        if form["client_id"] != nil {
            switch OAuthRequest.parse(form, challenges: challenges, requireResponseType: false) {
            case .success(let r): parsed = r
            case .failure(let e): return try errorPage("This sign-in request is not valid (\(e.description)). Start the enrollment again.")
            }
        }
        let oauth = parsed
        // The account the page was opened for, when its form is genuine: re-rendered pages stay bound to it.
        let csrf = csrfValid(form["csrf"], cookie: request.headers[.cookie])
        let bound = csrf.flatMap { $0 }
        func render(user: String, error: String? = nil, status: HTTPResponse.Status = .ok, mode: String? = nil) throws -> Response {
            try page(user: bound ?? user, error: error, status: status, mode: mode, oauth: oauth, boundTo: bound)
        }
        let typed = form["user"] ?? ""
        guard let user = Self.clean(typed) else {
            return try render(user: "", error: "Enter your Managed Apple Account, such as name@example.com.", status: .badRequest)
        }
        guard csrf != nil else {
            return try render(user: user, error: "This sign-in page has expired. Sign in again.", status: .forbidden)
        }
        let password = form["password"] ?? ""
        guard (1...1024).contains(password.count) else {
            return try render(user: user, error: "Enter your password.", status: .badRequest)
        }
        // libldap takes a C string: a NUL would cut the password short; no directory password holds control characters.
        guard !password.containsControlCharacters else {
            return try render(user: user, error: "A password cannot contain control characters.", status: .badRequest)
        }
        let address = context.clientAddress(request, forwardedFor: forwardedFor)
        let accountKey = "account:\(user)", addressKey = "address:\(address)"
        if let until = try await throttle.lockedUntil([accountKey, addressKey]) {
            try await record("account.sign-in.failed", user: user, outcome: .refused, detail: "\(user) from \(address): locked until \(ISO8601.string(from: until))",
                             correlationID: context.correlationID)
            var response = try render(user: user, error: "Too many failed sign-ins. Try again after \(Self.time(until)).", status: .tooManyRequests)
            response.retryAfter(until: until)
            return response
        }
        if let bound, user != bound {
            // The device asked to enroll `bound`; a token for anyone else would be refused at the enrollment anyway.
            try await throttle.fail(addressKey, limit: addressLimit)
            try await record("account.sign-in.failed", user: user, outcome: .refused,
                             detail: "\(user) from \(address): the page was opened for \(bound)", correlationID: context.correlationID)
            return try render(user: bound, error: "This sign-in is for \(bound). Sign in with that account, or start the enrollment again on the device with your own.",
                              status: .forbidden)
        }
        let domainName = String(user[user.index(after: user.lastIndex(of: "@")!)...])
        guard let domain = try? ManagedDomains.canonical(domainName), let record = try await domains.find(domain) else {
            try await throttle.fail(addressKey, limit: addressLimit)
            try await self.record("account.sign-in.failed", user: user, outcome: .refused, detail: "\(user) from \(address): not a domain of this organisation",
                                  correlationID: context.correlationID)
            return try render(user: user, error: "\(user) is not an account of an organisation that enrolls devices here. Check the part after @.",
                            status: .forbidden)
        }
        guard let directory = try domains.directory(of: record) else {
            try await self.record("account.sign-in.failed", user: user, outcome: .failed, detail: "\(user): domain \(domain) has no directory",
                                  correlationID: context.correlationID)
            return try render(user: user, error: "Sign-in is not set up for \(domain) yet. Contact your IT department.", status: .serviceUnavailable)
        }
        let outcome = await directory.check(user: user, password: password)
        switch outcome {
        case .ok(let dn):
            try await throttle.clear(accountKey)
            let location = try await database.transaction { c -> String in
                try Outbox.append(activity("account.sign-in.succeeded", user: user, outcome: .succeeded, detail: "\(user) from \(address) (\(record.view.mode))"),
                                  correlationID: context.correlationID, on: c)
                if let oauth {
                    // OAuth 2: the code goes to the registered redirect, with the client's state; tokens come from the token endpoint.
                    let code = try grants.issueCode(c, oauth, user: user, domain: domain, dn: dn)
                    return "\(oauth.redirectURI)?" + FormEncoding.encode([("code", code), ("state", oauth.state)])
                }
                let issued = try tokens.issue(c, user: user, domain: domain, dn: dn)
                try Outbox.append(activity("account.token.issued", user: user, outcome: .succeeded,
                                           detail: "\(user): access token \(issued.id), valid \(Int(tokens.lifetime)) s"),
                                  correlationID: context.correlationID, on: c)
                return "\(Self.callback)?access-token=\(issued.token)"
            }
            activity.outbox.notify()
            return Response(status: .permanentRedirect, headers: [.location: location, .cacheControl: "no-store", .contentLength: "0"])
        case .notFound, .wrongPassword, .ambiguous:
            try await throttle.fail(accountKey, limit: accountLimit)
            try await throttle.fail(addressKey, limit: addressLimit)
            try await self.record("account.sign-in.failed", user: user, outcome: .refused,
                                  detail: "\(user) from \(address): \(outcome == .ambiguous ? "several directory entries match" : "wrong account or password")",
                                  correlationID: context.correlationID)
            return try render(user: user, error: "The Managed Apple Account or the password is not right.", status: .unauthorized,
                            mode: record.view.mode)
        case .disabled:
            // Said only after the password was right; counted against the account as a failure is.
            try await throttle.fail(accountKey, limit: accountLimit)
            try await throttle.fail(addressKey, limit: addressLimit)
            try await self.record("account.sign-in.failed", user: user, outcome: .refused, detail: "\(user) from \(address): disabled in the directory",
                                  correlationID: context.correlationID)
            return try render(user: user, error: "This account is disabled. Contact your IT department.", status: .forbidden)
        case .unreachable(let message), .failed(let message):
            logger.error("directory of \(domain) failed during a sign-in", metadata: ["error": "\(message)"])
            try await self.record("account.sign-in.failed", user: user, outcome: .failed, detail: "\(user): directory of \(domain): \(message)",
                                  correlationID: context.correlationID)
            var response = try render(user: user, error: "Your organisation's directory cannot be reached right now. Try again in a few minutes.",
                                    status: .serviceUnavailable)
            response.retryAfter(seconds: 30)
            return response
        }
    }

    /// A Managed Apple Account as typed, trimmed and lowercased; nil when it is not `name@domain`.
    static func clean(_ typed: String) -> String? {
        let user = typed.trimmingCharacters(in: .whitespaces).lowercased()
        guard (3...320).contains(user.count), !user.containsControlCharacters, let at = user.lastIndex(of: "@"),
              at != user.startIndex, user.index(after: at) != user.endIndex else { return nil }
        return user
    }

    // MARK: CSRF

    /// `<nonce>.<expiry>.<account, base64url, empty when unbound>.<HMAC of the three>`.
    private func csrfToken(nonce: String, expiry: Int, account: String?) -> String {
        let bound = account.map { base64URL(Array($0.utf8)) } ?? ""
        let mac = Digest.hmacSHA256(key: csrfKey, data: Array("\(nonce).\(expiry).\(bound)".utf8)).hexString
        return "\(nonce).\(expiry).\(bound).\(mac)"
    }

    /// nil when the field is not a genuine, unexpired form of this page with its cookie; otherwise the account the page
    /// was bound to (`.some(nil)` for an unbound page).
    private func csrfValid(_ field: String?, cookie: String?) -> String?? {
        guard let field, field.utf8.count < 1024 else { return nil }
        let parts = field.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, let expiry = Int(parts[1]), expiry > Int(Date().timeIntervalSince1970) else { return nil }
        let account: String?
        if parts[2].isEmpty {
            account = nil
        } else {
            guard let bytes = fromBase64URL(parts[2]), let text = String(validating: bytes, as: UTF8.self),
                  let clean = Self.clean(text) else { return nil }
            account = clean
        }
        let expected = csrfToken(nonce: String(parts[0]), expiry: expiry, account: account)
        guard Digest.constantTimeEquals(Array(expected.utf8), Array(field.utf8)) else { return nil }
        let cookies = (cookie ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        return cookies.contains("\(Self.cookie)=\(parts[0])") ? .some(account) : nil
    }

    // MARK: The page

    /// A request that cannot be signed in at all (a broken OAuth 2 authorization request): never redirected anywhere.
    func errorPage(_ message: String) throws -> Response {
        let html = """
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Cannot sign in</title></head><body><main><h1>Cannot sign in</h1><p role="alert">\(htmlEscaped(message))</p></main></body></html>
            """
        var response = Response(status: .badRequest, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
        response.headers[.cacheControl] = "no-store"
        response.headers[HTTPField.Name("Content-Security-Policy")!] = "default-src 'none'; frame-ancestors 'none'"
        return response
    }

    /// The page, with a new form: a new nonce in the form and in the cookie. `mode` (the domain's, when known) says what
    /// enrolling will mean for the device; `oauth` carries an OAuth 2 authorization request through the form; `boundTo`
    /// is the account the device asked for, the only one the form signs in.
    func page(user: String, error: String? = nil, status: HTTPResponse.Status = .ok, mode: String? = nil,
              oauth: OAuthRequest? = nil, boundTo: String? = nil) throws -> Response {
        let meaning = mode == AccountEnrollmentMode.deviceEnrollment.rawValue
            ? "This device becomes managed by your organisation."
            : "Your organisation manages only its own accounts, apps and data on this device; your personal data stays private."
        let nonce = try SecureRandom.token(byteCount: 16)
        let expiry = Int(Date().timeIntervalSince1970 + Self.formLifetime)
        let csrf = csrfToken(nonce: nonce, expiry: expiry, account: boundTo)
        let e = htmlEscaped
        let html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Sign in to enroll your device</title>
            <style>body{font:17px -apple-system,system-ui,sans-serif;color:#111;background:#fff;max-width:28em;margin:2em auto;padding:0 1em;line-height:1.4}
            label{display:block;margin-top:1em;font-weight:600}input{font-size:17px;width:100%;padding:.5em;box-sizing:border-box;border:1px solid #555;border-radius:6px;color:#111;background:#fff}
            button{margin-top:1.5em;font-size:17px;padding:.6em 1.2em;background:#0a4fbd;color:#fff;border:0;border-radius:6px}
            button:focus,input:focus{outline:3px solid #b35c00;outline-offset:2px}.error{color:#a30000;font-weight:600}.hint{color:#333}</style></head>
            <body><main><h1>Sign in</h1>
            <p class="hint">Sign in with your Managed Apple Account and your organisation password to enroll this device. \(meaning)</p>
            \(error.map { "<p class=\"error\" id=\"error\" role=\"alert\">\(e($0))</p>" } ?? "")
            <form method="post" action="/\(Self.path)"\(error == nil ? "" : " aria-describedby=\"error\"")>
            <input type="hidden" name="csrf" value="\(e(csrf))">\((oauth?.formFields ?? []).map { "\n<input type=\"hidden\" name=\"\(e($0.0))\" value=\"\(e($0.1))\">" }.joined())
            <label for="user">Managed Apple Account</label>
            <input id="user" name="user" type="email" autocomplete="username" autocapitalize="none" spellcheck="false" required value="\(e(user))"\(boundTo == nil ? "" : " readonly")>
            <label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required\(user.isEmpty ? "" : " autofocus")>
            <button type="submit">Sign in</button></form></main></body></html>
            """
        var response = Response(status: status, headers: [.contentType: "text/html; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: html)))
        response.headers[.cacheControl] = "no-store"
        response.headers[.setCookie] = "\(Self.cookie)=\(nonce); Path=/account; HttpOnly; SameSite=Strict; Max-Age=\(Int(Self.formLifetime))"
            + (secureCookies ? "; Secure" : "")
        // form-action must allow the callback scheme: browsers apply it to the 308 that ends a successful sign-in.
        response.headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' apple-remotemanagement-user-login:; frame-ancestors 'none'"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return response
    }

    private static func time(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "HH:mm 'UTC'"
        return f.string(from: date)
    }

    // MARK: Activity

    private func activity(_ action: String, user: String, outcome: ActivityRecorded.Outcome, detail: String) -> ActivityRecorded {
        activity.entry(action, actor: "user:\(user)", outcome: outcome, detail: detail)
    }

    private func record(_ action: String, user: String, outcome: ActivityRecorded.Outcome, detail: String, correlationID: String) async throws {
        try await activity.record(action, actor: "user:\(user)", outcome: outcome, detail: detail, correlationID: correlationID)
    }
}
