//! errno names (Linux, asm-generic numbering, which x86-64 and arm64 use)
//! for `error.type` of failed system calls.

/// Names of errno 1..=133; "" for numbers Linux does not use.
const NAMES: [&str; 133] = [
    "EPERM",
    "ENOENT",
    "ESRCH",
    "EINTR",
    "EIO",
    "ENXIO",
    "E2BIG",
    "ENOEXEC",
    "EBADF",
    "ECHILD",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "ENOTBLK",
    "EBUSY",
    "EEXIST",
    "EXDEV",
    "ENODEV",
    "ENOTDIR",
    "EISDIR",
    "EINVAL",
    "ENFILE",
    "EMFILE",
    "ENOTTY",
    "ETXTBSY",
    "EFBIG",
    "ENOSPC",
    "ESPIPE",
    "EROFS",
    "EMLINK",
    "EPIPE",
    "EDOM",
    "ERANGE",
    "EDEADLK",
    "ENAMETOOLONG",
    "ENOLCK",
    "ENOSYS",
    "ENOTEMPTY",
    "ELOOP",
    "",
    "ENOMSG",
    "EIDRM",
    "ECHRNG",
    "EL2NSYNC",
    "EL3HLT",
    "EL3RST",
    "ELNRNG",
    "EUNATCH",
    "ENOCSI",
    "EL2HLT",
    "EBADE",
    "EBADR",
    "EXFULL",
    "ENOANO",
    "EBADRQC",
    "EBADSLT",
    "",
    "EBFONT",
    "ENOSTR",
    "ENODATA",
    "ETIME",
    "ENOSR",
    "ENONET",
    "ENOPKG",
    "EREMOTE",
    "ENOLINK",
    "EADV",
    "ESRMNT",
    "ECOMM",
    "EPROTO",
    "EMULTIHOP",
    "EDOTDOT",
    "EBADMSG",
    "EOVERFLOW",
    "ENOTUNIQ",
    "EBADFD",
    "EREMCHG",
    "ELIBACC",
    "ELIBBAD",
    "ELIBSCN",
    "ELIBMAX",
    "ELIBEXEC",
    "EILSEQ",
    "ERESTART",
    "ESTRPIPE",
    "EUSERS",
    "ENOTSOCK",
    "EDESTADDRREQ",
    "EMSGSIZE",
    "EPROTOTYPE",
    "ENOPROTOOPT",
    "EPROTONOSUPPORT",
    "ESOCKTNOSUPPORT",
    "EOPNOTSUPP",
    "EPFNOSUPPORT",
    "EAFNOSUPPORT",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ENETDOWN",
    "ENETUNREACH",
    "ENETRESET",
    "ECONNABORTED",
    "ECONNRESET",
    "ENOBUFS",
    "EISCONN",
    "ENOTCONN",
    "ESHUTDOWN",
    "ETOOMANYREFS",
    "ETIMEDOUT",
    "ECONNREFUSED",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "EALREADY",
    "EINPROGRESS",
    "ESTALE",
    "EUCLEAN",
    "ENOTNAM",
    "ENAVAIL",
    "EISNAM",
    "EREMOTEIO",
    "EDQUOT",
    "ENOMEDIUM",
    "EMEDIUMTYPE",
    "ECANCELED",
    "ENOKEY",
    "EKEYEXPIRED",
    "EKEYREVOKED",
    "EKEYREJECTED",
    "EOWNERDEAD",
    "ENOTRECOVERABLE",
    "ERFKILL",
    "EHWPOISON",
];

/// Kernel-internal codes 512..=531 (include/linux/errno.h). They never
/// reach user space, but a syscall exit hook runs before signal handling
/// turns ERESTARTSYS and friends into a restart or EINTR, so records see
/// them.
const INTERNAL: [&str; 20] = [
    "ERESTARTSYS",
    "ERESTARTNOINTR",
    "ERESTARTNOHAND",
    "ENOIOCTLCMD",
    "ERESTART_RESTARTBLOCK",
    "EPROBE_DEFER",
    "EOPENSTALE",
    "ENOPARAM",
    "",
    "EBADHANDLE",
    "ENOTSYNC",
    "EBADCOOKIE",
    "ENOTSUPP",
    "ETOOSMALL",
    "ESERVERFAULT",
    "EBADTYPE",
    "EJUKEBOX",
    "EIOCBQUEUED",
    "ERECALLCONFLICT",
    "ENOGRACE",
];

/// `error.type` for a code with no name (OpenTelemetry's fallback value);
/// the number itself is in `vigil.syscall.return`.
pub const OTHER: &str = "_OTHER";

/// The symbolic name of `errno` (e.g. 13 -> `EACCES`, 512 ->
/// `ERESTARTSYS`), `None` when unknown.
pub fn name(errno: i32) -> Option<&'static str> {
    let n = usize::try_from(errno).ok()?;
    let name = match n {
        1..=133 => NAMES[n - 1],
        512..=531 => INTERNAL[n - 512],
        _ => "",
    };
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_internal_codes_are_named_and_the_rest_unknown() {
        assert_eq!(super::name(512), Some("ERESTARTSYS"));
        assert_eq!(super::name(516), Some("ERESTART_RESTARTBLOCK"));
        assert_eq!(super::name(524), Some("ENOTSUPP"));
        assert_eq!(super::name(531), Some("ENOGRACE"));
        for unknown in [0, -1, 41, 134, 511, 520, 532, 4095] {
            assert_eq!(super::name(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn names_match_libc() {
        for (n, want) in [
            (libc::EPERM, "EPERM"),
            (libc::ENOENT, "ENOENT"),
            (libc::EACCES, "EACCES"),
            (libc::ELOOP, "ELOOP"),
            (libc::EINPROGRESS, "EINPROGRESS"),
            (libc::ECONNREFUSED, "ECONNREFUSED"),
            (libc::EHWPOISON, "EHWPOISON"),
            (libc::ENOSYS, "ENOSYS"),
        ] {
            assert_eq!(super::name(n), Some(want));
        }
        assert_eq!(super::name(0), None);
        assert_eq!(super::name(41), None, "41 is unused");
        assert_eq!(super::name(-1), None);
        assert_eq!(super::name(4095), None);
    }
}
