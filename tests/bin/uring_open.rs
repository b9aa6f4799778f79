//! Opens one file through io_uring (no open syscall runs), for the
//! privileged tests: `vigil-uring-open OP MODE PATH FLAGS`, OP `openat` or
//! `openat2`, MODE `inline` (issued by the submitting thread, punted to an
//! io-wq worker when it would block), `async` (IOSQE_ASYNC: always an
//! io-wq worker) or `sqpoll` (submitted by the ring's SQPOLL thread), FLAGS
//! the open flags in decimal; file mode 0640 (with O_CREAT), the path
//! relative to the cwd. Prints
//! the completion's result (a descriptor or -errno) and exits 0 when the
//! ring itself worked.

use io_uring::{opcode, squeue, types, IoUring};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let [op, mode, path, flags] = &args[..] else {
        return Err("usage: vigil-uring-open openat|openat2 inline|async|sqpoll PATH FLAGS".into());
    };
    let path = CString::new(path.as_bytes())?;
    let flags: i32 = flags.to_str().ok_or("flags")?.parse()?;
    let mut ring = match mode.to_str() {
        Some("sqpoll") => IoUring::builder().setup_sqpoll(1000).build(8)?,
        Some("inline" | "async") => IoUring::new(8)?,
        _ => return Err(format!("unknown mode {mode:?}").into()),
    };
    // openat2 refuses a mode without O_CREAT (openat ignores it).
    let mode_bits: u32 = if flags & libc::O_CREAT != 0 { 0o640 } else { 0 };
    let how = types::OpenHow::new().flags(u64::from(flags.cast_unsigned())).mode(u64::from(mode_bits));
    let entry = match op.to_str() {
        Some("openat") => opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr()).flags(flags).mode(mode_bits).build(),
        Some("openat2") => opcode::OpenAt2::new(types::Fd(libc::AT_FDCWD), path.as_ptr(), &how).build(),
        _ => return Err(format!("unknown op {op:?}").into()),
    };
    let entry = if mode.to_str() == Some("async") { entry.flags(squeue::Flags::ASYNC) } else { entry };
    // SAFETY: the path and the open_how outlive the submission (they live
    // until the completion is read below).
    unsafe { ring.submission().push(&entry.user_data(0x5eed))? };
    ring.submit_and_wait(1)?;
    let cqe = ring.completion().next().ok_or("no completion")?;
    if cqe.user_data() != 0x5eed {
        return Err("unexpected completion".into());
    }
    println!("{}", cqe.result());
    Ok(())
}
