//! Backing files and the memories made of them.
//!
//! - A [`BackingFile`] is a shared memory file (Linux `memfd_create`) with an allocator over
//!   its pages and a reference count per page. A page's data lives while something refers to
//!   it; when its count drops to zero its memory goes back to the kernel
//!   (`fallocate(PUNCH_HOLE)`) and its offset is reused for fresh pages, which read as zero.
//! - A [`BackedMemory`] is a Wasmtime linear memory (made by [`BackedMemoryCreator`], which
//!   `Config::with_host_memory` installs) whose accessible bytes are *extents*: runs of
//!   pages of some backing file, mapped `MAP_SHARED | MAP_FIXED` into the memory's
//!   reservation. Its own pages (at first, and as it grows) come from one file the whole
//!   process shares ([`BackingFile::shared`]: one file descriptor however many memories).
//! - [`MemoryMap`] is a memory's extents, found from its base address ([`MemoryMap::of`]).
//!   Inside the crate, `replace` changes what backs a range, part by part: the pages behind
//!   a range of the same memory or another one (so a write through either is seen through
//!   both: `vm_remap`), fresh zero pages (what freeing one mapping of shared pages gives it:
//!   every other mapping keeps the data), a private copy (`VM_PROT_COPY`), or what is there.
//!
//! Offsets and lengths are in bytes and multiples of the host's page size. Mapping a range
//! anew gives it the protection the caller names: the caller (machvm's enforcement) puts its
//! table's protection back on it. An extent is at least one kernel mapping (more where
//! protections differ inside it).
//!
//! Every extent past a memory's first is a kernel mapping of its own, so a memory takes
//! `extents - 1` mappings from the process's mapping budget (spec §7,
//! [`crate::enforce::mapping_budget`]), before it maps anything; a replacement or a growth
//! the budget cannot afford is refused (`PlaceError::Budget`) and changes nothing.
//!
//! A replacement is all or nothing. When the kernel refuses one of its
//! `MAP_FIXED` `mmap`s (a budget set above what the kernel allows), the pieces mapped before
//! it get their old pages back and the error is `PlaceError::Refused`. A refused
//! `MAP_FIXED` leaves the old mapping in place on Linux 6.12 and later
//! (`a_mapping_the_kernel_refuses_changes_nothing` runs out of mappings and checks that the
//! memory is as it was); on older kernels it may leave the range unmapped: the old pages are
//! then mapped again, and if even that is refused the answer is `PlaceError::Hole`, for
//! the caller to stop the memory's task (its extents still name the old pages, and nothing
//! may read or write them).

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use rustix::fs::{FallocateFlags, MemfdFlags};
use rustix::mm::{MapFlags, ProtFlags};
use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

/// How much a backing file grows by when it has no free range large enough.
const GROWTH: u64 = 64 << 20;

/// A shared memory file whose pages back memories, counted by the mappings that refer to
/// them.
pub struct BackingFile {
    fd: OwnedFd,
    state: Mutex<FileState>,
}

#[derive(Default)]
struct FileState {
    /// The file's size in bytes.
    len: u64,
    /// Counted ranges: start → (end, count ≥ 1); ranges do not overlap.
    refs: BTreeMap<u64, (u64, u32)>,
    /// Ranges below `len` that nothing refers to (their memory given back): start → end.
    free: BTreeMap<u64, u64>,
}

impl std::fmt::Debug for BackingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("BackingFile")
            .field("len", &state.len)
            .field("counted_ranges", &state.refs.len())
            .finish()
    }
}

impl BackingFile {
    /// A new, empty file.
    ///
    /// # Errors
    ///
    /// When the kernel cannot make one (`memfd_create`: out of file descriptors).
    pub fn new() -> io::Result<Arc<BackingFile>> {
        let fd = rustix::fs::memfd_create("machvm", MemfdFlags::CLOEXEC)?;
        Ok(Arc::new(BackingFile {
            fd,
            state: Mutex::new(FileState::default()),
        }))
    }

    /// The process's backing file, which every [`BackedMemory`] takes its pages from unless
    /// it is given another: one file descriptor for any number of memories (a process may
    /// hold only so many), its freed pages reused by all.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), the first time.
    pub fn shared() -> io::Result<Arc<BackingFile>> {
        static SHARED: OnceLock<Arc<BackingFile>> = OnceLock::new();
        if let Some(f) = SHARED.get() {
            return Ok(f.clone());
        }
        let f = BackingFile::new()?;
        Ok(SHARED.get_or_init(|| f).clone())
    }

    fn lock(&self) -> MutexGuard<'_, FileState> {
        // A panic while the lock was held cannot leave the counts half-changed in a way
        // that matters more than stopping would: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `len` bytes of fresh pages, counted once: a range nothing refers to, or the file's
    /// end, grown. Their content is zero.
    ///
    /// # Errors
    ///
    /// When the file cannot grow (`ftruncate`).
    pub(crate) fn allocate(&self, len: u64) -> io::Result<u64> {
        let mut s = self.lock();
        let found = s
            .free
            .iter()
            .find(|(&start, &end)| end - start >= len)
            .map(|(&start, &end)| (start, end));
        let at = match found {
            Some((start, end)) => {
                s.free.remove(&start);
                if end - start > len {
                    s.free.insert(start + len, end);
                }
                start
            }
            None => {
                // The file grows by whole chunks (a sparse file's size costs nothing), so
                // that most allocations need no `ftruncate`: the rest is free.
                let at = s.len;
                let new_len = at
                    .checked_add(len)
                    .and_then(|end| end.checked_next_multiple_of(GROWTH))
                    .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
                rustix::fs::ftruncate(&self.fd, new_len)?;
                s.len = new_len;
                if new_len > at + len {
                    s.add_free(at + len, new_len);
                }
                at
            }
        };
        if len > 0 {
            s.refs.insert(at, (at + len, 1));
        }
        Ok(at)
    }

    /// Counts one more reference to `[offset, offset + len)`, every page of which is
    /// referred to already.
    pub(crate) fn retain(&self, offset: u64, len: u64) {
        let mut s = self.lock();
        let keys = s.ranges_of(offset, len);
        debug_assert_eq!(
            keys.iter().map(|k| s.refs[k].0 - k).sum::<u64>(),
            len,
            "retain of pages nothing refers to"
        );
        for k in keys {
            if let Some(r) = s.refs.get_mut(&k) {
                r.1 += 1;
            }
        }
    }

    /// Counts one reference less to `[offset, offset + len)`; the pages no longer referred
    /// to give their memory back to the kernel and are reused by [`allocate`](Self::allocate).
    pub(crate) fn release(&self, offset: u64, len: u64) {
        let mut s = self.lock();
        let keys = s.ranges_of(offset, len);
        let mut dead: Vec<(u64, u64)> = Vec::new();
        for k in keys {
            let Some(&(end, count)) = s.refs.get(&k) else {
                continue;
            };
            if count > 1 {
                s.refs.insert(k, (end, count - 1));
            } else {
                s.refs.remove(&k);
                match dead.last_mut() {
                    Some(last) if last.1 == k => last.1 = end,
                    _ => dead.push((k, end)),
                }
            }
        }
        for (start, end) in dead {
            // The data is no one's any more: its memory goes back, and the offsets are
            // reused, reading as zero. If the punch fails they are never reused (their old
            // data must not reach another mapping): only memory is lost.
            let punched = rustix::fs::fallocate(
                &self.fd,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                start,
                end - start,
            );
            if punched.is_ok() {
                s.add_free(start, end);
            }
        }
        s.merge_refs_around(offset, offset + len);
    }

    /// How many references the page at `offset` has (0: none).
    pub fn count(&self, offset: u64) -> u32 {
        let s = self.lock();
        match s.refs.range(..=offset).next_back() {
            Some((_, &(end, count))) if end > offset => count,
            _ => 0,
        }
    }

    /// The file's size in bytes: every page it ever handed out, the freed ones included,
    /// and the rest of the last chunk it grew by.
    pub fn len(&self) -> u64 {
        self.lock().len
    }

    /// True when the file has never handed out a page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FileState {
    /// The starts of the counted ranges inside `[offset, offset + len)`, once ranges that
    /// cross its ends are split there.
    fn ranges_of(&mut self, offset: u64, len: u64) -> Vec<u64> {
        self.split(offset);
        self.split(offset + len);
        self.refs
            .range(offset..offset + len)
            .map(|(&k, _)| k)
            .collect()
    }

    /// Makes `at` the start of a counted range if a range spans it.
    fn split(&mut self, at: u64) {
        if let Some((&start, &(end, count))) = self.refs.range(..at).next_back() {
            if end > at {
                self.refs.insert(start, (at, count));
                self.refs.insert(at, (end, count));
            }
        }
    }

    /// Joins neighbouring ranges of equal counts from just before `start` to `end`.
    fn merge_refs_around(&mut self, start: u64, end: u64) {
        let from = self
            .refs
            .range(..start)
            .next_back()
            .map_or(start, |(&k, _)| k);
        let keys: Vec<u64> = self.refs.range(from..=end).map(|(&k, _)| k).collect();
        for pair in keys.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let (Some(&(a_end, a_count)), Some(&(b_end, b_count))) =
                (self.refs.get(&a), self.refs.get(&b))
            else {
                continue;
            };
            if a_end == b && a_count == b_count {
                self.refs.remove(&b);
                self.refs.insert(a, (b_end, a_count));
            }
        }
    }

    /// Adds `[start, end)` to the free ranges, joined with its neighbours.
    fn add_free(&mut self, mut start: u64, mut end: u64) {
        if let Some((&s, &e)) = self.free.range(..start).next_back() {
            if e == start {
                self.free.remove(&s);
                start = s;
            }
        }
        if let Some(&e) = self.free.get(&end) {
            self.free.remove(&end);
            end = e;
        }
        self.free.insert(start, end);
    }
}

/// A run of pages of a backing file, mapped at some offset of a memory.
#[derive(Clone, Debug)]
struct Extent {
    len: usize,
    file: Arc<BackingFile>,
    offset: u64,
}

/// A backed memory's extents, behind its lock; found from its base address with
/// [`MemoryMap::of`].
pub struct MemoryMap {
    base: usize,
    state: Mutex<MapState>,
}

struct MapState {
    /// Bytes reserved from `base` (the memory's capacity; its guard follows).
    reserved: usize,
    /// Accessible bytes.
    size: usize,
    /// The file the memory's own pages come from.
    own: Arc<BackingFile>,
    /// Offset in the memory → extent; they tile `[0, size)`.
    extents: BTreeMap<usize, Extent>,
    /// Mappings taken from the process's budget for the extents past the first.
    charged: usize,
    /// Mappings taken from the budget ahead of a change (`prepay`), which its charges use
    /// first.
    prepaid: usize,
}

/// What backs one part of a range after [`MemoryMap::replace`].
pub(crate) enum Source<'a> {
    /// Fresh pages of the memory's own file, reading zero.
    Fresh,
    /// What backs the part now.
    Keep,
    /// The pages behind that memory's bytes from that offset on: both then show the same
    /// bytes.
    Share(&'a MemoryMap, usize),
    /// Fresh pages holding a copy of that memory's bytes from that offset on.
    Copy(&'a MemoryMap, usize),
    /// The pages held there from that offset on: the memory then shows them.
    Held(&'a Held, usize),
    /// Fresh pages holding a copy of the pages held there from that offset on.
    HeldCopy(&'a Held, usize),
}

/// Pages of backing files held by something other than a memory (a memory entry, spec §8):
/// each counted once, given back when it is dropped.
pub struct Held {
    /// (offset in the held range, extent), tiling `[0, len)`.
    pieces: Vec<(usize, Extent)>,
    len: usize,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("len", &self.len)
            .field("pieces", &self.pieces.len())
            .finish()
    }
}

impl Held {
    /// `len` bytes of fresh zero pages of the process's backing file.
    ///
    /// # Errors
    ///
    /// When `len` is not whole pages, or the file cannot grow.
    pub(crate) fn fresh(len: usize) -> io::Result<Held> {
        if !len.is_multiple_of(page()) {
            return Err(invalid("machvm: held pages must be whole pages"));
        }
        let file = BackingFile::shared()?;
        let offset = file.allocate(len as u64)?;
        let pieces = if len == 0 {
            Vec::new()
        } else {
            vec![(0, Extent { len, file, offset })]
        };
        Ok(Held { pieces, len })
    }

    /// How many bytes it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its pieces over `[at, at + len)`, cut to it, not counted; an error when the range is
    /// not whole pages within it.
    fn pieces(&self, at: usize, len: usize) -> io::Result<Vec<(usize, Extent)>> {
        let p = page();
        match at.checked_add(len) {
            Some(end) if at.is_multiple_of(p) && len.is_multiple_of(p) && end <= self.len => {}
            _ => {
                return Err(invalid(
                    "machvm: a held range must be whole pages within it",
                ))
            }
        }
        let end = at + len;
        let mut out = Vec::new();
        for (k, e) in &self.pieces {
            let (lo, hi) = ((*k).max(at), (k + e.len).min(end));
            if lo < hi {
                let offset = e.offset + (lo - k) as u64;
                let (len, file) = (hi - lo, e.file.clone());
                out.push((lo, Extent { len, file, offset }));
            }
        }
        Ok(out)
    }

    /// Its pieces over `[at, at + len)`, each counted once more.
    fn retained(&self, at: usize, len: usize) -> io::Result<Vec<(usize, Extent)>> {
        let out = self.pieces(at, len)?;
        for (_, e) in &out {
            e.file.retain(e.offset, e.len as u64);
        }
        Ok(out)
    }

    /// The pages `[at, at + len)` of it, held once more (a part of a memory entry).
    ///
    /// # Errors
    ///
    /// When the range is not whole pages within it.
    pub(crate) fn part(&self, at: usize, len: usize) -> io::Result<Held> {
        let pieces = self.retained(at, len)?;
        let pieces = pieces.into_iter().map(|(o, e)| (o - at, e)).collect();
        Ok(Held { pieces, len })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for (_, e) in &self.pieces {
            e.file.release(e.offset, e.len as u64);
        }
    }
}

/// Fresh pages of `own` holding a copy of `pieces` (extents tiling `len` bytes), read
/// through their files, counted once.
fn copy_pieces(
    own: &Arc<BackingFile>,
    pieces: &[(usize, Extent)],
    len: usize,
) -> Result<Extent, PlaceError> {
    let offset = own.allocate(len as u64).map_err(PlaceError::Refused)?;
    let mut buf = vec![0u8; (1 << 20).min(len)];
    let mut to = offset;
    for (_, e) in pieces {
        let mut done = 0;
        while done < e.len {
            let n = buf.len().min(e.len - done);
            let chunk = &mut buf[..n];
            let read = read_exact_at(&e.file, chunk, e.offset + done as u64);
            // A run of zeroes stays a hole of the fresh range, which reads as zero.
            let wrote = read.and_then(|()| {
                if chunk.iter().all(|&b| b == 0) {
                    Ok(())
                } else {
                    write_all_at(own, chunk, to)
                }
            });
            if let Err(err) = wrote {
                own.release(offset, len as u64);
                return Err(PlaceError::Refused(err));
            }
            done += n;
            to += n as u64;
        }
    }
    let file = own.clone();
    Ok(Extent { len, file, offset })
}

/// Reads `buf.len()` bytes of `file` at `offset`.
fn read_exact_at(file: &BackingFile, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(&file.fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => {
                // Past the file's end: reads as zero (the file only grows).
                buf[done..].fill(0);
                return Ok(());
            }
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes all of `buf` to `file` at `offset`.
fn write_all_at(file: &BackingFile, buf: &[u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pwrite(&file.fd, &buf[done..], offset + done as u64) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Why a replacement ([`MemoryMap::replace`]) did not happen.
#[derive(Debug)]
pub(crate) enum PlaceError {
    /// A range is not page-aligned or not within its memory: nothing changed.
    Invalid(io::Error),
    /// The process's mapping budget cannot afford the extents: nothing changed.
    Budget,
    /// The kernel refused a mapping, or the file could not grow: nothing changed but the
    /// hardware protection of the range, which is the one asked for.
    Refused(io::Error),
    /// The kernel refused a mapping, then refused to map the old pages back: part of the
    /// range may be unmapped, though the extents still name the old pages. Nothing may touch
    /// the range again (stop the memory's task).
    Hole(io::Error),
}

impl std::fmt::Display for PlaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlaceError::Invalid(e) => write!(f, "{e}"),
            PlaceError::Budget => f.write_str("machvm: the process's mapping budget is spent"),
            PlaceError::Refused(e) => write!(f, "machvm: the kernel refused a mapping: {e}"),
            PlaceError::Hole(e) => write!(
                f,
                "machvm: the kernel refused a mapping and left part of the range unmapped: {e}"
            ),
        }
    }
}

impl MapState {
    /// Takes `worst` more mappings from the budget for a change of the extents that adds at
    /// most that many; false (nothing taken) when the budget cannot afford them.
    fn charge(&mut self, worst: usize) -> bool {
        let prepaid = worst.min(self.prepaid);
        if worst > prepaid && !crate::vm::budget::try_take(worst - prepaid) {
            return false;
        }
        self.prepaid -= prepaid;
        self.charged += worst;
        true
    }

    /// How many extents placing `placed` over `[at, at + len)` would add (0 when it removes
    /// some): worked out on a copy of the extents around the range.
    fn added_by(&self, at: usize, len: usize, placed: &[(usize, Extent)]) -> usize {
        let end = at + len;
        let from = self.extents.range(..at).next_back().map_or(at, |(&k, _)| k);
        let around: BTreeMap<usize, Extent> = self
            .extents
            .range(from..=end)
            .map(|(&k, e)| (k, e.clone()))
            .collect();
        let before = around.len();
        let mut copy = MapState {
            reserved: self.reserved,
            size: self.size,
            own: self.own.clone(),
            extents: around,
            charged: 0,
            prepaid: 0,
        };
        copy.cut(at, len);
        for (off, e) in placed {
            copy.extents.insert(*off, e.clone());
        }
        copy.merge_around(at, end);
        copy.extents.len().saturating_sub(before)
    }

    /// Gives back what [`charge`](Self::charge) took beyond the extents there are now.
    fn settle(&mut self) {
        let need = self.extents.len().saturating_sub(1);
        if self.charged > need {
            crate::vm::budget::give_back(self.charged - need);
            self.charged = need;
        }
    }
}

impl std::fmt::Debug for MemoryMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("MemoryMap")
            .field("base", &(self.base as *const u8))
            .field("size", &s.size)
            .field("extents", &s.extents.len())
            .finish()
    }
}

/// The backed memories alive, by base address.
fn registry() -> MutexGuard<'static, HashMap<usize, Weak<MemoryMap>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<usize, Weak<MemoryMap>>>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn page() -> usize {
    rustix::param::page_size()
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

impl MemoryMap {
    /// The backed memory whose base is `base` (a `wasmtime::Memory`'s `data_ptr`), if one
    /// is alive.
    pub fn of(base: *const u8) -> Option<Arc<MemoryMap>> {
        registry().get(&(base as usize)).and_then(Weak::upgrade)
    }

    fn lock(&self) -> MutexGuard<'_, MapState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The memory's base address.
    pub fn base(&self) -> *mut u8 {
        self.base as *mut u8
    }

    /// Its accessible size in bytes.
    pub fn size(&self) -> usize {
        self.lock().size
    }

    /// The file and offset of the page at `offset` of the memory (`None` past its size).
    pub fn backing_of(&self, offset: usize) -> Option<(Arc<BackingFile>, u64)> {
        let s = self.lock();
        let (&at, e) = s.extents.range(..=offset).next_back()?;
        (offset < at + e.len).then(|| (e.file.clone(), e.offset + (offset - at) as u64))
    }

    /// How many extents (kernel mappings) the memory is made of.
    pub fn extents(&self) -> usize {
        self.lock().extents.len()
    }

    /// Maps the pages behind `[src, src + len)` of `from` at `[dst, dst + len)` of this
    /// memory, with protection `prot`: afterwards a write through either range is seen
    /// through both, and the pages that were at `dst` lose this reference. `from` may be
    /// this memory (the ranges may then overlap: the source's pages are taken first).
    /// [`replace`](Self::replace) with one `Share` part; for the tests.
    ///
    /// # Errors
    ///
    /// When a range is not page-aligned or not within its memory's size, the budget or the
    /// kernel refuses the mapping; then nothing changed (see `PlaceError`).
    #[cfg(test)]
    pub(crate) fn alias(
        &self,
        dst: usize,
        from: &MemoryMap,
        src: usize,
        len: usize,
        prot: ProtFlags,
    ) -> Result<(), PlaceError> {
        self.replace(dst, &[(len, Source::Share(from, src))], prot)
    }

    /// Gives `[at, at + len)` fresh zero pages (of the file of the memory's own pages),
    /// with protection `prot`; the pages that were there lose this reference (another
    /// mapping of them keeps their data). [`replace`](Self::replace) with one `Fresh` part;
    /// for the tests.
    ///
    /// # Errors
    ///
    /// As `alias`.
    #[cfg(test)]
    pub(crate) fn reback(&self, at: usize, len: usize, prot: ProtFlags) -> Result<(), PlaceError> {
        self.replace(at, &[(len, Source::Fresh)], prot)
    }

    /// Takes from the process's mapping budget, ahead of a change, as many mappings as a
    /// growth of the memory and then [`replace`](Self::replace) with `plan` at `at` could
    /// add (an upper bound), for the change to use before it takes any more: so that the
    /// growth, which cannot be undone, happens only when the replacement can be afforded.
    /// False (nothing taken) when the budget cannot afford them. [`unprepay`](Self::unprepay)
    /// gives back what the change did not use.
    pub(crate) fn prepay(&self, at: usize, plan: &[(usize, Source<'_>)]) -> bool {
        let mut worst = 2;
        let mut pos = at;
        for &(len, ref source) in plan {
            worst += match *source {
                Source::Fresh | Source::Copy(..) => 1,
                Source::Keep => self.lock().pieces_within(pos, len).max(1),
                Source::Share(from, src) => from.lock().pieces_within(src, len).max(1),
                Source::Held(held, src) => held.pieces(src, len).map_or(1, |p| p.len().max(1)),
                Source::HeldCopy(..) => 1,
            };
            pos += len;
        }
        if !crate::vm::budget::try_take(worst) {
            return false;
        }
        self.lock().prepaid += worst;
        true
    }

    /// Gives back what [`prepay`](Self::prepay) took and no change used.
    pub(crate) fn unprepay(&self) {
        crate::vm::budget::give_back(std::mem::take(&mut self.lock().prepaid));
    }

    /// Replaces what backs `[at, at + Σ len)` with `plan`'s parts in order, each `(len,
    /// source)` (see [`Source`]), in one placement: all or nothing, the new pages with
    /// protection `prot`. The pages of `Share` and `Copy` sources are taken (counted, or
    /// copied) before anything is replaced, so a source may overlap the range.
    ///
    /// # Errors
    ///
    /// As `alias`; `Refused` also when the file cannot grow or a copy cannot be read or
    /// written.
    pub(crate) fn replace(
        &self,
        at: usize,
        plan: &[(usize, Source<'_>)],
        prot: ProtFlags,
    ) -> Result<(), PlaceError> {
        let mut placed: Vec<(usize, Extent)> = Vec::new();
        let give_back = |placed: &[(usize, Extent)]| {
            for (_, e) in placed {
                e.file.release(e.offset, e.len as u64);
            }
        };
        let own = self.lock().own.clone();
        let mut pos = at;
        for &(len, ref source) in plan {
            let got = match *source {
                Source::Keep => self.pieces_retained(pos, len).map_err(PlaceError::Invalid),
                Source::Share(from, src) => {
                    from.pieces_retained(src, len).map_err(PlaceError::Invalid)
                }
                Source::Fresh => own
                    .allocate(len as u64)
                    .map(|offset| {
                        let file = own.clone();
                        vec![(pos, Extent { len, file, offset })]
                    })
                    .map_err(PlaceError::Refused),
                Source::Copy(from, src) => from.copied_into(&own, src, len).map(|e| vec![(pos, e)]),
                Source::Held(held, src) => held.retained(src, len).map_err(PlaceError::Invalid),
                Source::HeldCopy(held, src) => held
                    .pieces(src, len)
                    .map_err(PlaceError::Invalid)
                    .and_then(|pieces| copy_pieces(&own, &pieces, len))
                    .map(|e| vec![(pos, e)]),
            };
            match got {
                Ok(pieces) => {
                    let shift = pos as isize - pieces.first().map_or(pos, |p| p.0) as isize;
                    placed.extend(
                        pieces
                            .into_iter()
                            .map(|(o, e)| ((o as isize + shift) as usize, e)),
                    );
                }
                Err(e) => {
                    give_back(&placed);
                    return Err(e);
                }
            }
            pos += len;
        }
        self.place(at, pos - at, placed, prot)
    }

    /// Fresh pages of `own` holding a copy of `[src, src + len)` of this memory, read
    /// through the files (whatever the pages' protection), counted once.
    fn copied_into(
        &self,
        own: &Arc<BackingFile>,
        src: usize,
        len: usize,
    ) -> Result<Extent, PlaceError> {
        let pieces = {
            let s = self.lock();
            s.check(src, len).map_err(PlaceError::Invalid)?;
            s.pieces(src, len)
        };
        copy_pieces(own, &pieces, len)
    }

    /// The pages behind `[at, at + len)` of this memory, held (see [`Held`]).
    ///
    /// # Errors
    ///
    /// When the range is not whole pages within the memory.
    pub(crate) fn hold(&self, at: usize, len: usize) -> io::Result<Held> {
        let pieces = self.pieces_retained(at, len)?;
        let pieces = pieces.into_iter().map(|(o, e)| (o - at, e)).collect();
        Ok(Held { pieces, len })
    }

    /// Fresh pages of the memory's own file holding a copy of its bytes `[at, at + len)`,
    /// held (see [`Held`]).
    ///
    /// # Errors
    ///
    /// As [`hold`](Self::hold); also when the file cannot grow or be read or written.
    pub(crate) fn hold_copy(&self, at: usize, len: usize) -> Result<Held, PlaceError> {
        let own = self.lock().own.clone();
        let e = self.copied_into(&own, at, len)?;
        Ok(Held {
            pieces: vec![(0, e)],
            len,
        })
    }

    /// The extents over `[src, src + len)`, cut to it: (memory offset, extent), each
    /// counted once more (under this memory's lock, then the file's: the order every path
    /// takes them in).
    fn pieces_retained(&self, src: usize, len: usize) -> io::Result<Vec<(usize, Extent)>> {
        let s = self.lock();
        s.check(src, len)?;
        let out = s.pieces(src, len);
        for (_, e) in &out {
            e.file.retain(e.offset, e.len as u64);
        }
        Ok(out)
    }

    /// Maps `placed` (extents tiling `[at, at + len)`, counted already) there, piece by
    /// piece, and drops the extents each replaces; all or nothing (see the module
    /// documentation). On any error the references of `placed` are given back.
    fn place(
        &self,
        at: usize,
        len: usize,
        placed: Vec<(usize, Extent)>,
        prot: ProtFlags,
    ) -> Result<(), PlaceError> {
        let release = |placed: &[(usize, Extent)]| {
            for (_, e) in placed {
                e.file.release(e.offset, e.len as u64);
            }
        };
        let mut s = self.lock();
        if let Err(e) = s.check(at, len) {
            drop(s);
            release(&placed);
            return Err(PlaceError::Invalid(e));
        }
        let added = s.added_by(at, len, &placed);
        if !s.charge(added) {
            drop(s);
            release(&placed);
            return Err(PlaceError::Budget);
        }
        let mut mapped = 0;
        let mut failed = None;
        for (off, e) in &placed {
            if let Err(err) = self.map_extent(*off, e, prot) {
                failed = Some(err);
                break;
            }
            mapped += 1;
        }
        let Some(err) = failed else {
            let replaced = s.cut(at, len);
            for (off, e) in placed {
                s.extents.insert(off, e);
            }
            s.merge_around(at, at + len);
            s.settle();
            drop(s);
            release(&replaced);
            return Ok(());
        };
        // Put the old pages back where pieces went, and where the failing one left the
        // range unmapped.
        let (fail_at, fail_len) = (placed[mapped].0, placed[mapped].1.len);
        let mut back = Vec::new();
        for (off, e) in &placed[..mapped] {
            back.push((*off, e.len));
        }
        if !self.is_mapped(fail_at, fail_len) {
            back.push((fail_at, fail_len));
        }
        let mut whole = true;
        for (off, n) in back {
            let old = s.pieces(off, n);
            whole &= old
                .iter()
                .all(|(o, e)| self.map_extent(*o, e, prot).is_ok());
        }
        s.settle();
        drop(s);
        if whole {
            release(&placed);
            Err(PlaceError::Refused(err))
        } else {
            // Some of the new pages may still be mapped where the hole is not: they are
            // never given back (their offsets must not reach another memory).
            tracing::error!(
                target: "machvm::share",
                "the kernel refused a mapping and then the old pages: memory {:#x}, \
                 bytes {at:#x}..{:#x} may be unmapped",
                self.base,
                at + len
            );
            Err(PlaceError::Hole(err))
        }
    }

    /// Maps `[at, at + len)` of the memory as reservation again (inaccessible, reserving no
    /// memory); false when the kernel refuses.
    fn reserve_again(&self, at: usize, len: usize) -> bool {
        // SAFETY: the range lies within this memory's reservation (the caller's range was
        // checked against it), which the memory owns; `MAP_FIXED` replaces only that.
        unsafe {
            rustix::mm::mmap_anonymous(
                (self.base + at) as *mut c_void,
                len,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE | MapFlags::FIXED,
            )
        }
        .is_ok()
    }

    /// True when every page of `[at, at + len)` of the memory is mapped (`mincore` fails
    /// with `ENOMEM` on an unmapped page).
    fn is_mapped(&self, at: usize, len: usize) -> bool {
        let mut vec = vec![0u8; len.div_ceil(page())];
        // SAFETY: `mincore` only reads the kernel's page tables for the range, which lies
        // within this memory's reservation (the caller's range was checked), and writes one
        // byte per page into `vec`, which has that many.
        unsafe { libc::mincore((self.base + at) as *mut c_void, len, vec.as_mut_ptr()) == 0 }
    }

    /// `mmap`s extent `e` at offset `at` of the memory.
    fn map_extent(&self, at: usize, e: &Extent, prot: ProtFlags) -> io::Result<()> {
        // SAFETY: `[at, at + e.len)` lies within `[0, size)` of this memory (checked by
        // `check` under the lock the caller holds), so within the reservation this memory
        // owns from `base`; `MAP_FIXED` replaces the pages there in one step, so no other
        // mapping of the process is touched (when it fails, see the module documentation:
        // on Linux before 6.12 the range may be left unmapped, never mapped to something
        // else by this call).
        // Wasmtime and machvm reach the memory only through raw pointers, which stay valid:
        // the addresses do not change, only the pages behind them.
        unsafe {
            rustix::mm::mmap(
                (self.base + at) as *mut c_void,
                e.len,
                prot,
                MapFlags::SHARED | MapFlags::FIXED,
                &e.file.fd,
                e.offset,
            )?;
        }
        Ok(())
    }

    /// Grows the accessible size to `new_size` with fresh pages of the memory's own file.
    fn grow_to(&self, new_size: usize) -> io::Result<()> {
        let mut s = self.lock();
        if new_size <= s.size {
            return Ok(());
        }
        if new_size > s.reserved || !new_size.is_multiple_of(page()) {
            return Err(invalid(
                "machvm: a backed memory cannot grow past its reservation",
            ));
        }
        let len = new_size - s.size;
        // A memory's first extent is no mapping of its own beyond its reservation.
        let extra = usize::from(!s.extents.is_empty());
        if !s.charge(extra) {
            return Err(io::Error::other(PlaceError::Budget.to_string()));
        }
        let offset = match s.own.allocate(len as u64) {
            Ok(offset) => offset,
            Err(err) => {
                s.settle();
                return Err(err);
            }
        };
        let e = Extent {
            len,
            file: s.own.clone(),
            offset,
        };
        let at = s.size;
        if let Err(err) = self.map_extent(at, &e, ProtFlags::READ | ProtFlags::WRITE) {
            s.settle();
            // A kernel before 6.12 may have left the range unmapped: the reservation is
            // made again there, so that nothing else of the process is mapped inside it.
            if self.is_mapped(at, len) || self.reserve_again(at, len) {
                s.own.release(offset, len as u64);
            } else {
                // A hole in the reservation: the memory never grows into it.
                s.reserved = at;
            }
            return Err(err);
        }
        s.extents.insert(at, e);
        s.size = new_size;
        s.merge_around(at, new_size);
        s.settle();
        Ok(())
    }
}

impl MapState {
    /// The extents over `[at, at + len)` (inside the memory), cut to it: (memory offset,
    /// extent), not counted.
    fn pieces(&self, at: usize, len: usize) -> Vec<(usize, Extent)> {
        let end = at + len;
        let first = self
            .extents
            .range(..=at)
            .next_back()
            .map_or(at, |(&k, _)| k);
        let mut out = Vec::new();
        for (&k, e) in self.extents.range(first..end) {
            let lo = k.max(at);
            let hi = (k + e.len).min(end);
            if lo < hi {
                let offset = e.offset + (lo - k) as u64;
                let (len, file) = (hi - lo, e.file.clone());
                out.push((lo, Extent { len, file, offset }));
            }
        }
        out
    }

    /// How many extents overlap `[at, at + len)` (0 past the memory's size).
    fn pieces_within(&self, at: usize, len: usize) -> usize {
        let end = at.saturating_add(len).min(self.size);
        if at >= end {
            return 0;
        }
        self.pieces(at, end - at).len()
    }

    fn check(&self, at: usize, len: usize) -> io::Result<()> {
        let p = page();
        match at.checked_add(len) {
            Some(end) if at.is_multiple_of(p) && len.is_multiple_of(p) && end <= self.size => {
                Ok(())
            }
            _ => Err(invalid(
                "machvm: a backed range must be page-aligned and within the memory",
            )),
        }
    }

    /// Removes the extents over `[at, at + len)`, cut at its ends: (offset, extent).
    fn cut(&mut self, at: usize, len: usize) -> Vec<(usize, Extent)> {
        let end = at + len;
        self.split(at);
        self.split(end);
        let keys: Vec<usize> = self.extents.range(at..end).map(|(&k, _)| k).collect();
        keys.into_iter()
            .filter_map(|k| self.extents.remove(&k).map(|e| (k, e)))
            .collect()
    }

    /// Makes `at` an extent boundary.
    fn split(&mut self, at: usize) {
        let Some((&start, e)) = self.extents.range(..at).next_back() else {
            return;
        };
        if start + e.len > at {
            let mut tail = e.clone();
            let head_len = at - start;
            tail.len -= head_len;
            tail.offset += head_len as u64;
            if let Some(head) = self.extents.get_mut(&start) {
                head.len = head_len;
            }
            self.extents.insert(at, tail);
        }
    }

    /// Joins neighbouring extents of one file at consecutive offsets, from the extent
    /// before `start` to the one at `end` (the kernel joins their mappings too).
    fn merge_around(&mut self, start: usize, end: usize) {
        let from = self
            .extents
            .range(..start)
            .next_back()
            .map_or(start, |(&k, _)| k);
        let keys: Vec<usize> = self.extents.range(from..=end).map(|(&k, _)| k).collect();
        let mut current = None::<usize>;
        for k in keys {
            let Some(prev) = current else {
                current = Some(k);
                continue;
            };
            let joins = match (self.extents.get(&prev), self.extents.get(&k)) {
                (Some(a), Some(b)) => {
                    prev + a.len == k
                        && Arc::ptr_eq(&a.file, &b.file)
                        && a.offset + a.len as u64 == b.offset
                }
                _ => false,
            };
            if joins {
                if let Some(b) = self.extents.remove(&k) {
                    if let Some(a) = self.extents.get_mut(&prev) {
                        a.len += b.len;
                    }
                }
            } else {
                current = Some(k);
            }
        }
    }
}

/// A Wasmtime linear memory made of backing files (see the module documentation).
pub struct BackedMemory {
    map: Arc<MemoryMap>,
    /// Bytes from the base that the memory owns: the reservation and its guard.
    mapped: usize,
}

impl BackedMemory {
    /// A memory of `minimum` accessible bytes in a reservation of `reserved` bytes
    /// followed by `guard` bytes of no access, its pages from the process's backing file
    /// ([`BackingFile::shared`]).
    ///
    /// # Errors
    ///
    /// When the sizes are not multiples of the host's page size, `minimum` exceeds
    /// `reserved`, or the kernel refuses the reservation, the file or the mapping.
    pub fn new(minimum: usize, reserved: usize, guard: usize) -> io::Result<BackedMemory> {
        BackedMemory::with_file(minimum, reserved, guard, BackingFile::shared()?)
    }

    /// [`new`](Self::new), with the memory's own pages from `file`.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_file(
        minimum: usize,
        reserved: usize,
        guard: usize,
        file: Arc<BackingFile>,
    ) -> io::Result<BackedMemory> {
        let p = page();
        if minimum > reserved
            || [minimum, reserved, guard]
                .iter()
                .any(|v| !v.is_multiple_of(p))
        {
            return Err(invalid(
                "machvm: a backed memory's sizes must be whole host pages",
            ));
        }
        let mapped = reserved
            .checked_add(guard)
            .filter(|&m| m > 0)
            .ok_or_else(|| invalid("machvm: a backed memory's reservation overflows"))?;
        // SAFETY: a fresh anonymous mapping at an address the kernel picks: it overlaps
        // nothing of the process. It is owned by the `BackedMemory` and unmapped in its
        // `Drop`.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                mapped,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )?
        } as usize;
        let map = Arc::new(MemoryMap {
            base,
            state: Mutex::new(MapState {
                reserved,
                size: 0,
                own: file,
                extents: BTreeMap::new(),
                charged: 0,
                prepaid: 0,
            }),
        });
        // From here on, dropping `memory` unmaps the reservation.
        let memory = BackedMemory { map, mapped };
        memory.map.grow_to(minimum)?;
        registry().insert(base, Arc::downgrade(&memory.map));
        Ok(memory)
    }

    /// The memory's extents.
    pub fn map(&self) -> &Arc<MemoryMap> {
        &self.map
    }
}

impl Drop for BackedMemory {
    fn drop(&mut self) {
        registry().remove(&self.map.base);
        // A `MemoryMap` still held elsewhere refuses every range from now on: nothing may
        // be mapped where the reservation was.
        let extents = {
            let mut s = self.map.lock();
            s.size = 0;
            s.reserved = 0;
            crate::vm::budget::give_back(std::mem::take(&mut s.charged));
            crate::vm::budget::give_back(std::mem::take(&mut s.prepaid));
            std::mem::take(&mut s.extents)
        };
        // SAFETY: the reservation this memory made in `new` and owns alone: Wasmtime drops
        // a linear memory only when no instance uses it any more.
        let _ = unsafe { rustix::mm::munmap(self.map.base as *mut c_void, self.mapped) };
        for e in extents.into_values() {
            e.file.release(e.offset, e.len as u64);
        }
    }
}

// SAFETY: `as_ptr` is the base of a reservation of `byte_capacity()` bytes followed by the
// guard Wasmtime asked for, never moved; `byte_size()` bytes from it are mapped read-write
// (until the embedder changes protections, as machvm's enforcement does for any memory);
// fresh pages are zero (new file pages, or punched ones).
unsafe impl LinearMemory for BackedMemory {
    fn byte_size(&self) -> usize {
        self.map.size()
    }

    fn byte_capacity(&self) -> usize {
        self.map.lock().reserved
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        self.map
            .grow_to(new_size)
            .map_err(|e| wasmtime::format_err!("{e}"))
    }

    fn as_ptr(&self) -> *mut u8 {
        self.map.base()
    }
}

/// Makes every memory of an engine a [`BackedMemory`]: install it with
/// `Config::with_host_memory(Arc::new(BackedMemoryCreator))`, with
/// `Config::memory_init_cow(false)` (Wasmtime copies data segments into custom memories) and
/// the on-demand allocator (Wasmtime's pooling allocator does not use custom memories).
#[derive(Clone, Copy, Debug, Default)]
pub struct BackedMemoryCreator;

// SAFETY: each memory is a fresh reservation of `reserved_size_in_bytes` (or the maximum,
// or the minimum, when Wasmtime gives none) plus `guard_size_in_bytes`, zero-filled, never
// moved.
unsafe impl MemoryCreator for BackedMemoryCreator {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let p = page();
        let reserved = reserved_size_in_bytes
            .or(maximum)
            .unwrap_or(minimum)
            .max(minimum);
        let round = |v: usize| v.checked_next_multiple_of(p).ok_or("size overflows");
        let memory = BackedMemory::new(
            round(minimum)?,
            round(reserved)?,
            round(guard_size_in_bytes)?,
        )
        .map_err(|e| format!("machvm: cannot make a backed memory: {e}"))?;
        Ok(Box::new(memory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: ProtFlags = ProtFlags::READ.union(ProtFlags::WRITE);

    fn bytes(m: &MemoryMap, at: usize, n: usize) -> Vec<u8> {
        // SAFETY: the tests read only within the memory's accessible, readable size.
        unsafe { std::slice::from_raw_parts(m.base().add(at), n).to_vec() }
    }

    fn write(m: &MemoryMap, at: usize, data: &[u8]) {
        // SAFETY: the tests write only within the memory's accessible, writable size.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), m.base().add(at), data.len()) }
    }

    /// A memory of 8 pages (of 16 reserved) with a file of its own, "page zero" and "page
    /// two" written at the start of those pages.
    fn two_pages() -> (Arc<BackingFile>, BackedMemory) {
        let p = page();
        let file = BackingFile::new().unwrap();
        let mem = BackedMemory::with_file(8 * p, 16 * p, p, file.clone()).unwrap();
        write(mem.map(), 0, b"page zero");
        write(mem.map(), 2 * p, b"page two");
        (file, mem)
    }

    #[test]
    fn an_alias_shows_the_same_bytes_and_survives_the_original() {
        let p = page();
        let mem = BackedMemory::with_file(4 * p, 16 * p, p, BackingFile::new().unwrap()).unwrap();
        let m = mem.map();
        assert_eq!(m.extents(), 1);
        write(m, 0, b"first page");
        m.alias(2 * p, m, 0, p, RW).unwrap();
        assert_eq!(bytes(m, 2 * p, 10), b"first page");
        write(m, 2 * p, b"FIRST");
        assert_eq!(bytes(m, 0, 10), b"FIRST page");
        let (file, offset) = m.backing_of(0).unwrap();
        assert_eq!(file.count(offset), 2);
        // Freeing the original keeps the alias's data; the original reads zero.
        m.reback(0, p, RW).unwrap();
        assert_eq!(bytes(m, 0, 10), [0; 10]);
        assert_eq!(bytes(m, 2 * p, 10), b"FIRST page");
        assert_eq!(file.count(offset), 1);
        // And the other way round: the last reference gone, the pages are reused, zero.
        m.reback(2 * p, p, RW).unwrap();
        assert_eq!(file.count(offset), 0);
        assert_eq!(bytes(m, 2 * p, 10), [0; 10]);
        // The first free range is the one just freed: it is handed out again, without the
        // file growing, and reads as zero (its memory was given back, data and all).
        let len = file.len();
        m.reback(p, p, RW).unwrap();
        assert_eq!(m.backing_of(p).unwrap().1, offset);
        assert_eq!(file.len(), len);
        assert_eq!(bytes(m, p, 10), [0; 10]);
    }

    #[test]
    fn aliases_across_memories_and_overlapping_ones() {
        let p = page();
        let a = BackedMemory::new(4 * p, 8 * p, p).unwrap();
        let b = BackedMemory::new(4 * p, 8 * p, p).unwrap();
        write(a.map(), p, b"shared");
        b.map().alias(3 * p, a.map(), p, p, RW).unwrap();
        write(b.map(), 3 * p, b"SHARED");
        assert_eq!(bytes(a.map(), p, 6), b"SHARED");
        // Dropping the memory that made the pages keeps them for the other one.
        drop(a);
        assert_eq!(bytes(b.map(), 3 * p, 6), b"SHARED");
        // Within one memory, overlapping ranges: pages 0..2 onto 1..3.
        let m = b.map();
        write(m, 0, b"zero");
        write(m, p, b"one");
        m.alias(p, m, 0, 2 * p, RW).unwrap();
        assert_eq!(bytes(m, p, 4), b"zero");
        assert_eq!(bytes(m, 2 * p, 3), b"one");
        // Bad ranges change nothing.
        assert!(m.alias(0, m, 1, p, RW).is_err());
        assert!(m.alias(0, m, 3 * p, 2 * p, RW).is_err());
        assert_eq!(bytes(m, 0, 4), b"zero");
    }

    #[test]
    fn extents_join_again_and_growth_keeps_the_base() {
        let p = page();
        let mut mem =
            BackedMemory::with_file(4 * p, 8 * p, p, BackingFile::new().unwrap()).unwrap();
        let m = mem.map().clone();
        m.alias(3 * p, &m, 0, p, RW).unwrap();
        assert_eq!(m.extents(), 2);
        // Page 3's own page was freed; fresh pages reuse it, and the extents join again.
        m.reback(3 * p, p, RW).unwrap();
        assert_eq!(m.extents(), 1);
        let base = mem.as_ptr();
        mem.grow_to(6 * p).unwrap();
        assert_eq!((mem.byte_size(), mem.as_ptr()), (6 * p, base));
        assert_eq!(bytes(&m, 5 * p, 4), [0; 4]);
        assert!(mem.grow_to(9 * p).is_err());
        // Dropped, the memory refuses every range to whoever still holds its map.
        drop(mem);
        assert!(MemoryMap::of(base).is_none());
        assert!(m.reback(0, p, RW).is_err());
    }

    /// When the kernel refuses a mapping (here: the process is out of mappings, so the
    /// `mmap` that would split the memory's one mapping fails), `alias` answers an error and
    /// the memory is as it was: its bytes, its extents and the file's counts. In a child
    /// process: it exhausts the process's mappings.
    #[test]
    fn a_mapping_the_kernel_refuses_changes_nothing() {
        let test = "share::backing::tests::a_mapping_the_kernel_refuses_changes_nothing";
        if !crate::child::in_child(test, "refused: done") {
            return;
        }
        let p = page();
        let (file, mem) = two_pages();
        let m = mem.map();
        // Use up the process's mappings: every other page of a scratch region read-only,
        // until the kernel refuses the next split.
        let max_map_count: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(65_530);
        if max_map_count > 4_000_000 {
            // Exhausting them would take too long; nothing to show here.
            println!("vm.max_map_count is {max_map_count}: skipped. refused: done");
            return;
        }
        let pages = 2 * max_map_count + 4096;
        // SAFETY: a fresh anonymous mapping at an address the kernel picks, unmapped below.
        let scratch = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                pages * p,
                RW,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .unwrap() as usize;
        let mut exhausted = false;
        for i in (1..pages).step_by(2) {
            // SAFETY: a page of the scratch mapping, which nothing else uses.
            let r = unsafe {
                rustix::mm::mprotect(
                    (scratch + i * p) as *mut c_void,
                    p,
                    rustix::mm::MprotectFlags::READ,
                )
            };
            if r.is_err() {
                exhausted = true;
                break;
            }
        }
        assert!(exhausted, "the process never ran out of mappings");
        let refused = m.alias(2 * p, m, 0, p, RW);
        // SAFETY: the scratch mapping made above.
        unsafe { rustix::mm::munmap(scratch as *mut c_void, pages * p) }.unwrap();
        assert!(
            refused.is_err(),
            "the alias went through with no mapping left"
        );
        assert_eq!(bytes(m, 0, 9), b"page zero");
        assert_eq!(bytes(m, 2 * p, 8), b"page two");
        assert_eq!(m.extents(), 1);
        assert_eq!(file.count(0), 1);
        // With mappings back, the same alias works.
        m.alias(2 * p, m, 0, p, RW).unwrap();
        assert_eq!(bytes(m, 2 * p, 9), b"page zero");
        assert_eq!(file.count(0), 2);
        println!("refused: done");
    }

    /// Extents past a memory's first take mappings from the process's budget before
    /// anything is mapped: with none left an alias is refused and changes nothing, and the
    /// memory gives its mappings back when it goes. In a child process: the budget is the
    /// process's.
    #[test]
    fn extents_take_the_mapping_budget_first() {
        let test = "share::backing::tests::extents_take_the_mapping_budget_first";
        if !crate::child::in_child(test, "budget: done") {
            return;
        }
        use crate::vm::budget::{mappings_in_use, set_mapping_budget};
        let p = page();
        let (file, mem) = two_pages();
        let m = mem.map();
        let before = mappings_in_use();
        m.alias(2 * p, m, 0, p, RW).unwrap();
        // Three extents: two mappings past the first.
        assert_eq!((m.extents(), mappings_in_use()), (3, before + 2));
        set_mapping_budget(mappings_in_use());
        let refused = m.alias(5 * p, m, 0, p, RW);
        assert!(matches!(refused, Err(PlaceError::Budget)), "{refused:?}");
        assert_eq!(bytes(m, 5 * p, 4), [0; 4]);
        assert_eq!((m.extents(), file.count(0)), (3, 2));
        // A change that joins extents needs no more than it gives back.
        m.reback(2 * p, p, RW).unwrap();
        assert_eq!(m.extents(), 1);
        assert_eq!(mappings_in_use(), before);
        drop(mem);
        assert_eq!(mappings_in_use(), before);
        println!("budget: done");
    }

    /// Through Wasmtime: a guest's memory is a backed memory, its data segment copied in;
    /// an alias made on the host is what the guest reads at both addresses.
    #[test]
    fn a_guest_memory_is_backed_and_sees_an_alias() {
        let mut config = wasmtime::Config::new();
        config
            .with_host_memory(Arc::new(BackedMemoryCreator))
            .memory_init_cow(false);
        crate::configure(&mut config);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let module = wasmtime::Module::new(
            &engine,
            r#"(module (memory (export "memory") 2 4)
                (data (i32.const 16) "from the data segment")
                (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0)))
                (func (export "store") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
                (func (export "grow") (result i32) (memory.grow (i32.const 1))))"#,
        )
        .unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        let m = MemoryMap::of(memory.data_ptr(&store)).expect("a backed memory");
        let load = instance
            .get_typed_func::<i32, i32>(&mut store, "load")
            .unwrap();
        let store8 = instance
            .get_typed_func::<(i32, i32), ()>(&mut store, "store")
            .unwrap();
        assert_eq!(load.call(&mut store, 16).unwrap(), i32::from(b'f'));
        let p = page();
        m.alias(p, &m, 0, p, RW).unwrap();
        assert_eq!(
            load.call(&mut store, p as i32 + 16).unwrap(),
            i32::from(b'f')
        );
        store8.call(&mut store, (p as i32 + 16, 0x46)).unwrap();
        assert_eq!(load.call(&mut store, 16).unwrap(), 0x46);
        let grow = instance
            .get_typed_func::<(), i32>(&mut store, "grow")
            .unwrap();
        assert_eq!(grow.call(&mut store, ()).unwrap(), 2);
        assert_eq!(memory.data_size(&store), 3 << 16);
        assert_eq!(load.call(&mut store, (3 << 16) - 1).unwrap(), 0);
        // Past the accessible size: a trap, as with Wasmtime's own memories.
        assert!(load.call(&mut store, 3 << 16).is_err());
    }
}
