// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * vigil network events: connect, accept, accept4, bind, listen on IPv4 and
 * IPv6 sockets (TCP, UDP, any type), and connects of unix sockets, read
 * from the kernel socket at syscall exit (no enter programs: the arguments
 * come from the saved user registers).
 *
 * Part of the process.bpf.c object (#included there).
 */
#include <bpf/bpf_endian.h>
#include "sys.bpf.h"

#define VIGIL_AF_UNIX 1
#define VIGIL_AF_INET 2
#define VIGIL_AF_INET6 10
#define VIGIL_S_IFMT 0170000
#define VIGIL_S_IFSOCK 0140000
#define VIGIL_UNIX_PATH_MAX 108

/* The peer or local address from a sockaddr argument (read at exit). */
static __always_inline void vigil_net_arg_addr(struct vigil_net *r, const void *uaddr,
					       int peer)
{
	__u16 fam = 0, port = 0;

	if (!uaddr || bpf_probe_read_user(&fam, sizeof(fam), uaddr))
		return;
	if (fam != VIGIL_AF_INET && fam != VIGIL_AF_INET6)
		return;
	bpf_probe_read_user(&port, sizeof(port), uaddr + 2);
	r->addr_source = VIGIL_PATH_SRC_ARG;
	if (peer) {
		r->rport = bpf_ntohs(port);
		if (fam == VIGIL_AF_INET)
			bpf_probe_read_user(r->raddr, 4, uaddr + 4);
		else
			bpf_probe_read_user(r->raddr, 16, uaddr + 8);
	} else {
		r->lport = bpf_ntohs(port);
		if (fam == VIGIL_AF_INET)
			bpf_probe_read_user(r->laddr, 4, uaddr + 4);
		else
			bpf_probe_read_user(r->laddr, 16, uaddr + 8);
	}
}

static __always_inline int vigil_zero16(const __u8 *a)
{
	__u64 lo, hi;

	__builtin_memcpy(&lo, a, 8);
	__builtin_memcpy(&hi, a + 8, 8);
	return !lo && !hi;
}

/* sun_path of a unix socket's bound address (peer's for a connect). */
static __always_inline void vigil_unix_path(struct vigil_scratch *s, __u32 off,
					    struct vigil_field *f, struct sock *sk,
					    const void *uaddr, __u32 ulen)
{
	struct unix_sock *u = (void *)sk;
	struct sock *peer = BPF_CORE_READ(u, peer);
	struct unix_address *addr = NULL;
	int len = 0;
	__u32 n;

	f->off = off;
	f->len = 0;
	f->orig_len = 0;
	if (peer)
		addr = BPF_CORE_READ((struct unix_sock *)peer, addr);
	if (addr) {
		len = BPF_CORE_READ(addr, len) - 2;  /* minus sun_family */
		n = len > 0 ? len : 0;
		if (n > VIGIL_UNIX_PATH_MAX)
			n = VIGIL_UNIX_PATH_MAX;
		barrier_var(n);  /* keep the bounded copy, not the signed length */
		n &= 127;
		if (n && !bpf_probe_read_kernel(s->rec + off, n,
						(void *)addr + bpf_core_type_size(struct unix_address) + 2)) {
			/* a pathname's stored length counts its NUL */
			__u32 last = off + n - 1;

			if (last < VIGIL_RECORD_MAX && s->rec[off] != 0 && s->rec[last] == 0)
				n--;
			f->flags = VIGIL_F_PRESENT | VIGIL_F_SIZE_KNOWN;
			f->len = n;
			f->orig_len = n;
			return;
		}
	}
	/* no peer (failed connect): the argument */
	len = (int)ulen - 2;
	n = len > 0 ? len : 0;
	if (n > VIGIL_UNIX_PATH_MAX)
		n = VIGIL_UNIX_PATH_MAX;
	barrier_var(n);
	n &= 127;
	len = n;
	if (uaddr && n && !bpf_probe_read_user(s->rec + off, n, uaddr + 2)) {
		/* a pathname's length is up to its NUL; abstract names keep all */
		if (s->rec[off] != 0) {
			int i;

			for (i = 0; i < VIGIL_UNIX_PATH_MAX; i++) {
				if (i >= len || s->rec[off + i] == 0)
					break;
			}
			len = i;
		}
		f->flags = VIGIL_F_PRESENT | VIGIL_F_SIZE_KNOWN;
		f->len = len;
		f->orig_len = len;
		return;
	}
	f->flags = VIGIL_F_UNAVAILABLE;
	f->reason = VIGIL_R_LOOKUP_FAILED;
}

static __always_inline int vigil_net_exit(__u32 sys, __u32 type, long ret, const int nargs)
{
	struct vigil_stash st = {};
	struct vigil_scratch *s;
	struct vigil_net *r;
	struct socket *sock;
	struct file *file;
	struct sock *sk;
	__u16 family;
	long fd;
	__u32 off;

	if (vigil_ignored(bpf_get_current_pid_tgid() >> 32))
		return 0;
	vigil_syscall_args(&st, nargs);
	fd = (sys == VIGIL_SYS_ACCEPT || sys == VIGIL_SYS_ACCEPT4) && ret >= 0 ? ret : (long)st.args[0];
	file = vigil_fd_file(fd);
	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & VIGIL_S_IFMT) != VIGIL_S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != VIGIL_AF_INET && family != VIGIL_AF_INET6 &&
	    !(family == VIGIL_AF_UNIX && sys == VIGIL_SYS_CONNECT))
		return 0;
	if (vigil_excluded_early(type))
		return 0;

	s = vigil_scratch_get(type);
	if (!s)
		return 0;
	r = (void *)s->rec;
	__builtin_memset(r, 0, sizeof(*r));
	vigil_hdr_now(&r->hdr);
	r->ret = ret;
	r->syscall = sys;
	r->hook = VIGIL_HOOK_SYSCALL_TP;
	r->family = family;
	r->fd = fd;
	r->type = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_type);
	r->protocol = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	vigil_current_comm(r->comm);
	off = sizeof(*r);
	r->unix_path.off = off;
	if (sys == VIGIL_SYS_LISTEN)
		r->backlog = st.args[1];
	if (family == VIGIL_AF_UNIX) {
		vigil_unix_path(s, off, &r->unix_path, sk, (const void *)st.args[1], st.args[2]);
		off += r->unix_path.len;
		r->addr_source = r->unix_path.flags & VIGIL_F_PRESENT ? VIGIL_PATH_SRC_OBJECT : VIGIL_PATH_SRC_NONE;
	} else {
		r->addr_source = VIGIL_PATH_SRC_OBJECT;
		r->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		r->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		if (family == VIGIL_AF_INET) {
			BPF_CORE_READ_INTO((__u32 *)r->laddr, sk, __sk_common.skc_rcv_saddr);
			BPF_CORE_READ_INTO((__u32 *)r->raddr, sk, __sk_common.skc_daddr);
		} else {
			bpf_core_read(r->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
			bpf_core_read(r->raddr, 16, &sk->__sk_common.skc_v6_daddr);
		}
		/* A failed connect resets the socket (tcp_disconnect() clears the
		 * peer), a failed bind leaves it unbound: then the argument. */
		if (sys == VIGIL_SYS_CONNECT &&
		    ((ret < 0 && ret != -115 /* EINPROGRESS */) || (!r->rport && vigil_zero16(r->raddr))))
			vigil_net_arg_addr(r, (const void *)st.args[1], 1);
		if (sys == VIGIL_SYS_BIND && ret < 0)
			vigil_net_arg_addr(r, (const void *)st.args[1], 0);
		r->unix_path.flags = 0;  /* absent */
	}
	vigil_emit(r, off, type);
	vigil_scratch_put(s);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int net_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_net_exit(VIGIL_SYS_CONNECT, VIGIL_EV_NETWORK_CONNECT, ctx->ret, 3);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int net_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_net_exit(VIGIL_SYS_ACCEPT, VIGIL_EV_NETWORK_ACCEPT, ctx->ret, 3);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int net_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_net_exit(VIGIL_SYS_ACCEPT4, VIGIL_EV_NETWORK_ACCEPT, ctx->ret, 4);
}

SEC("tracepoint/syscalls/sys_exit_bind")
int net_bind_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_net_exit(VIGIL_SYS_BIND, VIGIL_EV_NETWORK_BIND, ctx->ret, 3);
}

SEC("tracepoint/syscalls/sys_exit_listen")
int net_listen_exit(struct trace_event_raw_sys_exit *ctx)
{
	return vigil_net_exit(VIGIL_SYS_LISTEN, VIGIL_EV_NETWORK_LISTEN, ctx->ret, 2);
}
