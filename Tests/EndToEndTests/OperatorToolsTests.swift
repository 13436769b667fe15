import Foundation
import OrchardCrypto
import OrchardTestSupport
import XCTest

/// The operator's tools against the running services, as a person uses them: `orchard-sim demo` enrolls one device per
/// flow and `orchardctl` shows them with their states; every `orchardctl` command group runs once, and its refusals
/// (a bad key, an unknown id, a malformed file, an unreachable server) end in one clear line and exit status 1 with
/// nothing changed.
final class OperatorToolsTests: XCTestCase {
    struct Run {
        let status: Int32
        let out: String
        let err: String
    }

    /// Runs a tool from the build (ORCHARD_BIN_DIR) in a folder and HOME of its own, so no config file of the machine's is read.
    func run(_ tool: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> Run {
        let bin = try TestEnvironment.require("ORCHARD_BIN_DIR")
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-tools-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(bin)/\(tool)")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { !["ORCHARD_URL", "ORCHARD_API_KEY", "ORCHARD_CONFIG"].contains($0.key) }
        environment["HOME"] = home.path
        process.environment = environment.merging(extra) { $1 }
        process.currentDirectoryURL = home
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile(), errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, out: String(decoding: outData, as: UTF8.self), err: String(decoding: errData, as: UTF8.self))
    }

    func ctl(_ stack: Fixture.Ready, _ arguments: [String], key: String? = nil) throws -> Run {
        try run("orchardctl", arguments + ["--url", stack.gateway, "--api-key", key ?? stack.admin.key])
    }

    /// Succeeds and returns its output; the failure message shows what it printed.
    @discardableResult
    func ok(_ stack: Fixture.Ready, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try ctl(stack, arguments)
        XCTAssertEqual(result.status, 0, "orchardctl \(arguments.joined(separator: " ")): \(result.err)\(result.out)", file: file, line: line)
        return result.out
    }

    /// Refused: exit status 1, one line on stderr naming the reason, no stack trace.
    func refused(_ result: Run, containing text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, 1, "\(result.err)\(result.out)", file: file, line: line)
        let lines = result.err.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(result.err)", file: file, line: line)
        XCTAssertTrue(result.err.hasPrefix("orchardctl: ") || result.err.hasPrefix("orchard-sim: "), result.err, file: file, line: line)
        XCTAssertTrue(result.err.contains(text), "\(result.err) lacks \(text)", file: file, line: line)
    }

    /// A loopback HTTP server (python3) answering every request 503 with Retry-After and the gateway's error body; its URL.
    func unavailableServer() throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def answer(self):
                    body = b'{"error": {"code": "orchard.unavailable", "message": "database unavailable"}}'
                    self.send_response(503); self.send_header("Retry-After", "5"); self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
                do_GET = do_POST = do_PUT = do_DELETE = answer
                def log_message(self, *a): pass
            s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
            print(s.server_address[1], flush=True)
            s.serve_forever()
            """]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var text = ""
        while !text.contains("\n") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { throw SimulatorError("the 503 server did not start") }
            text += String(decoding: chunk, as: UTF8.self)
        }
        return (process, "http://127.0.0.1:\(text.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    func write(_ text: String, _ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-tools-\(UUID().uuidString)-\(name)").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    // MARK: orchard-sim demo, then orchardctl shows what it enrolled

    func testTheSimulatorEnrollsOneDevicePerFlowAndOrchardctlShowsThem() async throws {
        let stack = try await Fixture.shared.prepare()
        try await AccountEnrollment.configureDomains(stack)
        let consumerKey = "CK_tools_\(UUID().uuidString.prefix(8))"
        _ = try await uploadedToken(stack, standIn: try ABMStandIn(), consumerKey: consumerKey)
        let pki = try TestEnvironment.require("ORCHARD_TEST_PKI")
        let demo = try run("orchard-sim", [
            "demo", "--url", stack.gateway, "--api-key", stack.admin.key, "--auth-url", try AccountEnrollment.auth, "--apple-ca", pki,
            "--abm-standin", try ABMStandIn().url, "--abm-consumer-key", consumerKey,
            "--byod-user", "alice@byod.example.com:\(AccountEnrollment.passwords["alice"]!)",
            "--adde-user", "carol@adde.example.com:\(AccountEnrollment.passwords["carol"]!)"])
        print(demo.out)
        XCTAssertEqual(demo.status, 0, demo.err)
        for flow in ["link", "ipad", "mac", "watch", "ade", "byod", "adde"] {
            XCTAssertTrue(demo.out.contains("\n  \(flow.padding(toLength: 6, withPad: " ", startingAt: 0)) enrolled:"), "\(flow) enrolled")
        }
        for step in ["403 com.apple.watch.pairing.token.missing", "GetToken com.apple.watch.pairing", "released from Setup Assistant",
                     "401 Bearer method=\"apple-as-web\"", "signs in against the directory → 308",
                     "revoke alice@byod.example.com's tokens (", "→ alice@byod.example.com signs in again",
                     "TokenUpdate retried with the new bearer → 200"] {
            XCTAssertTrue(demo.out.contains(step), "the demo prints \(step)")
        }

        let devices = try ctl(stack, ["devices", "list", "--json", "--limit", "1000"])
        XCTAssertEqual(devices.status, 0, devices.err)
        let items = (try JSONSerialization.jsonObject(with: Data(devices.out.utf8)) as? [String: Any])?["items"] as? [[String: Any]] ?? []
        func serial(_ flow: String, _ product: String) throws -> String {
            try unwrap(demo.out.range(of: #"\#(flow) +enrolled:.*\#(product) (\S+)"#, options: .regularExpression).map {
                String(demo.out[$0].split(separator: " ").last!).trimmingCharacters(in: CharacterSet(charactersIn: ","))
            }, "\(flow)'s \(product) in the summary")
        }
        let watchSerial = try serial("watch", "Watch7,3")
        let watch = try unwrap(items.first { $0["serialNumber"] as? String == watchSerial })
        let phoneID = try unwrap((watch["pairedWith"] as? [String])?.first)
        let phone = try unwrap(items.first { $0["id"] as? String == phoneID })
        XCTAssertEqual(phone["pairedWith"] as? [String], [watch["id"] as? String ?? ""], "the watch is paired with its iPhone, both ways")
        XCTAssertEqual(watch["status"] as? String, "enrolled")
        let byod = try unwrap(items.first { $0["managedAppleID"] as? String == "alice@byod.example.com" && $0["kind"] as? String == "user"
            && $0["status"] as? String == "enrolled" })
        XCTAssertEqual(byod["enrollmentMode"] as? String, "mdm-byod")
        XCTAssertNil(byod["udid"], "a User Enrollment shows no UDID")
        let table = try ok(stack, ["devices", "list", "--limit", "1000"])
        XCTAssertTrue(table.hasPrefix("ID "), table)
        XCTAssertTrue(table.contains("alice@byod.example.com"))

        let ade = try ok(stack, ["ade", "devices", "--json", "--limit", "1000"])
        let adeItems = (try JSONSerialization.jsonObject(with: Data(ade.utf8)) as? [String: Any])?["items"] as? [[String: Any]] ?? []
        let adeSerial = try serial("ade", "Mac14,2")
        XCTAssertEqual(adeItems.first { $0["serialNumber"] as? String == adeSerial }?["state"] as? String, "released", "the ADE Mac is released")
        // … and the device list says so too.
        let mac = try unwrap(items.first { $0["serialNumber"] as? String == adeSerial })
        XCTAssertEqual(mac["adeState"] as? String, "released")
        XCTAssertNil(watch["adeState"], "a watch did not come through ADE")
        let row = try unwrap(table.split(separator: "\n").first { $0.contains(adeSerial) })
        XCTAssertTrue(row.contains("released"), String(row))
        let iPad = try unwrap(items.first { $0["serialNumber"] as? String == (try? serial("ipad", "iPad16,3")) })
        XCTAssertEqual(iPad["productName"] as? String, "iPad16,3", "the iPad reported itself as one (DeviceInformation)")
    }

    // MARK: orchard-sim fleet keeps its devices and resumes them

    func testAFleetKeepsItsDevicesInItsFolderAndAResumedRunAnswersTheirCommands() async throws {
        let stack = try await Fixture.shared.prepare()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("orchard-fleet-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let fleet = ["fleet", "--devices", "3", "--interval", "2", "--duration", "5", "--state", state, "--url", stack.gateway,
                     "--api-key", stack.admin.key]
        let first = try run("orchard-sim", fleet)
        XCTAssertEqual(first.status, 0, first.err + first.out)
        XCTAssertTrue(first.out.contains("0 devices kept in \(state); enrolling 3 more"), first.out)
        XCTAssertTrue(first.out.contains(", 0 failures"), first.out)
        let kept = try FileManager.default.contentsOfDirectory(atPath: state).filter { $0.hasSuffix(".json") }
        XCTAssertEqual(kept.count, 3, "each device's identity and enrollment kept")
        let udid = String(try unwrap(kept.first).dropLast(5))
        // A command queued while the fleet is stopped: the resumed device (same identity) fetches and answers it.
        XCTAssertTrue(try ok(stack, ["devices", "command", udid, "--type", "DeviceInformation"]).contains("DeviceInformation"))
        let second = try run("orchard-sim", fleet)
        XCTAssertEqual(second.status, 0, second.err + second.out)
        XCTAssertTrue(second.out.contains("3 devices kept in \(state); enrolling 0 more"), second.out)
        let commands = try ok(stack, ["devices", "commands", udid, "--json"])
        let items = (try JSONSerialization.jsonObject(with: Data(commands.utf8)) as? [String: Any])?["items"] as? [[String: Any]] ?? []
        let information = try unwrap(items.first { $0["requestType"] as? String == "DeviceInformation" },
                                     "the queued DeviceInformation (newest first): \(commands)")
        XCTAssertEqual((information["status"] as? String)?.lowercased(), "acknowledged", commands)
    }

    // MARK: every orchardctl group, and its refusals

    func testEveryOrchardctlGroupAgainstTheRunningServicesRefusalsIncluded() async throws {
        let stack = try await Fixture.shared.prepare()
        let device = try await Fixture.shared.enrollWithExternalIdentity()
        let tag = UUID().uuidString.prefix(6).lowercased()

        try await step("push certificate, links") {
            XCTAssertTrue(try ok(stack, ["push-certificate", "show"]).contains(stack.topic))
            let created = try ok(stack, ["links", "create", "--name", "tools \(tag)", "--max-uses", "2", "--json"])
            let id = try unwrap((try JSONSerialization.jsonObject(with: Data(created.utf8)) as? [String: Any])?["id"] as? String)
            XCTAssertTrue(try ok(stack, ["links", "list"]).contains("tools \(tag)"))
            XCTAssertTrue(try ok(stack, ["links", "revoke", id]).contains("revoked"))
            refused(try ctl(stack, ["links", "revoke", id]), containing: "HTTP 404")
            refused(try ctl(stack, ["push-certificate", "upload", "--certificate", "/nonexistent.pem", "--key", "/nonexistent.key"]),
                    containing: "cannot read /nonexistent.pem")
        }
        try await step("devices, commands, declarations") {
            XCTAssertTrue(try ok(stack, ["devices", "show", device.udid]).contains("enrolled"))
            XCTAssertTrue(try ok(stack, ["devices", "command", device.udid, "--type", "DeviceLock", "--message", "tools \(tag)"]).contains("DeviceLock"))
            XCTAssertTrue(try ok(stack, ["devices", "commands", device.udid]).contains("DeviceLock"))
            let lock = try unwrap(try await device.idle())
            XCTAssertEqual(lock.parameters["Message"]?.string, "tools \(tag)")
            _ = try await device.respond(to: lock, status: "Acknowledged")
            let bad = try write("{\"type\": ", "bad.json")
            refused(try ctl(stack, ["devices", "command", device.udid, "--file", bad]), containing: "is not a JSON object")
            refused(try ctl(stack, ["devices", "command", device.udid, "--type", "NoSuchCommand"]), containing: "HTTP 400")
            let nothing = try await device.idle()
            XCTAssertNil(nothing, "a refused command queues nothing")
            refused(try ctl(stack, ["devices", "show", "no-such-\(tag)"]), containing: "HTTP 404")
            XCTAssertTrue(try ok(stack, ["commands", "send", "--device", device.udid, "--type", "DeviceInformation"]).contains("DeviceInformation"))
            let info = try unwrap(try await device.idle())
            _ = try await device.respond(to: info, status: "Acknowledged", extra: device.informationAnswers(supervised: true))
            let payload = try write(#"{"RequirePasscode": true}"#, "payload.json")
            XCTAssertTrue(try ok(stack, ["declarations", "put", "tools.\(tag)", "--type", "com.apple.configuration.passcode.settings",
                                         "--payload", payload]).contains("saved"))
            XCTAssertTrue(try ok(stack, ["declarations", "list"]).contains("tools.\(tag)"))
            _ = try ok(stack, ["devices", "assign-declarations", device.udid, "tools.\(tag)"])
            XCTAssertTrue(try ok(stack, ["devices", "declarations", device.udid]).contains("tools.\(tag)"))
            _ = try ok(stack, ["devices", "assign-declarations", device.udid])
            _ = try ok(stack, ["declarations", "delete", "tools.\(tag)"])
            while let c = try await device.idle() { _ = try await device.respond(to: c, status: "Acknowledged") }
        }
        try await step("watch enrollment, ABM, ADE") {
            XCTAssertTrue(try ok(stack, ["watch", "show"]).contains("mode:"))
            refused(try ctl(stack, ["watch", "set", "--mode", "sometimes"]), containing: "HTTP 400")
            let certificate = FileManager.default.temporaryDirectory.appendingPathComponent("tools-\(tag).pem").path
            XCTAssertTrue(try ok(stack, ["abm", "tokens", "create", "--name", "tools \(tag)", "--certificate-out", certificate]).contains("created"))
            XCTAssertTrue((try? String(contentsOfFile: certificate, encoding: .utf8))?.contains("BEGIN CERTIFICATE") == true, "the certificate for ABM")
            let consumerKey = "CK_ctl_\(tag)"
            let tokenID = try await uploadedToken(stack, standIn: try ABMStandIn(), consumerKey: consumerKey)
            XCTAssertTrue(try ok(stack, ["abm", "tokens", "list"]).contains(tokenID))
            XCTAssertTrue(try ok(stack, ["abm", "tokens", "check", tokenID]).contains("ok"))
            XCTAssertTrue(try ok(stack, ["abm", "tokens", "sync", tokenID]).contains("mode"))
            // Apple's profile JSON with a wrong type: refused with ABM's reason, nothing defined.
            let wrong = try write(#"{"profile_name": "tools", "is_supervised": "yes"}"#, "wrong.json")
            refused(try ctl(stack, ["abm", "profiles", "define", tokenID, "--file", wrong]), containing: "is_supervised")
            XCTAssertFalse(try ok(stack, ["abm", "profiles", "list"]).contains(tokenID), "nothing stored")
            let good = try write(#"{"profile_name": "tools \#(tag)", "is_supervised": true}"#, "good.json")
            XCTAssertTrue(try ok(stack, ["abm", "profiles", "define", tokenID, "--file", good, "--default", "--minimum-os", "iOS=18.0"]).contains("tools \(tag)"))
            refused(try ctl(stack, ["abm", "profiles", "define", tokenID, "--file", good, "--minimum-os", "eighteen"]), containing: "KEY=VALUE")
            _ = try ok(stack, ["abm", "devices", "list", "--token", tokenID])
            refused(try ctl(stack, ["abm", "devices", "disown", tokenID, "--serial", "X1"]), containing: "--yes")
            _ = try ok(stack, ["ade", "devices"])
            refused(try ctl(stack, ["ade", "allow-reenrollment", "NOSUCH\(tag)"]), containing: "HTTP 404")
            let password = try write("correct horse battery staple\n", "password.txt")
            _ = try ok(stack, ["ade", "accounts", "set", "tools.\(tag)@acme.example", "--password-file", password])
            XCTAssertTrue(try ok(stack, ["ade", "accounts", "list"]).contains("tools.\(tag)@acme.example"))
            _ = try ok(stack, ["ade", "accounts", "delete", "tools.\(tag)@acme.example"])
        }
        try await step("domains, users, API keys, activity, health") {
            _ = try ok(stack, ["domains", "set", "tools-\(tag).example.com", "--mode", "mdm-byod"])
            XCTAssertTrue(try ok(stack, ["domains", "list"]).contains("tools-\(tag).example.com"))
            refused(try ctl(stack, ["domains", "set", "tools-\(tag).example.com", "--mode", "mdm-everything"]), containing: "HTTP 400")
            _ = try ok(stack, ["domains", "delete", "tools-\(tag).example.com"])
            XCTAssertTrue(try ok(stack, ["users", "revoke-tokens", "nobody-\(tag)@byod.example.com"]).contains("0 token(s)"))
            let created = try ok(stack, ["api-keys", "create", "--name", "tools \(tag)", "--scope", "read", "--json"])
            let key = try unwrap((try JSONSerialization.jsonObject(with: Data(created.utf8)) as? [String: Any])?["key"] as? String)
            XCTAssertEqual(try ctl(stack, ["devices", "list"], key: key).status, 0, "a read key reads")
            refused(try ctl(stack, ["links", "create", "--name", "x"], key: key), containing: "HTTP 403")
            let id = try unwrap((try JSONSerialization.jsonObject(with: Data(created.utf8)) as? [String: Any])?["id"] as? String)
            _ = try ok(stack, ["api-keys", "revoke", id])
            refused(try ctl(stack, ["devices", "list"], key: key), containing: "HTTP 401: unknown or revoked API key (check the API key: --api-key)")
            XCTAssertTrue(try ok(stack, ["activity", "--limit", "50"]).contains("api-key.revoked"))
            XCTAssertTrue(try ok(stack, ["health"]).contains("user-enrollment-auth"))
        }
        try await step("what a person gets wrong: no server, a server that is not there, --help") {
            refused(try run("orchardctl", ["devices", "list"]), containing: "no server")
            refused(try run("orchardctl", ["devices", "list", "--url", "http://127.0.0.1:9", "--api-key", "x"]), containing: "cannot reach")
            refused(try run("orchard-sim", ["demo", "--url", "http://127.0.0.1:9", "--api-key", "x"]), containing: "cannot reach")
            // A server answering 503 to everything, as a gateway whose PostgreSQL is away does.
            let (server, unavailable) = try unavailableServer()
            defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }  // the test process blocks SIGTERM, and children inherit it
            refused(try run("orchardctl", ["devices", "list", "--url", unavailable, "--api-key", "x"]), containing: "HTTP 503: database unavailable (retry shortly)")
            refused(try run("orchardctl", ["links", "create", "--name", "x", "--url", unavailable, "--api-key", "x"]), containing: "HTTP 503")
            refused(try run("orchard-sim", ["demo", "--url", unavailable, "--api-key", "x"]), containing: "503")
            refused(try run("orchard-sim", ["load", "--flow", "link", "--devices", "0", "--url", unavailable, "--api-key", "x"]),
                    containing: "--devices must be at least 1")
            // --rate 0 crashed the simulator (a division by zero turned into a sleep); it is refused, with the way to a closed loop.
            refused(try run("orchard-sim", ["load", "--flow", "link", "--rate", "0", "--url", unavailable, "--api-key", "x"]),
                    containing: "--rate must be a positive number")
            let help = try run("orchardctl", ["abm", "profiles", "define", "--help"])
            XCTAssertEqual(help.status, 0)
            XCTAssertTrue(help.out.contains("Example:"))
            let completion = try run("orchardctl", ["--generate-completion-script", "bash"])
            XCTAssertEqual(completion.status, 0)
            XCTAssertTrue(completion.out.contains("orchardctl"))
        }
    }

    // MARK: the trial's stand-ins stay out of production

    /// A gateway given a stand-in's certificate without ORCHARD_LOCAL_TRIAL=1, or the trial with a public URL devices
    /// reach from elsewhere, does not start: it says which setting and why.
    func testTheGatewayTrustsStandInsOnlyInALocalTrialOnLoopback() async throws {
        let stack = try await Fixture.shared.prepare()
        let pki = try TestEnvironment.require("ORCHARD_TEST_PKI")
        // A certificate that is not a stand-in's, so that only the APNs one is.
        let key = try PrivateKey.generateP256()
        let plain = try Certificate.issue(subject: "/CN=An ordinary root", key: key, issuer: (stack.testCA.certificate, stack.testCA.key),
                                          usage: .clientIdentity, validity: Date().addingTimeInterval(-60)...Date().addingTimeInterval(3600))
        let plainFile = try write(String(decoding: try plain.pemRepresentation(), as: UTF8.self), "plain.pem")
        for (environment, reason) in [
            (["ORCHARD_LOCAL_TRIAL": "0", "ORCHARD_APPLE_DEVICE_ROOTS": "\(pki)/apple-ca.pem"], "ORCHARD_APPLE_DEVICE_ROOTS holds a stand-in"),
            (["ORCHARD_LOCAL_TRIAL": "0", "ORCHARD_APPLE_DEVICE_ROOTS": plainFile, "ORCHARD_APNS_CA_PEM": "\(pki)/ca.pem"],
             "ORCHARD_APNS_CA_PEM holds a stand-in"),
            (["ORCHARD_LOCAL_TRIAL": "1", "ORCHARD_PUBLIC_URL": "https://mdm.example.com"], "only with a loopback ORCHARD_PUBLIC_URL"),
        ] {
            let gateway = try ChildProcess("checkin-gateway", [], environment: environment.merging([
                "ORCHARD_HTTP_PORT": String(try freeTCPPort()), "ORCHARD_INSTANCE_ID": "gateway-refusal-\(UUID().uuidString.prefix(6))"]) { $1 })
            XCTAssertTrue(gateway.waitForExit(timeout: 60), "the gateway stops at start")
            XCTAssertNotEqual(gateway.process.terminationStatus, 0)
            XCTAssertTrue(gateway.log.contains(reason), "\(reason): \(gateway.log.suffix(600))")
        }
    }
}
