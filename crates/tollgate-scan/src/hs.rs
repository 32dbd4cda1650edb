//! A thin, safe binding over the parts of Hyperscan's C API (`libhs` 5.x) this crate uses: block
//! mode multi-pattern compile, scratch allocation and block scans.
//!
//! Why our own binding: the `hyperscan` crate (0.3.2) works with Debian's libhs but has been
//! unmaintained since 2022, and `vectorscan-rs` builds the library from source (≈10 minutes,
//! needs cmake and Boost). Six C functions are all we need; they are declared here and linked
//! from the system library found by `build.rs`.
//!
//! Safety model: a [`Database`] is immutable after compilation and Hyperscan documents that one
//! database may be scanned from many threads at once, so it is `Send + Sync`. A [`Scratch`] is
//! per-thread working memory: it is `Send` but not `Sync`, and [`Database::scan`] takes it by
//! `&mut`, so it can never be used by two scans at once. Each scratch remembers the database it
//! was allocated for and a scan with a foreign scratch is refused.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_ulonglong, c_void};
use std::ptr;

/// Match case-insensitively (ASCII).
pub const FLAG_CASELESS: u32 = 1;
/// `.` matches newlines.
pub const FLAG_DOTALL: u32 = 2;
/// Report at most one match per pattern and scan.
pub const FLAG_SINGLEMATCH: u32 = 8;
/// Prefilter mode: the pattern may be approximated but reports a superset of its matches.
pub const FLAG_PREFILTER: u32 = 128;

const HS_SUCCESS: c_int = 0;
const HS_SCAN_TERMINATED: c_int = -3;
const HS_MODE_BLOCK: c_uint = 1;

#[repr(C)]
struct HsCompileError {
    message: *mut c_char,
    expression: c_int,
}

#[repr(C)]
struct HsDatabase {
    _p: [u8; 0],
}

#[repr(C)]
struct HsScratch {
    _p: [u8; 0],
}

type MatchHandler = unsafe extern "C" fn(
    id: c_uint,
    from: c_ulonglong,
    to: c_ulonglong,
    flags: c_uint,
    ctx: *mut c_void,
) -> c_int;

unsafe extern "C" {
    fn hs_compile_multi(
        expressions: *const *const c_char,
        flags: *const c_uint,
        ids: *const c_uint,
        elements: c_uint,
        mode: c_uint,
        platform: *const c_void,
        db: *mut *mut HsDatabase,
        error: *mut *mut HsCompileError,
    ) -> c_int;
    fn hs_free_compile_error(error: *mut HsCompileError) -> c_int;
    fn hs_free_database(db: *mut HsDatabase) -> c_int;
    fn hs_alloc_scratch(db: *const HsDatabase, scratch: *mut *mut HsScratch) -> c_int;
    fn hs_free_scratch(scratch: *mut HsScratch) -> c_int;
    fn hs_scan(
        db: *const HsDatabase,
        data: *const c_char,
        length: c_uint,
        flags: c_uint,
        scratch: *mut HsScratch,
        on_event: Option<MatchHandler>,
        context: *mut c_void,
    ) -> c_int;
    fn hs_version() -> *const c_char;
}

/// One expression to compile.
#[derive(Debug, Clone)]
pub struct Expr {
    /// Pattern text (PCRE subset understood by Hyperscan).
    pub pattern: String,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Id reported with matches.
    pub id: u32,
}

/// A compile failure: which expression (index into the input slice) and Hyperscan's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Index of the offending expression, or `None` when the failure is not about one expression.
    pub index: Option<usize>,
    /// Hyperscan's message.
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A compiled block-mode database.
#[derive(Debug)]
pub struct Database {
    db: *mut HsDatabase,
}

// SAFETY: a compiled database is immutable; Hyperscan allows concurrent scans of one database
// (each with its own scratch).
unsafe impl Send for Database {}
// SAFETY: as above — all access through `&Database` is read-only in libhs.
unsafe impl Sync for Database {}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: `db` came from hs_compile_multi and is freed exactly once.
        unsafe {
            hs_free_database(self.db);
        }
    }
}

/// Per-thread scratch space for scanning one database.
#[derive(Debug)]
pub struct Scratch {
    s: *mut HsScratch,
    db: *const HsDatabase,
}

// SAFETY: scratch memory may move between threads; it is only used through `&mut`.
unsafe impl Send for Scratch {}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: `s` came from hs_alloc_scratch and is freed exactly once.
        unsafe {
            hs_free_scratch(self.s);
        }
    }
}

/// The linked library's version string.
pub fn version() -> String {
    // SAFETY: hs_version returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(hs_version()) }
        .to_string_lossy()
        .into_owned()
}

impl Database {
    /// Compile `exprs` into one block-mode database.
    pub fn compile(exprs: &[Expr]) -> Result<Database, CompileError> {
        if exprs.is_empty() {
            return Err(CompileError {
                index: None,
                message: "no expressions".into(),
            });
        }
        let mut cstrs = Vec::with_capacity(exprs.len());
        for (i, e) in exprs.iter().enumerate() {
            match CString::new(e.pattern.as_bytes()) {
                Ok(c) => cstrs.push(c),
                Err(_) => {
                    return Err(CompileError {
                        index: Some(i),
                        message: "pattern contains a NUL byte".into(),
                    });
                }
            }
        }
        let ptrs: Vec<*const c_char> = cstrs.iter().map(|c| c.as_ptr()).collect();
        let flags: Vec<c_uint> = exprs.iter().map(|e| e.flags).collect();
        let ids: Vec<c_uint> = exprs.iter().map(|e| e.id).collect();
        let n = c_uint::try_from(exprs.len()).map_err(|_| CompileError {
            index: None,
            message: "too many expressions".into(),
        })?;
        let mut db: *mut HsDatabase = ptr::null_mut();
        let mut err: *mut HsCompileError = ptr::null_mut();
        // SAFETY: the three arrays have `n` elements and outlive the call; `db`/`err` are
        // valid out-pointers.
        let rc = unsafe {
            hs_compile_multi(
                ptrs.as_ptr(),
                flags.as_ptr(),
                ids.as_ptr(),
                n,
                HS_MODE_BLOCK,
                ptr::null(),
                &mut db,
                &mut err,
            )
        };
        if rc == HS_SUCCESS && !db.is_null() {
            return Ok(Database { db });
        }
        let mut out = CompileError {
            index: None,
            message: format!("hs_compile_multi failed ({rc})"),
        };
        if !err.is_null() {
            // SAFETY: on failure `err` points to a valid hs_compile_error_t that we free once.
            unsafe {
                let e = &*err;
                if !e.message.is_null() {
                    out.message = CStr::from_ptr(e.message).to_string_lossy().into_owned();
                }
                out.index = usize::try_from(e.expression).ok();
                hs_free_compile_error(err);
            }
        }
        Err(out)
    }

    /// Allocate scratch space for this database.
    pub fn scratch(&self) -> Result<Scratch, String> {
        let mut s: *mut HsScratch = ptr::null_mut();
        // SAFETY: `self.db` is a valid database; `s` is a valid out-pointer.
        let rc = unsafe { hs_alloc_scratch(self.db, &mut s) };
        if rc != HS_SUCCESS || s.is_null() {
            return Err(format!("hs_alloc_scratch failed ({rc})"));
        }
        Ok(Scratch { s, db: self.db })
    }

    /// Scan `data`, calling `on_match(id, from, to)` for every match end (`from` is 0 unless
    /// start-of-match reporting was requested). Returning `false` from the callback stops the
    /// scan. Returns `Err` if `scratch` belongs to another database or libhs fails.
    pub fn scan<F: FnMut(u32, usize, usize) -> bool>(
        &self,
        data: &[u8],
        scratch: &mut Scratch,
        mut on_match: F,
    ) -> Result<(), String> {
        if scratch.db != self.db.cast_const() {
            return Err("scratch was allocated for a different database".into());
        }
        let len = c_uint::try_from(data.len()).map_err(|_| "input larger than 4 GiB")?;
        unsafe extern "C" fn trampoline<F: FnMut(u32, usize, usize) -> bool>(
            id: c_uint,
            from: c_ulonglong,
            to: c_ulonglong,
            _flags: c_uint,
            ctx: *mut c_void,
        ) -> c_int {
            // SAFETY: `ctx` is the `&mut F` passed to hs_scan below, alive for the whole call.
            let f = unsafe { &mut *ctx.cast::<F>() };
            if f(id, from as usize, to as usize) {
                0
            } else {
                1
            }
        }
        // SAFETY: `data` is valid for `len` bytes; scratch matches this database (checked) and
        // is exclusively borrowed; the context pointer outlives the call.
        let rc = unsafe {
            hs_scan(
                self.db,
                data.as_ptr().cast(),
                len,
                0,
                scratch.s,
                Some(trampoline::<F>),
                (&mut on_match as *mut F).cast(),
            )
        };
        match rc {
            HS_SUCCESS | HS_SCAN_TERMINATED => Ok(()),
            rc => Err(format!("hs_scan failed ({rc})")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn e(p: &str, flags: u32, id: u32) -> Expr {
        Expr {
            pattern: p.into(),
            flags,
            id,
        }
    }

    #[test]
    fn compiles_and_scans() {
        let db = Database::compile(&[e("foo", 0, 7), e("b[a-z]r", FLAG_CASELESS, 9)]).unwrap();
        let mut s = db.scratch().unwrap();
        let mut hits = vec![];
        db.scan(b"xx foo BAR foo", &mut s, |id, _, to| {
            hits.push((id, to));
            true
        })
        .unwrap();
        assert_eq!(hits, vec![(7, 6), (9, 10), (7, 14)]);
    }

    #[test]
    fn stop_early_and_foreign_scratch() {
        let db = Database::compile(&[e("a", 0, 1)]).unwrap();
        let other = Database::compile(&[e("b", 0, 1)]).unwrap();
        let mut s = db.scratch().unwrap();
        let mut n = 0;
        db.scan(b"aaaa", &mut s, |_, _, _| {
            n += 1;
            false
        })
        .unwrap();
        assert_eq!(n, 1);
        let mut s2 = other.scratch().unwrap();
        assert!(db.scan(b"a", &mut s2, |_, _, _| true).is_err());
    }

    #[test]
    fn compile_error_names_the_expression() {
        let err = Database::compile(&[e("ok", 0, 0), e("(unclosed", 0, 1)]).unwrap_err();
        assert_eq!(err.index, Some(1));
        assert!(!err.message.is_empty());
        assert!(version().starts_with('5'));
    }
}
