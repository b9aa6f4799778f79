//! Opens one file through io_uring (no open syscall runs), for the
//! privileged tests: `vigil-uring-open OP MODE PATH FLAGS`, OP `openat` or
//! `openat2`, MODE `inline` (issued by the submitting thread, punted to an
//! io-wq worker when it would block), `async` (IOSQE_ASYNC: always an
//! io-wq worker) or `sqpoll` (submitted by the ring's SQPOLL thread), FLAGS
//! the open flags in decimal; file mode 0640 (with O_CREAT), the path
//! relative to the cwd. Prints
//! the completion's result (a descriptor or -errno) and exits 0 when the
//! ring itself worked. A fifth argument `skip` submits the open with
//! IOSQE_CQE_SKIP_SUCCESS: a success posts no completion, so the helper
//! watches for the descriptor the open must take (the lowest free one)
//! or a failure's completion, whichever comes first. A fifth argument
//! `overflow` fills the completion queue with no-ops first, so that the
//! open's completion overflows it (checked: the helper fails otherwise).

use io_uring::{opcode, squeue, types, IoUring};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let (op, mode, path, flags, variant) = match &args[..] {
        [op, mode, path, flags] => (op, mode, path, flags, None),
        [op, mode, path, flags, v] if v == "skip" || v == "overflow" => (op, mode, path, flags, v.to_str()),
        _ => return Err("usage: vigil-uring-open openat|openat2 inline|async|sqpoll PATH FLAGS [skip|overflow]".into()),
    };
    let (skip, overflow) = (variant == Some("skip"), variant == Some("overflow"));
    let path = CString::new(path.as_bytes())?;
    let flags: i32 = flags.to_str().ok_or("flags")?.parse()?;
    let mut ring = match mode.to_str() {
        Some("sqpoll") => IoUring::builder().setup_sqpoll(1000).build(ENTRIES)?,
        Some("inline" | "async") => IoUring::new(ENTRIES)?,
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
    let entry = if skip { entry.flags(squeue::Flags::SKIP_SUCCESS) } else { entry };
    if overflow {
        fill_completion_queue(&mut ring)?;
    }
    // The descriptor a successful open takes: the lowest free one.
    let next_fd = lowest_free_fd()?;
    // SAFETY: the path and the open_how outlive the submission (they live
    // until the open has completed, below).
    unsafe { ring.submission().push(&entry.user_data(0x5eed))? };
    let result = if skip {
        ring.submit()?;
        wait_for_skipped(&mut ring, next_fd)?
    } else if overflow {
        ring.submit()?;
        // The open completes during the submission, or in an io-wq worker.
        if !(0..5000).any(|_| {
            ring.submission().sync();
            ring.submission().cq_overflow() || {
                std::thread::sleep(std::time::Duration::from_millis(1));
                false
            }
        }) {
            return Err("the open's completion did not overflow the completion queue within 5 s".into());
        }
        // Make room: the kernel moves the overflowed entry in at the next
        // wait.
        while let Some(cqe) = ring.completion().next() {
            if cqe.user_data() != NOP {
                return Err("unexpected completion".into());
            }
        }
        ring.submit_and_wait(1)?;
        completion_result(&mut ring)?.ok_or("no completion")?
    } else {
        ring.submit_and_wait(1)?;
        completion_result(&mut ring)?.ok_or("no completion")?
    };
    println!("{result}");
    Ok(())
}

type Error = Box<dyn std::error::Error>;

/// Submission queue entries; the completion queue has twice as many.
const ENTRIES: u32 = 8;

/// user_data of the no-ops that fill the completion queue.
const NOP: u64 = 0x0;

/// Fill the completion queue with the completions of no-ops, unread.
fn fill_completion_queue(ring: &mut IoUring) -> Result<(), Error> {
    let cq = ring.completion().capacity();
    let mut done = 0;
    while done < cq {
        let n = (cq - done).min(ring.submission().capacity());
        for _ in 0..n {
            // SAFETY: a no-op refers to no memory.
            unsafe { ring.submission().push(&opcode::Nop::new().build().user_data(NOP))? };
        }
        ring.submit_and_wait(done + n)?;
        done += n;
    }
    if ring.completion().len() != cq {
        return Err("the completion queue did not fill".into());
    }
    Ok(())
}

/// The lowest descriptor number not in use.
fn lowest_free_fd() -> Result<i32, Error> {
    // SAFETY: plain descriptor syscalls on a descriptor this function owns.
    let fd = unsafe { libc::fcntl(0, libc::F_DUPFD, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: as above.
    unsafe { libc::close(fd) };
    Ok(fd)
}

/// The result of the open's completion, if one was posted.
fn completion_result(ring: &mut IoUring) -> Result<Option<i64>, Error> {
    match ring.completion().next() {
        None => Ok(None),
        Some(cqe) if cqe.user_data() == 0x5eed => Ok(Some(i64::from(cqe.result()))),
        Some(_) => Err("unexpected completion".into()),
    }
}

/// An open submitted with IOSQE_CQE_SKIP_SUCCESS: `fd` once it is open (a
/// success), or the failure's completion result.
fn wait_for_skipped(ring: &mut IoUring, fd: i32) -> Result<i64, Error> {
    for _ in 0..5000 {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            return Ok(i64::from(fd));
        }
        if let Some(res) = completion_result(ring)? {
            return Ok(res);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err("the open neither completed nor failed within 5 s".into())
}
