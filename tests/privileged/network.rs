//! Network events: TCP and UDP over IPv4 and IPv6, a refused connect,
//! failed binds, a unix socket connect.

use super::{become_nobody, in_child, temp_dir, WAIT};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream, UdpSocket};
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

/// An address as the record carries it (IPv4: the first 4 bytes).
fn v4(ip: Ipv4Addr, port: u16) -> ([u8; 16], u16) {
    let mut a = [0; 16];
    a[..4].copy_from_slice(&ip.octets());
    (a, port)
}

fn v6(ip: Ipv6Addr, port: u16) -> ([u8; 16], u16) {
    (ip.octets(), port)
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn tcp_over_ipv6_bind_connect_accept() {
    let mut cap = Capture::start_default();
    let tid = gettid();
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("::1", port)).unwrap();
    let cport = client.local_addr().unwrap().port();
    let (server, _) = listener.accept().unwrap();
    let lo = Ipv6Addr::LOCALHOST;

    let b = cap.wait_for("bind", WAIT, |c| net(c, EventType::NetworkBind, tid, listener.as_raw_fd()));
    let Event::Net(n) = &b.record.event else { unreachable!() };
    assert_eq!((n.sys.ret, n.family, n.sock_type, n.protocol), (0, 10, 1, 6));
    assert_eq!(n.local, v6(lo, port));
    assert_eq!(n.peer, v6(Ipv6Addr::UNSPECIFIED, 0));
    let l = &b.log.attributes;
    assert_eq!(str_attr(l, "network.type"), Some("ipv6"));
    assert_eq!(str_attr(l, "network.local.address"), Some("::1"));
    assert_eq!(int_attr(l, "network.local.port"), Some(i64::from(port)));
    assert_eq!(str_attr(l, "network.peer.address"), None, "a bound socket has no peer");

    // Both ends from the kernel socket: the local port was chosen by it.
    let c = cap.wait_for("connect", WAIT, |c| net(c, EventType::NetworkConnect, tid, client.as_raw_fd()));
    let Event::Net(n) = &c.record.event else { unreachable!() };
    assert_eq!((n.sys.ret, n.family, n.sock_type, n.protocol), (0, 10, 1, 6));
    assert_eq!(n.addr_source, PathSource::KernelObject);
    assert_eq!(n.local, v6(lo, cport));
    assert_eq!(n.peer, v6(lo, port));
    let l = &c.log.attributes;
    assert_eq!(c.log.event_name, "vigil.network.connect");
    assert_eq!(str_attr(l, "network.transport"), Some("tcp"));
    assert_eq!(str_attr(l, "network.type"), Some("ipv6"));
    assert_eq!(str_attr(l, "network.local.address"), Some("::1"));
    assert_eq!(int_attr(l, "network.local.port"), Some(i64::from(cport)));
    assert_eq!(str_attr(l, "network.peer.address"), Some("::1"));
    assert_eq!(int_attr(l, "network.peer.port"), Some(i64::from(port)));
    assert_eq!(str_attr(l, "vigil.network.address_source"), Some("kernel_object"));
    assert_eq!(str_attr(l, "vigil.network.socket.type"), Some("stream"));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("connect"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(0));
    assert_eq!(str_attr(l, "error.type"), None);

    // The accepted socket: local is the listener's port, peer the client's.
    let a = cap.wait_for("accept", WAIT, |c| net(c, EventType::NetworkAccept, tid, server.as_raw_fd()));
    let Event::Net(n) = &a.record.event else { unreachable!() };
    assert_eq!((n.sys.ret, n.family, n.sock_type, n.protocol), (i64::from(server.as_raw_fd()), 10, 1, 6));
    assert_eq!(n.addr_source, PathSource::KernelObject);
    assert_eq!(n.local, v6(lo, port));
    assert_eq!(n.peer, v6(lo, cport));
    let l = &a.log.attributes;
    assert_eq!(a.log.event_name, "vigil.network.accept");
    assert_eq!(str_attr(l, "network.type"), Some("ipv6"));
    assert_eq!(str_attr(l, "network.local.address"), Some("::1"));
    assert_eq!(int_attr(l, "network.local.port"), Some(i64::from(port)));
    assert_eq!(str_attr(l, "network.peer.address"), Some("::1"));
    assert_eq!(int_attr(l, "network.peer.port"), Some(i64::from(cport)));
    assert_eq!(int_attr(l, "vigil.network.fd"), Some(i64::from(server.as_raw_fd())), "the new descriptor");
    assert_eq!(str_attr(l, "vigil.syscall"), Some("accept4"));
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn udp_over_ipv4_bind_and_connect() {
    let mut cap = Capture::start_default();
    let tid = gettid();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = udp.local_addr().unwrap().port();
    // Another loopback address as the peer, so local and peer differ.
    let peer = Ipv4Addr::new(127, 0, 0, 2);
    udp.connect((peer, 9)).unwrap();

    let b = cap.wait_for("udp bind", WAIT, |c| net(c, EventType::NetworkBind, tid, udp.as_raw_fd()));
    let Event::Net(n) = &b.record.event else { unreachable!() };
    assert_eq!((n.sys.ret, n.family, n.sock_type, n.protocol), (0, 2, 2, 17));
    assert_eq!(n.addr_source, PathSource::KernelObject);
    assert_eq!(n.local, v4(Ipv4Addr::LOCALHOST, uport));
    assert_eq!(n.peer, v4(Ipv4Addr::UNSPECIFIED, 0));
    let l = &b.log.attributes;
    assert_eq!(b.log.event_name, "vigil.network.bind");
    assert_eq!(str_attr(l, "network.transport"), Some("udp"));
    assert_eq!(str_attr(l, "network.type"), Some("ipv4"));
    assert_eq!(str_attr(l, "network.local.address"), Some("127.0.0.1"));
    assert_eq!(int_attr(l, "network.local.port"), Some(i64::from(uport)));
    assert_eq!(str_attr(l, "network.peer.address"), None);
    assert_eq!(int_attr(l, "network.peer.port"), None);
    assert_eq!(str_attr(l, "vigil.network.socket.type"), Some("dgram"));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("bind"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(0));

    let c = cap.wait_for("udp connect", WAIT, |c| net(c, EventType::NetworkConnect, tid, udp.as_raw_fd()));
    let Event::Net(n) = &c.record.event else { unreachable!() };
    assert_eq!((n.sys.ret, n.family, n.sock_type, n.protocol), (0, 2, 2, 17));
    assert_eq!(n.addr_source, PathSource::KernelObject);
    assert_eq!(n.local, v4(Ipv4Addr::LOCALHOST, uport));
    assert_eq!(n.peer, v4(peer, 9));
    let l = &c.log.attributes;
    assert_eq!(str_attr(l, "network.transport"), Some("udp"));
    assert_eq!(str_attr(l, "network.type"), Some("ipv4"));
    assert_eq!(str_attr(l, "network.local.address"), Some("127.0.0.1"));
    assert_eq!(int_attr(l, "network.local.port"), Some(i64::from(uport)));
    assert_eq!(str_attr(l, "network.peer.address"), Some("127.0.0.2"));
    assert_eq!(int_attr(l, "network.peer.port"), Some(9));
    assert_eq!(str_attr(l, "vigil.network.address_source"), Some("kernel_object"));
    assert_eq!(str_attr(l, "vigil.network.socket.type"), Some("dgram"));
    assert_eq!(str_attr(l, "vigil.syscall"), Some("connect"));
    assert_eq!(str_attr(l, "error.type"), None);
}

fn sockaddr_in(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip.octets()) },
        sin_zero: [0; 8],
    }
}

fn sockaddr_in6(ip: Ipv6Addr, port: u16) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: port.to_be(),
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr { s6_addr: ip.octets() },
        sin6_scope_id: 0,
    }
}

/// A failed bind leaves the socket unbound: the record names the address
/// asked for (the argument), with the errno.
#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn failed_binds_carry_the_errno_and_the_requested_address() {
    let mut cap = Capture::start_default();
    let tid = gettid();
    // A port held by a listening socket: EADDRINUSE (SO_REUSEADDR or not).
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let addr = sockaddr_in(Ipv4Addr::LOCALHOST, port);
    // SAFETY: plain socket calls on a descriptor we own and close.
    let (fd, r, errno) = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let r = libc::bind(fd, (&raw const addr).cast(), std::mem::size_of_val(&addr) as libc::socklen_t);
        let errno = std::io::Error::last_os_error().raw_os_error();
        libc::close(fd);
        (fd, r, errno)
    };
    assert_eq!((r, errno), (-1, Some(libc::EADDRINUSE)));

    let b = cap.wait_for("bind to a port in use", WAIT, |c| net(c, EventType::NetworkBind, tid, fd));
    let Event::Net(n) = &b.record.event else { unreachable!() };
    assert_eq!((n.sys.ret, n.family, n.sock_type, n.protocol), (-i64::from(libc::EADDRINUSE), 2, 1, 6));
    assert_eq!(n.addr_source, PathSource::SyscallArgument);
    assert_eq!(n.local, v4(Ipv4Addr::LOCALHOST, port));
    let l = &b.log.attributes;
    assert_eq!(b.log.event_name, "vigil.network.bind");
    assert_eq!(str_attr(l, "error.type"), Some("EADDRINUSE"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(-i64::from(libc::EADDRINUSE)));
    assert_eq!(str_attr(l, "vigil.network.address_source"), Some("syscall_argument"));
    assert_eq!(str_attr(l, "network.transport"), Some("tcp"));
    assert_eq!(str_attr(l, "network.type"), Some("ipv4"));
    assert_eq!(str_attr(l, "network.local.address"), Some("127.0.0.1"));
    assert_eq!(int_attr(l, "network.local.port"), Some(i64::from(port)));
    assert_eq!(str_attr(l, "network.peer.address"), None);

    // A port below 1024 as nobody, over IPv6: EACCES.
    let low = sockaddr_in6(Ipv6Addr::LOCALHOST, 1023);
    let (pid, code) = in_child(|| {
        if !become_nobody() {
            return 10;
        }
        // SAFETY: raw socket calls in the child.
        unsafe {
            let fd = libc::socket(libc::AF_INET6, libc::SOCK_STREAM, 0);
            if fd < 0 {
                return 11;
            }
            if libc::bind(fd, (&raw const low).cast(), std::mem::size_of_val(&low) as libc::socklen_t) == 0 {
                return 12;
            }
            if *libc::__errno_location() != libc::EACCES {
                return 13;
            }
        }
        0
    });
    assert_eq!(code, 0, "child step failed");
    let b =
        cap.wait_for("bind below 1024 as nobody", WAIT, |c| c.record.header.event == EventType::NetworkBind && c.record.header.tgid == pid);
    let Event::Net(n) = &b.record.event else { unreachable!() };
    assert_eq!((n.sys.ret, n.family, n.sock_type, n.protocol), (-i64::from(libc::EACCES), 10, 1, 6));
    assert_eq!(n.addr_source, PathSource::SyscallArgument);
    assert_eq!(n.local, v6(Ipv6Addr::LOCALHOST, 1023));
    let l = &b.log.attributes;
    assert_eq!(str_attr(l, "error.type"), Some("EACCES"));
    assert_eq!(int_attr(l, "vigil.syscall.return"), Some(-i64::from(libc::EACCES)));
    assert_eq!(str_attr(l, "vigil.network.address_source"), Some("syscall_argument"));
    assert_eq!(str_attr(l, "network.type"), Some("ipv6"));
    assert_eq!(str_attr(l, "network.local.address"), Some("::1"));
    assert_eq!(int_attr(l, "network.local.port"), Some(1023));
    assert_eq!(int_attr(l, "process.user.id"), Some(65534), "the unprivileged caller");
    drop(holder);
}
