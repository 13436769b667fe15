import CRdKafka
import Foundation
import OrchardSchemas

/// Every second, what this broker holds that Orchard's consumer groups have not consumed yet: the end
/// offset of each partition against each group's committed offset (groups that never committed on a
/// topic do not read it and are left out). The broker keeps nothing on disk, so after a crash this, at
/// most a second old, is what was lost. Replies are not counted: nobody commits them, and a requester
/// whose reply was lost answered its device 503 + Retry-After.
struct LossSnapshot {
    let bootstrap: String

    func run(writingTo path: String) {
        guard let metadataClient = client(group: nil) else { return }
        let groups = Topics.consumerGroups.compactMap { group in client(group: group).map { (group, $0) } }
        let topics = Topics.all.filter { $0.name != "orchard.replies.v1" }
        while true {
            var lines: [String] = []
            var held: Int64 = 0
            for topic in topics {
                var ends: [Int64] = []
                for partition in 0..<Int32(topic.partitions) {
                    var low: Int64 = 0, high: Int64 = 0
                    let err = rd_kafka_query_watermark_offsets(metadataClient, topic.name, partition, &low, &high, 2000)
                    ends.append(err == RD_KAFKA_RESP_ERR_NO_ERROR ? high : 0)
                }
                held += ends.reduce(0, +)
                for (group, handle) in groups {
                    guard let committed = committedOffsets(handle, topic: topic.name, partitions: topic.partitions) else {
                        continue
                    }
                    let behind = zip(ends, committed).reduce(Int64(0)) { $0 + max(0, $1.0 - max($1.1, 0)) }
                    if behind > 0 { lines.append("  \(topic.name): \(behind) not yet consumed by \(group)") }
                }
            }
            let stamp = ISO8601DateFormatter().string(from: Date())
            let text = "as of \(stamp) the local broker held \(held) messages; "
                + (lines.isEmpty ? "every consumer group had consumed all of them\n"
                                 : "these were not yet consumed:\n" + lines.joined(separator: "\n") + "\n")
            try? text.write(toFile: path, atomically: true, encoding: .utf8)
            sleep(1)
        }
    }

    private func client(group: String?) -> OpaquePointer? {
        let conf = rd_kafka_conf_new()
        _ = rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, nil, 0)
        _ = rd_kafka_conf_set(conf, "log_level", "3", nil, 0)
        _ = rd_kafka_conf_set(conf, "group.id", group ?? "orchard-local-broker-snapshot", nil, 0)
        return rd_kafka_new(RD_KAFKA_CONSUMER, conf, nil, 0)
    }

    /// The group's committed offsets on the topic's partitions, or nil if it committed none there.
    private func committedOffsets(_ handle: OpaquePointer, topic: String, partitions: Int) -> [Int64]? {
        guard let list = rd_kafka_topic_partition_list_new(Int32(partitions)) else { return nil }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in 0..<Int32(partitions) { rd_kafka_topic_partition_list_add(list, topic, partition) }
        guard rd_kafka_committed(handle, list, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        let offsets = (0..<Int(list.pointee.cnt)).map { list.pointee.elems[$0].offset }
        return offsets.contains { $0 >= 0 } ? offsets : nil
    }
}
