//! Pre-encoded attribute keys of the record attributes the map stage
//! writes for every record ([`super::wire::Key`]): `a.int(&key::PROCESS_PID,
//! ..)` writes the same bytes as `a.int(attr::PROCESS_PID, ..)`, with the
//! key's tag, length and bytes copied as one constant-size block.

use super::attr;
use super::wire::Key;

macro_rules! keys {
    ($($name:ident),* $(,)?) => {
        $(
            #[doc = concat!("[`attr::", stringify!($name), "`], pre-encoded.")]
            pub const $name: Key<{ attr::$name.len() + 2 }> = Key::new(attr::$name);
        )*

        /// Every pre-encoded key, with its name and encoded bytes (tests).
        #[cfg(test)]
        const ALL: &[(&str, &[u8])] = &[$((attr::$name, $name.as_bytes())),*];
    };
}

keys! {
    ERROR_TYPE,
    FILE_MODE,
    FILE_NAME,
    FILE_SIZE,
    LOG_RECORD_UID,
    NETWORK_LOCAL_ADDRESS,
    NETWORK_LOCAL_PORT,
    NETWORK_PEER_ADDRESS,
    NETWORK_PEER_PORT,
    NETWORK_TRANSPORT,
    NETWORK_TYPE,
    PROCESS_ARGS_COUNT,
    PROCESS_COMMAND_ARGS,
    PROCESS_CREATION_TIME,
    PROCESS_EXECUTABLE_NAME,
    PROCESS_EXECUTABLE_PATH,
    PROCESS_EXIT_CODE,
    PROCESS_EXIT_TIME,
    PROCESS_GROUP_LEADER_PID,
    PROCESS_INTERACTIVE,
    PROCESS_LINUX_CGROUP,
    PROCESS_PARENT_PID,
    PROCESS_PID,
    PROCESS_REAL_USER_ID,
    PROCESS_SAVED_USER_ID,
    PROCESS_SESSION_LEADER_PID,
    PROCESS_USER_ID,
    PROCESS_VPID,
    THREAD_ID,
    THREAD_NAME,
    VIGIL_AUDIT_SESSION_ID,
    VIGIL_BPF_ATTACH_TYPE,
    VIGIL_BPF_COMMAND,
    VIGIL_BPF_ID,
    VIGIL_BPF_INSTRUCTIONS,
    VIGIL_BPF_MAP_TYPE,
    VIGIL_BPF_NAME,
    VIGIL_BPF_PROGRAM_TYPE,
    VIGIL_BPF_SOURCE,
    VIGIL_CGROUP_ID,
    VIGIL_CONTEXT_SOURCE,
    VIGIL_EXECUTABLE_DELETED,
    VIGIL_EXECUTABLE_INODE,
    VIGIL_EXECUTABLE_MEMFD,
    VIGIL_EXIT_CORE_DUMPED,
    VIGIL_EXIT_GROUP_DEAD,
    VIGIL_EXIT_SIGNAL,
    VIGIL_EXIT_SIGNAL_NAME,
    VIGIL_FILE_DEVICE,
    VIGIL_FILE_FLAGS,
    VIGIL_FILE_FLAG_NAMES,
    VIGIL_FILE_INODE,
    VIGIL_FILE_NEW_GROUP_ID,
    VIGIL_FILE_NEW_OWNER_ID,
    VIGIL_FILE_PATH_SOURCE,
    VIGIL_FILE_TARGET_PATH_SOURCE,
    VIGIL_FS_GROUP_ID,
    VIGIL_FS_USER_ID,
    VIGIL_GROUP_ID,
    VIGIL_HOOK,
    VIGIL_LOGIN_USER_ID,
    VIGIL_MEMFD_FLAGS,
    VIGIL_MEMFD_FLAG_NAMES,
    VIGIL_MEMFD_NAME,
    VIGIL_MEMFD_NAME_SOURCE,
    VIGIL_MODULE_FD,
    VIGIL_MODULE_FLAGS,
    VIGIL_MODULE_SIZE,
    VIGIL_MOUNT_FLAGS,
    VIGIL_MOUNT_FLAG_NAMES,
    VIGIL_NET_ADDRESS_SOURCE,
    VIGIL_NET_BACKLOG,
    VIGIL_NET_FD,
    VIGIL_NET_SOCKET_TYPE,
    VIGIL_NS_CHANGED,
    VIGIL_NS_FD,
    VIGIL_NS_FLAGS,
    VIGIL_NS_TYPES,
    VIGIL_NS_TYPES_SOURCE,
    VIGIL_PARENT_THREAD_ID,
    VIGIL_PID_NAMESPACE,
    VIGIL_PRIV_CHANGED,
    VIGIL_PRIV_REQUESTED,
    VIGIL_PROCESS_NAME_MISMATCH,
    VIGIL_PTRACE_ADDR,
    VIGIL_PTRACE_REQUEST,
    VIGIL_PTRACE_REQUEST_NAME,
    VIGIL_PTRACE_TARGET_EXE,
    VIGIL_PTRACE_TARGET_PID,
    VIGIL_PTRACE_TARGET_PROCESS_PID,
    VIGIL_REAL_GROUP_ID,
    VIGIL_SAVED_GROUP_ID,
    VIGIL_STREAM_GAP_BEFORE,
    VIGIL_STREAM_ID,
    VIGIL_STREAM_SEQ,
    VIGIL_SYSCALL,
    VIGIL_SYSCALL_RETURN,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::wire::{self, AnyRef};
    use std::borrow::Cow;

    /// Each pre-encoded key is its `KeyValue.key` field, and an attribute
    /// written with it has exactly the bytes of one written with the key
    /// as a string, for every kind of value.
    #[test]
    fn pre_encoded_keys_write_what_the_generic_writer_writes() {
        assert!(ALL.len() > 40, "{}", ALL.len());
        let args: Vec<Cow<'_, str>> = vec!["ls".into(), "x".repeat(300).into()];
        for (name, bytes) in ALL {
            let mut field = Vec::new();
            wire::put_bytes(&mut field, 1, name.as_bytes());
            assert_eq!(*bytes, field.as_slice(), "{name}");
        }
        let long = "v".repeat(200);
        for v in [
            AnyRef::Str(""),
            AnyRef::Str(&long),
            AnyRef::Int(-1),
            AnyRef::Int(0),
            AnyRef::Int(300),
            AnyRef::Int(i64::MIN),
            AnyRef::Int(i64::MAX),
            AnyRef::Utf8(b"2023-11-14T22:13:20.000005000Z"),
            AnyRef::Bool(true),
            AnyRef::StrArray(&args),
        ] {
            // Keys of several lengths.
            fn check<const N: usize>(name: &str, key: &Key<N>, v: AnyRef<'_>) {
                let (mut want, mut got) = (vec![0xee], vec![0xee]);
                wire::put_key_value(&mut want, 6, name, v);
                wire::put_key_value(&mut got, 6, key, v);
                assert_eq!(got, want, "{name} {v:?}");
            }
            check(attr::THREAD_ID, &THREAD_ID, v);
            check(attr::PROCESS_EXECUTABLE_PATH, &PROCESS_EXECUTABLE_PATH, v);
            check(attr::VIGIL_PID_NAMESPACE, &VIGIL_PID_NAMESPACE, v);
        }
        let mut a = crate::otel::Attrs::default();
        let mut b = crate::otel::Attrs::default();
        a.int(attr::PROCESS_PID, 42)
            .str(attr::THREAD_NAME, "x")
            .bool(attr::PROCESS_INTERACTIVE, false)
            .str_array(attr::PROCESS_COMMAND_ARGS, &["a", "b"]);
        b.int(&PROCESS_PID, 42).str(&THREAD_NAME, "x").bool(&PROCESS_INTERACTIVE, false).str_array(&PROCESS_COMMAND_ARGS, &["a", "b"]);
        assert_eq!(a.finish(), b.finish());
    }
}
