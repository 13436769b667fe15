#ifndef LOCAL_BROKER_PORTS_H
#define LOCAL_BROKER_PORTS_H

/// Pins the listening ports of librdkafka's mock brokers. The mock cluster binds each broker to
/// 127.0.0.1 port 0 (a new random port every start), and clients remember brokers by address, so a
/// restarted local broker would never be found again. Between orc_pin_ports and orc_unpin_ports, the
/// n-th bind of an IPv4 socket to port 0 in this process goes to ports[n] instead, with SO_REUSEADDR
/// (the last run's connections may still be in TIME_WAIT). Returns 0, or -1 if count is out of 1...16.
int orc_pin_ports(const int *ports, int count);
/// Ends pinning; returns how many pinned binds happened.
int orc_unpin_ports(void);

#endif
