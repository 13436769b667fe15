import AppleProtocol
import Foundation
import OrchardTestSupport
import XCTest

/// Everything Orchard reads or writes, checked against Apple's schemas.
final class ProfileSchemaTests: XCTestCase {
    func profile(_ identity: EnrollmentProfile.Identity, platform: EnrollmentProfile.Platform = .iOS) -> EnrollmentProfile {
        EnrollmentProfile(identifier: "com.example.orchard.enroll", displayName: "Example MDM", organization: "Example",
                          topic: "com.apple.mgmt.External.11111111-2222-3333-4444-555555555555",
                          serverURL: "https://mdm.example.com/mdm/server", checkInURL: "https://mdm.example.com/mdm/checkin",
                          identity: identity, anchorCertificates: [[0x30, 0x03, 0x02, 0x01, 0x01]], platform: platform)
    }

    func assertConforms(_ profile: EnrollmentProfile, platform: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let top = try AppleSchema.load("mdm/profiles/TopLevel.yaml")
        let common = try AppleSchema.load("mdm/profiles/CommonPayloadKeys.yaml")
        let parsed = try Plist.parseDictionary(profile.plist)
        XCTAssertEqual(AppleSchema.problems(parsed, top.payloadKeys, platform: platform), [], file: file, line: line)
        for payload in try XCTUnwrap(parsed["PayloadContent"]?.array).compactMap(\.dictionary) {
            let type = try XCTUnwrap(payload["PayloadType"]?.string)
            let schema = try AppleSchema.load("mdm/profiles/\(type).yaml")
            XCTAssertEqual(AppleSchema.problems(payload, schema.payloadKeys + common.payloadKeys, platform: platform), [],
                           "\(type)", file: file, line: line)
        }
    }

    func testDeviceProfileWithPKCS12Identity() throws {
        let p = profile(.pkcs12(data: [1, 2, 3], password: "pw"))
        try assertConforms(p, platform: "iOS")
        let mdm = try XCTUnwrap(try Plist.parseDictionary(p.plist)["PayloadContent"]?.array?.compactMap(\.dictionary)
            .first { $0["PayloadType"]?.string == "com.apple.mdm" })
        XCTAssertEqual(mdm["SignMessage"], .bool(true))
        XCTAssertEqual(mdm["CheckOutWhenRemoved"], .bool(true))
        XCTAssertEqual(mdm["AccessRights"], .integer(8191))
        XCTAssertEqual(mdm["ServerCapabilities"], .array([.string("com.apple.mdm.token")]))
        XCTAssertTrue(mdm["Topic"]?.string?.hasPrefix("com.apple.mgmt.") == true)
        let identityUUID = try XCTUnwrap(mdm["IdentityCertificateUUID"]?.string)
        let identity = try XCTUnwrap(try Plist.parseDictionary(p.plist)["PayloadContent"]?.array?.compactMap(\.dictionary)
            .first { $0["PayloadType"]?.string == "com.apple.security.pkcs12" })
        XCTAssertEqual(identity["PayloadUUID"]?.string, identityUUID, "the MDM payload points at the identity payload")
    }

    func testSCEPAndACMEIdentities() throws {
        try assertConforms(profile(.scep(url: "https://scep.example.com/scep", challenge: "c", subject: "device", keySize: 2048)),
                           platform: "iOS")
        try assertConforms(profile(.acme(directoryURL: "https://acme.example.com/dir", clientIdentifier: "id", subject: "d",
                                         hardwareBound: true, attest: true)), platform: "iOS")
    }

    func testWatchProfileHasNoKeysWatchOSLacks() throws {
        try assertConforms(profile(.pkcs12(data: [1], password: "pw"), platform: .watchOS), platform: "watchOS")
        try assertConforms(profile(.pkcs12(data: [1], password: "pw"), platform: .macOS), platform: "macOS")
    }
}

final class CommandSchemaTests: XCTestCase {
    func assertConforms(_ command: MDMCommand, _ schema: String, platform: String = "iOS",
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let s = try AppleSchema.load("mdm/commands/\(schema).yaml")
        let parsed = try Plist.parseDictionary(command.plist)
        XCTAssertEqual(parsed["CommandUUID"]?.string, command.commandUUID, file: file, line: line)
        var body = try XCTUnwrap(parsed["Command"]?.dictionary)
        XCTAssertEqual(body.removeValue(forKey: "RequestType")?.string, command.requestType, file: file, line: line)
        XCTAssertEqual(AppleSchema.problems(body, s.payloadKeys, platform: platform), [], schema, file: file, line: line)
    }

    func testBuildersMatchAppleSchemas() throws {
        try assertConforms(.deviceInformation(), "information.device")
        try assertConforms(.installProfile([1, 2]), "profile.install")
        try assertConforms(.removeProfile(identifier: "com.example.orchard.enroll"), "profile.remove")
        try assertConforms(.deviceLock(message: "Lost", phoneNumber: "+1 555"), "device.lock", platform: "watchOS")
        try assertConforms(.eraseDevice(), "device.erase", platform: "watchOS")
        try assertConforms(.clearPasscode(unlockToken: [9, 9]), "passcode.clear", platform: "watchOS")
        try assertConforms(.deviceConfigured(), "device.configured")
        try assertConforms(.declarativeManagement(tokens: TokensResponse(declarationsToken: "t", timestamp: Date()).json),
                           "declarativemanagement")
    }

    func testRawCommandRoundTrip() throws {
        let original = MDMCommand.deviceLock(message: "hi")
        let back = try MDMCommand(plist: original.plist)
        XCTAssertEqual(back, original)
        XCTAssertThrowsError(try MDMCommand(plist: Plist.xml(["CommandUUID": .string("x")])))
    }
}

final class CheckinParsingTests: XCTestCase {
    let udid = "00008030-001A2B3C4D5E6F70"

    func message(_ values: [String: PlistValue]) -> [UInt8] { Plist.xml(values) }

    func testParsesEachMessageType() throws {
        let auth = try CheckinMessage.parse(message(["MessageType": .string("Authenticate"), "Topic": .string("com.apple.mgmt.t"),
                                                     "UDID": .string(udid), "OSVersion": .string("18.1"),
                                                     "SerialNumber": .string("F2LX")]))
        guard case .authenticate(let a) = auth else { return XCTFail("\(auth)") }
        XCTAssertEqual(a.identity.udid, udid)
        XCTAssertEqual(a.serialNumber, "F2LX")

        let tu = try CheckinMessage.parse(message(["MessageType": .string("TokenUpdate"), "Topic": .string("t"), "UDID": .string(udid),
                                                   "Token": .data([1, 2, 3]), "PushMagic": .string("magic"),
                                                   "UnlockToken": .data([7]), "AwaitingConfiguration": .bool(true)]))
        guard case .tokenUpdate(let t) = tu else { return XCTFail("\(tu)") }
        XCTAssertEqual(t.token, [1, 2, 3])
        XCTAssertEqual(t.unlockToken, [7])
        XCTAssertTrue(t.awaitingConfiguration)

        let gt = try CheckinMessage.parse(message(["MessageType": .string("GetToken"), "UDID": .string(udid),
                                                   "TokenServiceType": .string("com.apple.watch.pairing"),
                                                   "TokenParameters": .dictionary(["SecurityToken": .string("S"),
                                                                                   "PhoneUDID": .string(udid),
                                                                                   "WatchUDID": .string("W")])]))
        guard case .getToken(let g) = gt else { return XCTFail("\(gt)") }
        XCTAssertEqual(g.watchUDID, "W")
        XCTAssertEqual(g.securityToken, "S")

        let user = try CheckinMessage.parse(message(["MessageType": .string("CheckOut"), "Topic": .string("t"),
                                                     "EnrollmentID": .string("ENR-1")]))
        XCTAssertEqual(user.identity.enrollmentKey, "ENR-1")
    }

    func testHostileBodiesAreErrors() {
        let bad: [[UInt8]] = [
            [], Array("not a plist".utf8), Array("<plist><array/></plist>".utf8),
            message(["MessageType": .string("Authenticate"), "UDID": .string(udid)]),                 // no Topic
            message(["MessageType": .string("Launch"), "UDID": .string(udid)]),                       // unknown type
            message(["MessageType": .string("TokenUpdate"), "Topic": .string("t"), "UDID": .string(udid),
                     "Token": .string("not data"), "PushMagic": .string("m")]),                       // wrong type
            message(["MessageType": .string("CheckOut"), "Topic": .string("t")]),                     // no identity
            message(["MessageType": .string("CheckOut"), "Topic": .string("t"), "UDID": .string("a/../b")]),
            message(["MessageType": .integer(1)]),
        ]
        for body in bad { XCTAssertThrowsError(try CheckinMessage.parse(body), String(decoding: body, as: UTF8.self)) }
        var deep: PlistValue = .string("x")
        for _ in 0..<100 { deep = .array([deep]) }
        XCTAssertThrowsError(try CheckinMessage.parse(message(["MessageType": .string("CheckOut"), "Deep": deep])))
    }

    func testCommandResults() throws {
        let idle = try CommandResult.parse(message(["Status": .string("Idle"), "UDID": .string(udid)]))
        XCTAssertEqual(idle.status, .idle)
        let err = try CommandResult.parse(message(["Status": .string("Error"), "UDID": .string(udid), "CommandUUID": .string("c"),
                                                   "ErrorChain": .array([.dictionary(["ErrorCode": .integer(12021),
                                                                                      "ErrorDomain": .string("MCMDMErrorDomain")])])]))
        XCTAssertEqual(err.errorChain.first?["ErrorCode"], .integer(12021))
        XCTAssertThrowsError(try CommandResult.parse(message(["Status": .string("Acknowledged"), "UDID": .string(udid)])))
        XCTAssertThrowsError(try CommandResult.parse(message(["Status": .string("Maybe"), "UDID": .string(udid)])))
    }

    func testGetTokenResponseMatchesSchema() throws {
        let schema = try AppleSchema.load("mdm/checkin/gettoken.yaml")
        XCTAssertEqual(AppleSchema.problems(try Plist.parseDictionary(GetToken.response(tokenData: [1, 2])), schema.responseKeys), [])
    }
}

final class DocumentSchemaTests: XCTestCase {
    func testErrorDocuments() throws {
        let missing = try XCTUnwrap(try plistValue(json: ErrorDocument.pairingTokenMissing(securityToken: UUID().uuidString).json).dictionary)
        XCTAssertEqual(AppleSchema.problems(missing, try AppleSchema.load("mdm/errors/watch.pairing.token.missing.yaml").payloadKeys), [])
        let unrecognized = try XCTUnwrap(try plistValue(json: ErrorDocument.unrecognizedDevice("gone").json).dictionary)
        XCTAssertEqual(AppleSchema.problems(unrecognized, try AppleSchema.load("mdm/errors/unrecognized.device.yaml").payloadKeys), [])
    }

    func testDeclarativeManagementResponses() throws {
        let tokens = try XCTUnwrap(try plistValue(json: TokensResponse(declarationsToken: "abc", timestamp: Date()).json).dictionary)
        XCTAssertEqual(AppleSchema.problems(tokens, try AppleSchema.load("declarative/protocol/tokensresponse.yaml").payloadKeys), [])
        let declarations = [
            Declaration(type: "com.apple.configuration.watch.enrollment", identifier: "c1", serverToken: "1",
                        payload: Array(#"{"EnrollmentProfileURL":"https://x/enroll/watch"}"#.utf8)),
            Declaration(type: "com.apple.activation.simple", identifier: "a1", serverToken: "2",
                        payload: Array(#"{"StandardConfigurations":["c1"]}"#.utf8)),
        ]
        let items = try XCTUnwrap(try plistValue(json: DeclarationItemsResponse(declarations: declarations, declarationsToken: "t").json).dictionary)
        XCTAssertEqual(AppleSchema.problems(items, try AppleSchema.load("declarative/protocol/declarationitemsresponse.yaml").payloadKeys), [])
        let base = try AppleSchema.load("declarative/declarations/declarationbase.yaml")
        for d in declarations {
            let object = try XCTUnwrap(try plistValue(json: d.json).dictionary)
            XCTAssertEqual(AppleSchema.problems(object, base.payloadKeys), [])
        }
        XCTAssertEqual(declarations[0].kind, .configuration)
        XCTAssertEqual(declarations[1].kind, .activation)
    }

    func testStatusReportShape() throws {
        XCTAssertNoThrow(try StatusReport.parse(Array(#"{"StatusItems":{"device":{}},"Errors":[]}"#.utf8)))
        XCTAssertThrowsError(try StatusReport.parse(Array(#"{"Errors":[]}"#.utf8)))
        XCTAssertThrowsError(try StatusReport.parse(Array("[1]".utf8)))
    }

    func testMachineInfo() throws {
        let info = MachineInfo(udid: "00008301-0011223344556677", serial: "H4HX", product: "Watch7,3", version: "22R349",
                               osVersion: "11.1", language: "en", pairingToken: [1, 2, 3])
        let schema = try AppleSchema.load("other/machineinfo.yaml")
        XCTAssertEqual(AppleSchema.problems(try Plist.parseDictionary(info.plist), schema.payloadKeys, platform: "watchOS"), [])
        XCTAssertEqual(try MachineInfo.parse(info.plist), info)
        XCTAssertThrowsError(try MachineInfo.parse(Plist.xml(["UDID": .string("x")])))
    }
}
