//! The command's memory allocator: glibc's until the input turns out to be
//! large, mimalloc from then on.
//!
//! A restore of a few rules is over in about a millisecond, most of it
//! process start-up, and mimalloc's first allocation alone (a fresh huge
//! page to fault in and clear) costs a third of that; glibc's allocator
//! costs nothing to start. A restore of thousands of rules allocates and
//! frees a few small objects per rule on two threads, where mimalloc is
//! markedly faster than glibc's (which spends its time consolidating free
//! chunks and handing blocks back between thread arenas). So the command
//! starts on glibc's and switches once, before parsing, when the input is
//! large ([`use_mimalloc`]); a block freed after the switch is given back to
//! whichever allocator it came from (mimalloc knows its own blocks).
//!
//! Besides src/sys.rs in the library, this is the one place with `unsafe`:
//! an allocator is unsafe by definition. Each allocator function only
//! forwards to one of the two allocators, with the caller's layout; [`exit`]
//! ends the process with `_exit`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use libmimalloc_sys as mi;

/// glibc's allocator, then mimalloc after [`use_mimalloc`].
pub struct Switching;

static MIMALLOC: AtomicBool = AtomicBool::new(false);

/// mimalloc's `mi_option_purge_delay` (v3's mimalloc.h; libmimalloc-sys
/// names the options of v2 only).
const MI_OPTION_PURGE_DELAY: mi::mi_option_t = 15;

/// From this input size on, memory freed is given back to the system at
/// once (see [`use_mimalloc`]).
pub const GIVE_BACK_AT_ONCE: u64 = 8 << 20;

/// How long mimalloc keeps freed memory before it gives it back, in
/// milliseconds, for a smaller input.
const SMALL_PURGE_DELAY: libc::c_long = 10;

/// Allocates with mimalloc from now on. Called once, before the threads of
/// a large restore start, with the input's size.
///
/// For an input of [`GIVE_BACK_AT_ONCE`] or more, memory freed is given
/// back to the system at once: such a restore frees the input's lines and
/// each table's encoded rules while it lays out the next, and what it
/// keeps is the process's peak size (at 100k rules, 116 MB with mimalloc's
/// default delay, 91 MB without). A smaller input keeps freed memory
/// 10 ms: the parse frees and allocates small blocks all along, and pages
/// given back at once come back as fresh pages to fault in and clear
/// (at 10k rules, about 2 ms of a 40 ms restore, for 4 to 6 MB more at
/// the peak).
pub fn use_mimalloc(input_len: u64) {
    let delay = if input_len >= GIVE_BACK_AT_ONCE {
        0
    } else {
        SMALL_PURGE_DELAY
    };
    // SAFETY: sets an option before mimalloc's first allocation here.
    unsafe { mi::mi_option_set(MI_OPTION_PURGE_DELAY, delay) };
    MIMALLOC.store(true, Ordering::SeqCst);
}

/// Ends the process with `code`, once standard output and error are
/// flushed. After the switch to mimalloc, without the clean-up it does at
/// exit (giving back, page range by page range, memory the kernel takes
/// back at once when the process ends: about 30 madvise calls after a
/// restore of 10k rules, which took 37.0 instead of 39.2 ms without them,
/// medians of 101 runs).
pub fn exit(code: u8) -> std::process::ExitCode {
    if !on_mimalloc() {
        return std::process::ExitCode::from(code);
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = std::io::Write::flush(&mut std::io::stderr());
    // SAFETY: _exit ends the process; nothing of it is used after.
    unsafe { libc::_exit(code.into()) }
}

fn on_mimalloc() -> bool {
    MIMALLOC.load(Ordering::Relaxed)
}

/// True for a block mimalloc handed out (false for glibc's).
///
/// # Safety
/// `p` is a block of this allocator.
unsafe fn is_mimalloc(p: *mut u8) -> bool {
    // SAFETY: a lookup in mimalloc's page map; any address may be asked.
    unsafe { mi::mi_is_in_heap_region(p as *const c_void) }
}

// SAFETY: every block is allocated by one of two sound allocators with the
// caller's layout and returned to the allocator it came from: before the
// switch every block is glibc's; after it, mimalloc recognises its own.
unsafe impl GlobalAlloc for Switching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_mimalloc() {
            // SAFETY: layout.size() is non-zero (GlobalAlloc's contract).
            unsafe { mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8 }
        } else {
            // SAFETY: forwarded with the same contract.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if on_mimalloc() {
            // SAFETY: as in alloc.
            unsafe { mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8 }
        } else {
            // SAFETY: forwarded with the same contract.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr is a live block of this allocator (the caller's
        // contract), given back to the allocator that made it.
        unsafe {
            if on_mimalloc() && is_mimalloc(ptr) {
                mi::mi_free(ptr as *mut c_void)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: ptr is a live block of this allocator with `layout`, and
        // new_size is non-zero (the caller's contract).
        unsafe {
            if !on_mimalloc() {
                return System.realloc(ptr, layout, new_size);
            }
            if is_mimalloc(ptr) {
                return mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align())
                    as *mut u8;
            }
            // A glibc block from before the switch moves to mimalloc.
            let new = mi::mi_malloc_aligned(new_size, layout.align()) as *mut u8;
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                System.dealloc(ptr, layout);
            }
            new
        }
    }
}
