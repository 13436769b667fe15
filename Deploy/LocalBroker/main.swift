import CRdKafka
import Foundation
import LocalBrokerPorts
import OrchardSchemas

// orchard-local-broker: hosts librdkafka's mock cluster, which speaks the real Kafka protocol over
// TCP (including consumer groups and offset commits) and keeps nothing on disk. It creates every
// Orchard topic, prints the bootstrap address and writes it to --bootstrap-file, then runs until
// SIGTERM or SIGINT. For local runs and tests only: production points at a real Kafka cluster.
//
// --port N pins broker i to 127.0.0.1:N+i, so that a broker restarted after a crash is found again by
// every client at the address it remembers (without it, each start picks random ports).
// --snapshot-file PATH rewrites PATH every second with what the broker holds that its consumer groups
// have not yet consumed: after a crash, that (at most a second old) is what was lost.

var bootstrapFile: String?
var snapshotFile: String?
var brokers: Int32 = 1
var firstPort: Int?
let usage = "usage: orchard-local-broker [--bootstrap-file PATH] [--brokers N] [--port N] [--snapshot-file PATH]\n"
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--bootstrap-file": bootstrapFile = arguments.popFirst()
    case "--snapshot-file": snapshotFile = arguments.popFirst()
    case "--brokers": brokers = arguments.popFirst().flatMap(Int32.init) ?? 1
    case "--port":
        guard let port = arguments.popFirst().flatMap(Int.init), (1...65535).contains(port) else {
            FileHandle.standardError.write(Data("orchard-local-broker: --port must be an integer in 1...65535\n".utf8))
            exit(2)
        }
        firstPort = port
    default:
        FileHandle.standardError.write(Data(usage.utf8))
        exit(2)
    }
}
guard (1...16).contains(brokers) else {
    FileHandle.standardError.write(Data("orchard-local-broker: --brokers must be in 1...16\n".utf8))
    exit(2)
}

/// Whether 127.0.0.1:port can be bound now (as the pinned mock broker will bind it, with SO_REUSEADDR).
func canListen(port: Int32) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var on: Int32 = 1
    _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 && listen(fd, 1) == 0
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("orchard-local-broker: \(message)\n".utf8))
    exit(1)
}

// The mock cluster lives inside a client instance; this one is never used to produce.
let conf = rd_kafka_conf_new()
_ = rd_kafka_conf_set(conf, "log_level", "3", nil, 0)
var error = [CChar](repeating: 0, count: 512)
guard let host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &error, error.count) else {
    fail("cannot create host client: \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
}
if let firstPort {
    guard firstPort + Int(brokers) - 1 <= 65535 else { fail("--port \(firstPort) leaves no room for \(brokers) brokers") }
    let ports = (0..<Int(brokers)).map { Int32(firstPort + $0) }
    // librdkafka aborts (an assertion while cleaning up) when a mock broker cannot bind: check first.
    for port in ports where !canListen(port: port) { fail("cannot listen on 127.0.0.1:\(port): \(String(cString: strerror(errno)))") }
    _ = orc_pin_ports(ports, Int32(ports.count))
}
let created = rd_kafka_mock_cluster_new(host, brokers)
if firstPort != nil {
    let pinned = orc_unpin_ports()
    guard created != nil, pinned == brokers else {
        fail("cannot listen on 127.0.0.1:\(firstPort!)\(brokers > 1 ? "-\(firstPort! + Int(brokers) - 1)" : "") (in use?)")
    }
}
guard let cluster = created else { fail("cannot start the mock cluster") }
// The brokers take no connection until every topic exists: a client that reconnects at once after a restart
// would otherwise have its metadata request auto-create a topic with the mock's default partition count first
// ("Topic already exists" for orchard.replies.v1, seen once in a full test run).
for id in 1...brokers { _ = rd_kafka_mock_broker_set_down(cluster, id) }
for topic in Topics.all {
    let err = rd_kafka_mock_topic_create(cluster, topic.name, Int32(topic.partitions), 1)
    guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
        fail("cannot create topic \(topic.name): \(String(cString: rd_kafka_err2str(err)))")
    }
}
for id in 1...brokers { _ = rd_kafka_mock_broker_set_up(cluster, id) }
let bootstrap = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
if let bootstrapFile {
    do { try (bootstrap + "\n").write(toFile: bootstrapFile, atomically: true, encoding: .utf8) } catch {
        fail("cannot write \(bootstrapFile): \(error)")
    }
}
FileHandle.standardOutput.write(Data("orchard-local-broker: listening on \(bootstrap) with \(Topics.all.count) topics\n".utf8))
FileHandle.standardOutput.synchronizeFile()

// The mock brokers write responses without TCP_NODELAY, so a response split over two writes waits for
// the client's delayed ACK (40 ms on Linux): a 40-50 ms tail on request/reply. The brokers live in this
// process, so set TCP_NODELAY on each of its TCP sockets as connections arrive.
let nodelay = Thread {
    var done = Set<Int32>()
    while true {
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            var seen = Set<Int32>()
            for entry in entries {
                guard let fd = Int32(entry) else { continue }
                seen.insert(fd)
                if done.contains(fd) { continue }
                var on: Int32 = 1
                // Fails harmlessly (ENOTSOCK, EOPNOTSUPP) on everything but TCP sockets.
                _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
                done.insert(fd)
            }
            done.formIntersection(seen)
        }
        usleep(20_000)
    }
}
nodelay.start()

if let snapshotFile {
    let snapshot = Thread { LossSnapshot(bootstrap: bootstrap).run(writingTo: snapshotFile) }
    snapshot.name = "loss-snapshot"
    snapshot.start()
}

let stop = DispatchSemaphore(value: 0)
var sources: [any DispatchSourceSignal] = []
for sig in [SIGTERM, SIGINT] {
    signal(sig, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
    source.setEventHandler { stop.signal() }
    source.resume()
    sources.append(source)
}
stop.wait()
rd_kafka_mock_cluster_destroy(cluster)
rd_kafka_destroy(host)
print("orchard-local-broker: stopped")
