//! Network events: TCP over IPv4, UDP over IPv6, a refused connect, a unix
//! socket connect.

use super::{temp_dir, WAIT};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use vigil::abi::{EventType, LANE_BULK};
use vigil::decode::{Event, PathSource};
use vigil_tests::attrs::{int_attr, str_attr};
use vigil_tests::capture::{Capture, Captured};

fn gettid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() as u32 }
}

fn net(c: &Captured, event: EventType, tid: u32, fd: i32) -> bool {
    c.record.header.event == event && c.record.header.pid == tid && matches!(&c.record.event, Event::Net(n) if n.fd == fd)
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn tcp_over_ipv4_bind_listen_connect_accept() {
    let mut cap = Capture::start_default();
    let tid = gettid();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let cport = client.local_addr().unwrap().port();
    let (server, _) = listener.accept().unwrap();
    let lfd = listener.as_raw_fd();

    let b = cap.wait_for("bind", WAIT, |c| net(c, EventType::NetworkBind, tid, lfd));
    assert_eq!(b.record.header.lane, LANE_BULK);
    let l = &b.log.attributes;
    assert_eq!(b.log.event_name, "vigil.network.bind");
    assert_eq!(str_attr(l, "network.transport"), Some("tcp"));
    assert_eq!(str_attr(l, "network.type"), Some("ipv4"));
    assert_eq!(str_attr(l, "network.local.address"), Some("127.0.0.1"));
    assert_eq!(int_attr(l, "network.local.port"), Some(i64::from(port)));
    assert_eq!(int_attr(l, "network.peer.port"), None, "a bound socket has no peer");
    assert_eq!(str_attr(l, "vigil.network.address_source"), Some("kernel_object"));
    assert_eq!(str_attr(l, "vigil.hook"), Some("tracepoint/syscalls/sys_exit_bind"));

    let li = cap.wait_for("listen", WAIT, |c| net(c, EventType::NetworkListen, tid, lfd));
    assert_eq!(int_attr(&li.log.attributes, "vigil.network.listen.backlog"), Some(128), "std's backlog");
    assert_eq!(int_attr(&li.log.attributes, "network.local.port"), Some(i64::from(port)));

    let c = cap.wait_for("connect", WAIT, |c| net(c, EventType::NetworkConnect, tid, client.as_raw_fd()));
    let Event::Net(n) = &c.record.event else { unreachable!() };
    assert_eq!((n.sys.ret, n.family, n.sock_type, n.protocol), (0, 2, 1, 6));
    assert_eq!(n.addr_source, PathSource::KernelObject);
    let l = &c.log.attributes;
    assert_eq!(str_attr(l, "network.peer.address"), Some("127.0.0.1"));
    assert_eq!(int_attr(l, "network.peer.port"), Some(i64::from(port)));
    assert_eq!(int_attr(l, "network.local.port"), Some(i64::from(cport)));
    assert_eq!(str_attr(l, "vigil.network.socket.type"), Some("stream"));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("connect"));

    let a = cap.wait_for("accept", WAIT, |c| net(c, EventType::NetworkAccept, tid, server.as_raw_fd()));
    let l = &a.log.attributes;
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(i64::from(server.as_raw_fd())));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("accept4"));
    assert_eq!(int_attr(l, "network.local.port"), Some(i64::from(port)));
    assert_eq!(int_attr(l, "network.peer.port"), Some(i64::from(cport)));
    assert_eq!(str_attr(l, "network.peer.address"), Some("127.0.0.1"));
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn udp_over_ipv6_connect_and_a_refused_tcp_connect() {
    let mut cap = Capture::start_default();
    let tid = gettid();
    let udp = UdpSocket::bind("[::1]:0").unwrap();
    udp.connect("[::1]:9").unwrap();
    let uport = udp.local_addr().unwrap().port();
    let c = cap.wait_for("udp connect", WAIT, |c| net(c, EventType::NetworkConnect, tid, udp.as_raw_fd()));
    let l = &c.log.attributes;
    assert_eq!(str_attr(l, "network.transport"), Some("udp"));
    assert_eq!(str_attr(l, "network.type"), Some("ipv6"));
    assert_eq!(str_attr(l, "network.peer.address"), Some("::1"));
    assert_eq!(int_attr(l, "network.peer.port"), Some(9));
    assert_eq!(str_attr(l, "network.local.address"), Some("::1"));
    assert_eq!(int_attr(l, "network.local.port"), Some(i64::from(uport)));
    assert_eq!(str_attr(l, "vigil.network.socket.type"), Some("dgram"));

    // A closed port: refused; the record still names the peer.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    let r = cap.wait_for("refused connect", WAIT, |c| {
        c.record.header.event == EventType::NetworkConnect
            && c.record.header.pid == tid
            && int_attr(&c.log.attributes, "network.peer.port") == Some(i64::from(port))
    });
    assert_eq!(str_attr(&r.log.attributes, "error.type"), Some("ECONNREFUSED"));
    assert_eq!(str_attr(&r.log.attributes, "network.peer.address"), Some("127.0.0.1"));
    assert_eq!(str_attr(&r.log.attributes, "vigil.network.address_source"), Some("syscall_argument"), "the reset socket has no peer");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn unix_socket_connect_names_the_path() {
    let mut cap = Capture::start_default();
    let tid = gettid();
    let dir = temp_dir("net-unix");
    let path = dir.join("sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let _ = listener.accept().unwrap();
    let c = cap.wait_for("unix connect", WAIT, |c| net(c, EventType::NetworkConnect, tid, client.as_raw_fd()));
    let Event::Net(n) = &c.record.event else { unreachable!() };
    assert_eq!(n.family, 1);
    assert_eq!(n.addr_source, PathSource::KernelObject);
    let l = &c.log.attributes;
    assert_eq!(str_attr(l, "network.transport"), Some("unix"));
    assert_eq!(str_attr(l, "network.peer.address"), path.to_str());
    assert_eq!(str_attr(l, "network.type"), None);
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(0));
    // A unix bind is not a network event.
    let binds = cap.all_matching(std::time::Duration::from_millis(100), |c| {
        c.record.header.event == EventType::NetworkBind && c.record.header.pid == tid
    });
    assert!(binds.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}
