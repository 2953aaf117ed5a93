//! The guard heap: a guest's `malloc` family served by the host, each block on pages of its
//! own that end at a page with no access, as macOS's Guard Malloc (libgmalloc) does
//! natively. Reading or writing one byte past a block traps at the instruction that does;
//! freed blocks get no access and stay out of reuse for a while, so a use after free traps
//! too; a double or invalid `free` is a finding of its own ([`HeapError`]).
//!
//! Two parts:
//!
//! - [`redirect`], a module rewrite: the functions of the module named `malloc`, `free`,
//!   `calloc`, `realloc`, `aligned_alloc`, `memalign`, `posix_memalign`,
//!   `malloc_usable_size` (and wasi-libc's `__libc_*` names of the first four), found by
//!   export or in the name section, get bodies that call imports of [`HEAP_MODULE`] of the
//!   same name and type. Every caller in the module, the C library's own (`strdup`,
//!   `fopen`, C++'s `operator new`) included, then allocates from the host. The module's
//!   own allocator stays, unused. A binary built with a stock toolchain keeps its name
//!   section unless it is stripped.
//! - [`GuardHeap`], the allocator behind those imports ([`add_to_linker`]), built on the
//!   task's own Mach calls: `mach_vm_allocate` for a block's pages and its guard page,
//!   `mach_vm_protect` for the guard and for freed blocks, `mach_vm_deallocate` when a freed
//!   block leaves the quarantine. Its pages are the task's like any other: the page table
//!   and the enforcement of spec §5 do the catching.
//!
//! Each block costs two mappings of the process-wide budget (spec §7: its pages, then its
//! guard page); a freed block costs none (no access, as its neighbours' guard pages). With
//! Linux's default `vm.max_map_count` (a budget of 32,765) that is 16,382 live blocks per
//! process, measured; past that `malloc` answers `NULL`, as an allocator out of memory does.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{Instruction, SectionId};
use wasmparser::{Parser, Payload, TypeRef, ValType};
use wasmtime::{Caller, Linker};

use crate::abi::{VM_FLAGS_ANYWHERE, VM_FLAGS_FIXED, VM_PROT_NONE};
use crate::enforce::rewrite::{
    after_imports, export_section_goes_before, reencode_body, validate, SourceMap,
};
use crate::{host, KernelView, TaskId};

/// The import module of the allocator's functions in a [`redirect`]ed module.
pub const HEAP_MODULE: &str = "machvm:heap";

/// A function of the C allocator's interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AllocFn {
    /// `void *malloc(size_t size)`.
    Malloc,
    /// `void free(void *ptr)`.
    Free,
    /// `void *calloc(size_t n, size_t size)`.
    Calloc,
    /// `void *realloc(void *ptr, size_t size)`.
    Realloc,
    /// `void *aligned_alloc(size_t alignment, size_t size)`.
    AlignedAlloc,
    /// `void *memalign(size_t alignment, size_t size)`.
    Memalign,
    /// `int posix_memalign(void **ptr, size_t alignment, size_t size)`.
    PosixMemalign,
    /// `size_t malloc_usable_size(void *ptr)`.
    MallocUsableSize,
}

impl AllocFn {
    /// Every function, in import order.
    pub const ALL: [AllocFn; 8] = [
        AllocFn::Malloc,
        AllocFn::Free,
        AllocFn::Calloc,
        AllocFn::Realloc,
        AllocFn::AlignedAlloc,
        AllocFn::Memalign,
        AllocFn::PosixMemalign,
        AllocFn::MallocUsableSize,
    ];

    /// The C name, which is also the import's.
    pub fn name(self) -> &'static str {
        match self {
            AllocFn::Malloc => "malloc",
            AllocFn::Free => "free",
            AllocFn::Calloc => "calloc",
            AllocFn::Realloc => "realloc",
            AllocFn::AlignedAlloc => "aligned_alloc",
            AllocFn::Memalign => "memalign",
            AllocFn::PosixMemalign => "posix_memalign",
            AllocFn::MallocUsableSize => "malloc_usable_size",
        }
    }

    /// The function a module's function of this name is, with wasi-libc's other names.
    fn by_name(name: &str) -> Option<AllocFn> {
        let f = match name {
            "__libc_malloc" => AllocFn::Malloc,
            "__libc_free" => AllocFn::Free,
            "__libc_calloc" => AllocFn::Calloc,
            "__libc_realloc" => AllocFn::Realloc,
            _ => return AllocFn::ALL.into_iter().find(|f| f.name() == name),
        };
        Some(f)
    }

    /// (parameters, results), with `word` for pointers and sizes.
    fn signature(self, word: ValType) -> (Vec<ValType>, Vec<ValType>) {
        use ValType::I32;
        match self {
            AllocFn::Malloc => (vec![word], vec![word]),
            AllocFn::Free => (vec![word], vec![]),
            AllocFn::Calloc | AllocFn::Realloc | AllocFn::AlignedAlloc | AllocFn::Memalign => {
                (vec![word, word], vec![word])
            }
            AllocFn::PosixMemalign => (vec![word, word, word], vec![I32]),
            AllocFn::MallocUsableSize => (vec![word], vec![word]),
        }
    }
}

/// A module whose allocator [`redirect`] replaced.
#[derive(Clone, Debug)]
pub struct Redirected {
    /// The rewritten module's bytes.
    pub wasm: Vec<u8>,
    /// The functions replaced: each one's index in the module as written, what it is, and
    /// its name there.
    pub functions: Vec<(u32, AllocFn, String)>,
    /// From offsets in `wasm` back to offsets in the module as written.
    pub source_map: SourceMap,
}

/// Rewrites `wasm` so that its `malloc` family calls the imports of [`HEAP_MODULE`] (see the
/// module documentation).
///
/// # Errors
///
/// When `wasm` is not valid; when neither an export nor the name section names `malloc` and
/// `free` while the module has no name section, or names only some of the family (a
/// stripped binary: rebuild it without `-s`/`--strip-all`, export them, or fuzz without the
/// guard heap); when a function of one of these names does not have the C function's type.
/// A module whose name section names functions, none of them an allocator, has none: it is
/// given back unchanged, with no functions replaced.
pub fn redirect(wasm: &[u8]) -> wasmtime::Result<Redirected> {
    validate(wasm, "the module")?;
    let scan = scan(wasm, false)?;
    if scan.targets.is_empty() && scan.named {
        // The name section names every function and none of them is an allocator: the
        // module has none, and nothing changes.
        return Ok(Redirected {
            wasm: wasm.to_vec(),
            functions: Vec::new(),
            source_map: SourceMap::identity(),
        });
    }
    require_malloc_and_free(&scan)?;
    rewrite_allocator(wasm, &scan, Mode::Redirect)
}

/// The export name [`export_allocator`] gives a module's own `malloc`.
pub const OWN_MALLOC_EXPORT: &str = "machvm:heap/malloc";
/// The export name [`export_allocator`] gives a module's own `free`.
pub const OWN_FREE_EXPORT: &str = "machvm:heap/free";

/// Rewrites `wasm` so that it exports its own `malloc` and `free` (found by export or name
/// section, as [`redirect`] finds them) as [`OWN_MALLOC_EXPORT`] and [`OWN_FREE_EXPORT`];
/// nothing else changes.
///
/// What for: wasi-libc's `malloc` up to 2022 (Debian 12's) takes, at its first call, every
/// page from the end of the module's data to the memory's size at that moment as its heap.
/// A host that maps pages into the task before the module's first `malloc` (an input, an
/// argument block) would see them taken as heap too, and `malloc` write its chunk headers
/// over them. Calling `free(malloc(1))` through these exports first makes the heap end
/// where the memory ends then; whatever the host maps afterwards lies past it. (The C SDK
/// does the same from a constructor; a fuzz target built without it needs the host to.)
///
/// `functions` of the result lists the functions exported: `malloc`, and `free` when the
/// module has one (`malloc(1)` alone starts the heap). A module whose `malloc` is not found
/// (it has none, it is stripped of its names, or its `malloc` has not C's type) or that
/// exports one of those names itself is given back unchanged, with none. Nothing else of
/// the allocator's family is looked at.
///
/// # Errors
///
/// When `wasm` is not valid.
pub fn export_allocator(wasm: &[u8]) -> wasmtime::Result<Redirected> {
    validate(wasm, "the module")?;
    let mut scan = scan(wasm, true)?;
    let malloc = scan
        .targets
        .iter()
        .find(|t| t.1 == AllocFn::Malloc)
        .cloned();
    let free = scan.targets.iter().find(|t| t.1 == AllocFn::Free).cloned();
    let Some(malloc) = malloc.filter(|_| !scan.own_names_taken) else {
        return Ok(Redirected {
            wasm: wasm.to_vec(),
            functions: Vec::new(),
            source_map: SourceMap::identity(),
        });
    };
    // `malloc` (one, and nothing imported), and `free` when there is one.
    scan.targets = std::iter::once(malloc).chain(free).collect();
    scan.imports.clear();
    rewrite_allocator(wasm, &scan, Mode::Export)
}

/// Both `malloc` and `free` were found, or the error that says how to make them findable.
fn require_malloc_and_free(scan: &Scan) -> wasmtime::Result<()> {
    let found = |f: AllocFn| scan.targets.iter().any(|t| t.1 == f);
    if !found(AllocFn::Malloc) || !found(AllocFn::Free) {
        wasmtime::bail!(
            "machvm: the guard heap cannot find the module's `malloc` and `free`: no export \
             and no name in the name section names them (a stripped binary?); build the \
             module with its name section (no -s or --strip-all), or export them \
             (-Wl,--export=malloc -Wl,--export=free)"
        );
    }
    Ok(())
}

/// What a [`Rewriter`] does with the allocator functions it found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Their bodies call the imports of [`HEAP_MODULE`].
    Redirect,
    /// `malloc` and `free` are exported as [`OWN_MALLOC_EXPORT`] and [`OWN_FREE_EXPORT`].
    Export,
}

fn rewrite_allocator(wasm: &[u8], scan: &Scan, mode: Mode) -> wasmtime::Result<Redirected> {
    let mut r = Rewriter {
        scan,
        mode,
        next_func: 0,
        imports_done: false,
        exports_done: false,
        marks: Vec::new(),
    };
    let mut module = wasm_encoder::Module::new();
    r.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| wasmtime::format_err!("machvm: cannot rewrite the allocator: {e}"))?;
    let lost = match mode {
        Mode::Redirect => !r.imports_done,
        Mode::Export => !r.exports_done,
    };
    if lost {
        wasmtime::bail!("machvm: internal error: the heap rewrite lost its imports or exports");
    }
    let bytes = module.finish();
    validate(&bytes, "the module with its allocator rewritten")?;
    let source_map = SourceMap::new(&bytes, &r.marks)?;
    Ok(Redirected {
        wasm: bytes,
        functions: scan.targets.clone(),
        source_map,
    })
}

/// What [`redirect`] needs to know of the module before it rewrites it.
struct Scan {
    func_imports: u32,
    /// The functions to replace: (index, what, name), by index.
    targets: Vec<(u32, AllocFn, String)>,
    /// The imports to add: (function, its type index), in order; the k-th is function
    /// `func_imports + k` of the rewritten module.
    imports: Vec<(AllocFn, u32)>,
    has_imports: bool,
    /// The module has a name section that names functions.
    named: bool,
    /// The module exports a name [`export_allocator`] would add.
    own_names_taken: bool,
}

impl Scan {
    /// The import that replaces the body of function `index`, and the number of its
    /// parameters.
    fn import_for(&self, index: u32) -> Option<(u32, u32)> {
        let (_, f, _) = self.targets.iter().find(|t| t.0 == index)?;
        let k = self.imports.iter().position(|(g, _)| g == f)?;
        let params = f.signature(ValType::I32).0.len() as u32;
        Some((self.func_imports + k as u32, params))
    }
}

/// The functions a name section names (nothing for another custom section; a malformed
/// name section only loses its names).
fn function_names(c: &wasmparser::CustomSectionReader<'_>) -> Vec<(u32, String)> {
    let mut names = Vec::new();
    if let wasmparser::KnownCustom::Name(reader) = c.as_known() {
        for sub in reader.into_iter().flatten() {
            if let wasmparser::Name::Function(map) = sub {
                names.extend(
                    map.into_iter()
                        .flatten()
                        .map(|n| (n.index, n.name.to_string())),
                );
            }
        }
    }
    names
}

/// Whether `wasm` may have a `malloc` that [`export_allocator`] did not export: its name
/// section names no function (a stripped module), or names one `malloc`. (A module that
/// names its functions, none of them `malloc`, has none.)
pub fn may_have_malloc(wasm: &[u8]) -> bool {
    let mut named = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(Payload::CustomSection(c)) = payload else {
            continue;
        };
        for (_, name) in function_names(&c) {
            named = true;
            if AllocFn::by_name(&name) == Some(AllocFn::Malloc) {
                return true;
            }
        }
    }
    !named
}

/// With `lenient` (for [`export_allocator`]): only `malloc` and `free` are looked for, and
/// one whose type is not C's is passed over instead of refused.
fn scan(wasm: &[u8], lenient: bool) -> wasmtime::Result<Scan> {
    let mut func_imports = 0u32;
    let mut func_types = Vec::new();
    let mut types: Vec<Option<(Vec<ValType>, Vec<ValType>)>> = Vec::new();
    let mut word = ValType::I32;
    let mut memories = 0;
    let mut names: Vec<(u32, String)> = Vec::new();
    let mut has_imports = false;
    let mut named = false;
    let mut own_names_taken = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(s) => {
                for ty in s.into_iter_err_on_gc_types() {
                    let ty = ty?;
                    types.push(Some((ty.params().to_vec(), ty.results().to_vec())));
                }
            }
            Payload::ImportSection(s) => {
                has_imports = true;
                for imp in s.into_imports() {
                    match imp?.ty {
                        TypeRef::Func(_) => func_imports += 1,
                        TypeRef::Memory(m) => {
                            if memories == 0 && m.memory64 {
                                word = ValType::I64;
                            }
                            memories += 1;
                        }
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(s) => {
                for m in s {
                    if memories == 0 && m?.memory64 {
                        word = ValType::I64;
                    }
                    memories += 1;
                }
            }
            Payload::FunctionSection(s) => {
                for t in s {
                    func_types.push(t?);
                }
            }
            Payload::ExportSection(s) => {
                for e in s {
                    let e = e?;
                    if e.name == OWN_MALLOC_EXPORT || e.name == OWN_FREE_EXPORT {
                        own_names_taken = true;
                    }
                    if e.kind == wasmparser::ExternalKind::Func {
                        names.push((e.index, e.name.to_string()));
                    }
                }
            }
            Payload::CustomSection(c) => {
                let found = function_names(&c);
                named |= !found.is_empty();
                names.extend(found);
            }
            _ => {}
        }
    }
    let mut targets: Vec<(u32, AllocFn, String)> = Vec::new();
    for (index, name) in names {
        let Some(f) = AllocFn::by_name(&name) else {
            continue;
        };
        if lenient && !matches!(f, AllocFn::Malloc | AllocFn::Free) {
            continue;
        }
        // Only a function of the module's own (an imported `malloc` is someone else's).
        let Some(&ty) = index
            .checked_sub(func_imports)
            .and_then(|i| func_types.get(i as usize))
        else {
            continue;
        };
        if targets.iter().any(|t| t.0 == index) {
            continue;
        }
        let want = f.signature(word);
        if types.get(ty as usize).and_then(|t| t.as_ref()) != Some(&want) {
            if lenient {
                continue;
            }
            wasmtime::bail!(
                "machvm: the guard heap cannot replace function {index} (`{name}`): its type \
                 is not that of C's `{}` ({:?} -> {:?})",
                f.name(),
                want.0,
                want.1
            );
        }
        targets.push((index, f, name));
    }
    targets.sort_by_key(|t| t.0);
    let mut imports: Vec<(AllocFn, u32)> = Vec::new();
    for &(index, f, _) in &targets {
        if !imports.iter().any(|(g, _)| *g == f) {
            imports.push((f, func_types[(index - func_imports) as usize]));
        }
    }
    Ok(Scan {
        func_imports,
        targets,
        imports,
        has_imports,
        named,
        own_names_taken,
    })
}

struct Rewriter<'a> {
    scan: &'a Scan,
    mode: Mode,
    next_func: u32,
    imports_done: bool,
    exports_done: bool,
    /// (function, offset in its new body, offset in the module as written).
    marks: Vec<(u32, u32, u32)>,
}

impl Rewriter<'_> {
    fn added(&self) -> u32 {
        self.scan.imports.len() as u32
    }

    fn add_imports(&mut self, imports: &mut wasm_encoder::ImportSection) {
        for &(f, ty) in &self.scan.imports {
            imports.import(
                HEAP_MODULE,
                f.name(),
                wasm_encoder::EntityType::Function(ty),
            );
        }
        self.imports_done = true;
    }

    fn add_exports(&mut self, exports: &mut wasm_encoder::ExportSection) {
        for &(index, f, _) in &self.scan.targets {
            let name = match f {
                AllocFn::Malloc => OWN_MALLOC_EXPORT,
                AllocFn::Free => OWN_FREE_EXPORT,
                _ => continue,
            };
            exports.export(name, wasm_encoder::ExportKind::Func, index);
        }
        self.exports_done = true;
    }
}

impl Reencode for Rewriter<'_> {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(if func < self.scan.func_imports {
            func
        } else {
            func + self.added()
        })
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports);
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_export_section(self, exports, section)?;
        if self.mode == Mode::Export {
            self.add_exports(exports);
        }
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        match self.mode {
            Mode::Redirect => {
                if !self.imports_done && !self.scan.has_imports && after_imports(before) {
                    let mut imports = wasm_encoder::ImportSection::new();
                    self.add_imports(&mut imports);
                    module.section(&imports);
                }
            }
            Mode::Export => {
                // A module without an export section gets one where it goes.
                if !self.exports_done && export_section_goes_before(before) {
                    let mut exports = wasm_encoder::ExportSection::new();
                    self.add_exports(&mut exports);
                    module.section(&exports);
                }
            }
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let index = self.next_func;
        self.next_func += 1;
        let absolute = self.scan.func_imports + index;
        let replaced = match self.mode {
            Mode::Redirect => self.scan.import_for(absolute),
            Mode::Export => None,
        };
        if let Some((import, params)) = replaced {
            // The body becomes a call of the host's function with the same parameters; a
            // trap in it maps to the function's first instruction as written.
            let mut f = wasm_encoder::Function::new([]);
            let first = func.get_operators_reader()?.original_position() as u32;
            self.marks.push((index, 0, first));
            for p in 0..params {
                f.instruction(&Instruction::LocalGet(p));
            }
            f.instruction(&Instruction::Call(import));
            f.instruction(&Instruction::End);
            code.function(&f);
            return Ok(());
        }
        let (f, marks) = reencode_body(self, &func, index)?;
        self.marks.extend(marks);
        code.function(&f);
        Ok(())
    }
}

/// How the guard heap places blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeapOptions {
    /// The alignment of a block's address: 16 (the default, as `malloc`'s on wasm32) leaves
    /// up to 15 bytes between a block's end and its guard page; 1 puts every block's last
    /// byte against the guard page (libgmalloc's `MALLOC_STRICT_SIZE`), at the cost of
    /// unaligned blocks.
    pub align: u64,
    /// Put the guard page before the block instead of after it (libgmalloc's
    /// `MALLOC_PROTECT_BEFORE`): underflows trap, overflows run into the block's last page.
    pub protect_before: bool,
    /// How many bytes of freed blocks (their pages) stay out of reuse, with no access,
    /// before the oldest is deallocated and its addresses may be handed out again.
    pub quarantine: u64,
}

impl Default for HeapOptions {
    fn default() -> HeapOptions {
        HeapOptions {
            align: 16,
            protect_before: false,
            quarantine: 64 << 20,
        }
    }
}

impl HeapOptions {
    /// The defaults: 16-byte alignment, the guard after the block, 64 MiB of quarantine.
    pub fn new() -> HeapOptions {
        HeapOptions::default()
    }

    /// Every block's last byte against its guard page (see [`HeapOptions::align`]).
    pub fn strict_size(mut self, on: bool) -> HeapOptions {
        self.align = if on { 1 } else { 16 };
        self
    }

    /// The guard page before each block (see [`HeapOptions::protect_before`]).
    pub fn protect_before(mut self, on: bool) -> HeapOptions {
        self.protect_before = on;
        self
    }
}

/// A block: its pages `[base, base + len)` (guard page included), the address handed out
/// and the size asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    base: u64,
    len: u64,
    ptr: u64,
    size: u64,
    by: AllocFn,
    freed: bool,
}

/// A heap bug the guard heap saw in a call of the guest's: the call traps with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeapError {
    /// `free` (or `realloc`) of a block already freed.
    DoubleFree {
        /// The pointer passed.
        ptr: u64,
        /// The size of the block, as asked for.
        size: u64,
        /// The function that freed it (`free` or `realloc`) now.
        by: AllocFn,
    },
    /// `free` (or `realloc`, `malloc_usable_size`) of a pointer `malloc` never gave.
    InvalidFree {
        /// The pointer passed.
        ptr: u64,
        /// The function called.
        by: AllocFn,
        /// Where it points, when inside a block: (that block's pointer, its size).
        inside: Option<(u64, u64)>,
    },
    /// `posix_memalign`'s result could not be stored (`memptr` is not writable).
    BadResultPointer {
        /// The pointer passed.
        ptr: u64,
    },
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeapError::DoubleFree { ptr, size, by } => write!(
                f,
                "double free: {}({ptr:#x}) of a {size}-byte block that was freed already",
                by.name()
            ),
            HeapError::InvalidFree {
                ptr,
                by,
                inside: Some((start, size)),
            } => write!(
                f,
                "invalid free: {}({ptr:#x}) is {} bytes inside the {size}-byte block at \
                 {start:#x}, not its start",
                by.name(),
                ptr - start
            ),
            HeapError::InvalidFree {
                ptr,
                by,
                inside: None,
            } => write!(
                f,
                "invalid free: {}({ptr:#x}) of a pointer that malloc did not return",
                by.name()
            ),
            HeapError::BadResultPointer { ptr } => write!(
                f,
                "posix_memalign: cannot store the result at {ptr:#x} (not writable)"
            ),
        }
    }
}

impl std::error::Error for HeapError {}

/// The guard heap of a store's task (the first task of its kernel): see the module
/// documentation. Keep one in the store's data and link it with [`add_to_linker`].
#[derive(Debug)]
pub struct GuardHeap {
    options: HeapOptions,
    /// Every block not yet out of quarantine, by its base.
    blocks: BTreeMap<u64, Block>,
    /// Freed blocks, oldest first: bases.
    quarantine: VecDeque<u64>,
    quarantined: u64,
    /// Where the next block is tried first: just past the last one, so that addresses are
    /// reused as late as possible.
    cursor: u64,
    live: u64,
    peak: u64,
}

impl Default for GuardHeap {
    fn default() -> GuardHeap {
        GuardHeap::new(HeapOptions::default())
    }
}

/// POSIX's `EINVAL` and `ENOMEM` as WASI numbers them.
const EINVAL: i32 = 28;
const ENOMEM: i32 = 48;

impl GuardHeap {
    /// An empty heap placing blocks as `options` says.
    pub fn new(options: HeapOptions) -> GuardHeap {
        let align = options.align.max(1).next_power_of_two();
        GuardHeap {
            options: HeapOptions { align, ..options },
            blocks: BTreeMap::new(),
            quarantine: VecDeque::new(),
            quarantined: 0,
            cursor: 0,
            live: 0,
            peak: 0,
        }
    }

    /// The number of blocks allocated and not freed.
    pub fn live_blocks(&self) -> u64 {
        self.live
    }

    /// The most blocks that were live at once.
    pub fn peak_blocks(&self) -> u64 {
        self.peak
    }

    /// What the heap knows of `addr`: the block it lies in or just past, live or freed, as
    /// a sentence for a trap report (`0x11010 is 0 bytes past the end of the 13-byte block
    /// at 0x11003, allocated by malloc`). `None` when it is no block's.
    pub fn describe(&self, addr: u64) -> Option<String> {
        let (_, b) = self.blocks.range(..=addr).next_back()?;
        if addr >= b.base + b.len {
            return None;
        }
        let state = if b.freed {
            "freed"
        } else {
            "allocated and live"
        };
        let end = b.ptr + b.size;
        let place = if addr < b.ptr {
            format!("{} bytes before", b.ptr - addr)
        } else if addr < end {
            format!("{} bytes inside", addr - b.ptr)
        } else {
            format!("{} bytes past the end of", addr - end)
        };
        Some(format!(
            "{addr:#x} is {place} the {}-byte block at {:#x} ({state}; allocated by {})",
            b.size,
            b.ptr,
            b.by.name()
        ))
    }

    /// Why `ptr` cannot be freed by `by`, if it cannot.
    fn check_free(&self, ptr: u64, by: AllocFn) -> Result<Block, HeapError> {
        let found = self
            .blocks
            .range(..=ptr)
            .next_back()
            .map(|(_, b)| *b)
            .filter(|b| ptr < b.base + b.len);
        match found {
            Some(b) if b.ptr == ptr && b.freed => Err(HeapError::DoubleFree {
                ptr,
                size: b.size,
                by,
            }),
            Some(b) if b.ptr == ptr => Ok(b),
            Some(b) => Err(HeapError::InvalidFree {
                ptr,
                by,
                inside: Some((b.ptr, b.size)),
            }),
            None => Err(HeapError::InvalidFree {
                ptr,
                by,
                inside: None,
            }),
        }
    }
}

/// The task the heap serves: the store's first.
fn task_of<T: KernelView>(caller: &mut Caller<'_, T>) -> Option<TaskId> {
    caller.data_mut().kernel().task_ids().next()
}

/// Maps a block of `size` bytes aligned to `align` (a power of two) and its guard page;
/// gives its pointer, or 0 when the task has no room (as `malloc` answers `NULL`).
fn allocate<T: KernelView>(
    caller: &mut Caller<'_, T>,
    get: fn(&mut T) -> &mut GuardHeap,
    size: u64,
    align: u64,
    by: AllocFn,
) -> u64 {
    let Some(task) = task_of(caller) else {
        return 0;
    };
    let Some(page) = caller
        .data_mut()
        .kernel()
        .task(task)
        .map(|vm| vm.page_size())
    else {
        return 0;
    };
    let heap = get(caller.data_mut());
    let align = align.max(heap.options.align);
    let before = heap.options.protect_before;
    let cursor = heap.cursor;
    // Room for the block at the alignment asked for, then the guard page.
    let Some(room) = size
        .checked_add(if align > page { align } else { 0 })
        .and_then(|n| n.checked_next_multiple_of(page))
    else {
        return 0;
    };
    let Some(len) = room.checked_add(page) else {
        return 0;
    };
    // First just past the last block; else wherever the task has room.
    let base = host::allocate(&mut *caller, task, cursor, len, VM_FLAGS_FIXED)
        .or_else(|_| host::allocate(&mut *caller, task, 0, len, VM_FLAGS_ANYWHERE));
    let Ok(base) = base else {
        return 0;
    };
    let (guard, ptr) = if before {
        // The guard first, the block at the start of the pages after it.
        (base, (base + page).next_multiple_of(align))
    } else {
        let guard = base + room;
        (guard, (guard - size) / align * align)
    };
    if host::protect(&mut *caller, task, guard, page, false, VM_PROT_NONE).is_err() {
        let _ = host::deallocate(&mut *caller, task, base, len);
        return 0;
    }
    let heap = get(caller.data_mut());
    heap.cursor = base + len;
    heap.blocks.insert(
        base,
        Block {
            base,
            len,
            ptr,
            size,
            by,
            freed: false,
        },
    );
    heap.live += 1;
    heap.peak = heap.peak.max(heap.live);
    ptr
}

/// Frees `ptr` (not 0): its pages get no access and it joins the quarantine; the oldest
/// blocks leave it, deallocated, while it holds more than its limit.
fn release<T: KernelView>(
    caller: &mut Caller<'_, T>,
    get: fn(&mut T) -> &mut GuardHeap,
    ptr: u64,
    by: AllocFn,
) -> Result<Block, HeapError> {
    let block = get(caller.data_mut()).check_free(ptr, by)?;
    let Some(task) = task_of(caller) else {
        return Ok(block);
    };
    let _ = host::protect(
        &mut *caller,
        task,
        block.base,
        block.len,
        false,
        VM_PROT_NONE,
    );
    let heap = get(caller.data_mut());
    if let Some(b) = heap.blocks.get_mut(&block.base) {
        b.freed = true;
    }
    heap.live -= 1;
    heap.quarantine.push_back(block.base);
    heap.quarantined += block.len;
    let mut evict = Vec::new();
    while heap.quarantined > heap.options.quarantine {
        let Some(base) = heap.quarantine.pop_front() else {
            break;
        };
        if let Some(b) = heap.blocks.remove(&base) {
            heap.quarantined -= b.len;
            evict.push((b.base, b.len));
        }
    }
    for (base, len) in evict {
        let _ = host::deallocate(&mut *caller, task, base, len);
    }
    Ok(block)
}

fn copy_block<T: KernelView>(caller: &mut Caller<'_, T>, from: u64, to: u64, n: u64) {
    if n == 0 {
        return;
    }
    if let Some(task) = task_of(caller) {
        // Both blocks are the heap's and readable and writable: this cannot fail.
        let _ = host::copy(&mut *caller, task, from, n, to);
    }
}

/// Whether `a` is a power of two (a valid alignment).
fn power_of_two(a: u64) -> bool {
    a != 0 && a & (a - 1) == 0
}

/// Defines the imports of [`HEAP_MODULE`] in `linker`, served by the [`GuardHeap`] that `get`
/// finds in the store's data, for a module of a 32-bit memory (`memory64: false`) or a
/// 64-bit one.
///
/// # Errors
///
/// When the linker has these names defined already.
pub fn add_to_linker<T: KernelView + 'static>(
    linker: &mut Linker<T>,
    memory64: bool,
    get: fn(&mut T) -> &mut GuardHeap,
) -> wasmtime::Result<()> {
    if memory64 {
        define::<T, u64>(linker, get)
    } else {
        define::<T, u32>(linker, get)
    }
}

/// A guest word: `u32` for a 32-bit memory, `u64` for a 64-bit one.
trait Word: wasmtime::WasmTy + Copy + Send + Sync + 'static {
    fn get(self) -> u64;
    fn of(v: u64) -> Self;
}

impl Word for u32 {
    fn get(self) -> u64 {
        u64::from(self)
    }
    fn of(v: u64) -> u32 {
        v as u32
    }
}

impl Word for u64 {
    fn get(self) -> u64 {
        self
    }
    fn of(v: u64) -> u64 {
        v
    }
}

fn define<T: KernelView + 'static, W: Word>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut GuardHeap,
) -> wasmtime::Result<()> {
    let m = HEAP_MODULE;
    linker.func_wrap(m, "malloc", move |mut c: Caller<'_, T>, size: W| {
        W::of(allocate(&mut c, get, size.get(), 1, AllocFn::Malloc))
    })?;
    linker.func_wrap(
        m,
        "free",
        move |mut c: Caller<'_, T>, ptr: W| -> wasmtime::Result<()> {
            if ptr.get() != 0 {
                release(&mut c, get, ptr.get(), AllocFn::Free)?;
            }
            Ok(())
        },
    )?;
    linker.func_wrap(m, "calloc", move |mut c: Caller<'_, T>, n: W, size: W| {
        // Fresh pages are zero.
        W::of(match n.get().checked_mul(size.get()) {
            Some(total) => allocate(&mut c, get, total, 1, AllocFn::Calloc),
            None => 0,
        })
    })?;
    linker.func_wrap(
        m,
        "realloc",
        move |mut c: Caller<'_, T>, ptr: W, size: W| -> wasmtime::Result<W> {
            let (ptr, size) = (ptr.get(), size.get());
            if ptr == 0 {
                return Ok(W::of(allocate(&mut c, get, size, 1, AllocFn::Realloc)));
            }
            let old = get(c.data_mut()).check_free(ptr, AllocFn::Realloc)?;
            if size == 0 {
                // wasi-libc's dlmalloc (REALLOC_ZERO_BYTES_FREES): freed, NULL.
                release(&mut c, get, ptr, AllocFn::Realloc)?;
                return Ok(W::of(0));
            }
            let new = allocate(&mut c, get, size, 1, AllocFn::Realloc);
            if new == 0 {
                return Ok(W::of(0));
            }
            copy_block(&mut c, old.ptr, new, old.size.min(size));
            release(&mut c, get, ptr, AllocFn::Realloc)?;
            Ok(W::of(new))
        },
    )?;
    for (name, by) in [
        ("aligned_alloc", AllocFn::AlignedAlloc),
        ("memalign", AllocFn::Memalign),
    ] {
        linker.func_wrap(m, name, move |mut c: Caller<'_, T>, align: W, size: W| {
            let align = align.get();
            W::of(if power_of_two(align) {
                allocate(&mut c, get, size.get(), align, by)
            } else {
                0
            })
        })?;
    }
    linker.func_wrap(
        m,
        "posix_memalign",
        move |mut c: Caller<'_, T>, out: W, align: W, size: W| -> wasmtime::Result<i32> {
            let align = align.get();
            let word = std::mem::size_of::<W>() as u64;
            if !power_of_two(align) || !align.is_multiple_of(word) {
                return Ok(EINVAL);
            }
            let ptr = allocate(&mut c, get, size.get(), align, AllocFn::PosixMemalign);
            if ptr == 0 {
                return Ok(ENOMEM);
            }
            let bytes = ptr.to_le_bytes();
            let stored = task_of(&mut c).is_some_and(|task| {
                host::write_bytes(&mut c, task, out.get(), &bytes[..word as usize]).is_ok()
            });
            if !stored {
                return Err(HeapError::BadResultPointer { ptr: out.get() }.into());
            }
            Ok(0)
        },
    )?;
    linker.func_wrap(
        m,
        "malloc_usable_size",
        move |mut c: Caller<'_, T>, ptr: W| -> wasmtime::Result<W> {
            if ptr.get() == 0 {
                return Ok(W::of(0));
            }
            // A live block's start, as free wants it; else the same finding as free's.
            let block = get(c.data_mut()).check_free(ptr.get(), AllocFn::MallocUsableSize)?;
            Ok(W::of(block.size))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with an allocator of its own, named, and a caller of it.
    const GUEST: &str = r#"(module
        (import "env" "f" (func $imported))
        (memory 1)
        (func $malloc (param i32) (result i32) (i32.const 1024))
        (func $free (param i32))
        (func $user (export "user") (result i32)
          (call $free (call $malloc (i32.const 8)))
          (call $malloc (i32.const 4))))"#;

    #[test]
    fn the_allocator_calls_the_host_and_every_index_follows() {
        let wasm = wat::parse_str(GUEST).unwrap();
        let r = redirect(&wasm).unwrap();
        let found: Vec<(u32, AllocFn)> = r.functions.iter().map(|f| (f.0, f.1)).collect();
        assert_eq!(found, [(1, AllocFn::Malloc), (2, AllocFn::Free)]);
        let module = wasmparser::Parser::new(0).parse_all(&r.wasm);
        let mut imports = Vec::new();
        for payload in module {
            if let Payload::ImportSection(s) = payload.unwrap() {
                for imp in s.into_imports() {
                    let imp = imp.unwrap();
                    imports.push(format!("{}.{}", imp.module, imp.name));
                }
            }
        }
        assert_eq!(imports, ["env.f", "machvm:heap.malloc", "machvm:heap.free"]);
        // The user still calls its malloc and free (now functions 3 and 4), whose bodies
        // call the imports (1 and 2).
        let text = calls_of(&r.wasm);
        assert!(text.contains("call 3") && text.contains("call 4"), "{text}");
        assert!(text.contains("call 1") && text.contains("call 2"), "{text}");
    }

    /// The `call` instructions of every body, as `call N` lines.
    fn calls_of(wasm: &[u8]) -> String {
        let mut s = String::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::CodeSectionEntry(body) = payload.unwrap() {
                for op in body.get_operators_reader().unwrap() {
                    if let wasmparser::Operator::Call { function_index } = op.unwrap() {
                        s.push_str(&format!("call {function_index}\n"));
                    }
                }
            }
        }
        s
    }

    #[test]
    fn the_own_allocator_is_exported_as_it_is_and_the_code_maps_back() {
        // Named, no export section: one is added.
        let wasm = wat::parse_str(
            r#"(module (import "env" "f" (func $imp)) (memory 1)
                (func $other)
                (func $malloc (param i32) (result i32) (i32.add (local.get 0) (i32.const 7)))
                (func $free (param i32) (call $imp)))"#,
        )
        .unwrap();
        let r = export_allocator(&wasm).unwrap();
        let names: Vec<(u32, AllocFn)> = r.functions.iter().map(|t| (t.0, t.1)).collect();
        assert_eq!(names, [(2, AllocFn::Malloc), (3, AllocFn::Free)]);
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &r.wasm).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let imp = wasmtime::Func::wrap(&mut store, || {});
        let instance = wasmtime::Instance::new(&mut store, &module, &[imp.into()]).unwrap();
        let malloc = instance
            .get_typed_func::<i32, i32>(&mut store, OWN_MALLOC_EXPORT)
            .unwrap();
        assert_eq!(malloc.call(&mut store, 1).unwrap(), 8);
        assert!(instance.get_func(&mut store, OWN_FREE_EXPORT).is_some());
        // The bodies are as they were, where they were less the export section's growth.
        let offset_of_add = |wasm: &[u8]| wasm.windows(3).position(|w| w == [0x41, 0x07, 0x6a]);
        let new_at = offset_of_add(&r.wasm).unwrap();
        assert_ne!(Some(new_at), offset_of_add(&wasm));
        assert_eq!(r.source_map.original(new_at), offset_of_add(&wasm));
        // With exports already: they stay, the two are added.
        let exported = wat::parse_str(
            r#"(module (memory 1) (func (export "go"))
                (func (export "malloc") (param i32) (result i32) (i32.const 0))
                (func (export "free") (param i32)))"#,
        )
        .unwrap();
        let r = export_allocator(&exported).unwrap();
        assert_eq!(r.functions.len(), 2);
        let module = wasmtime::Module::new(&engine, &r.wasm).unwrap();
        let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
        assert_eq!(
            exports,
            ["go", "malloc", "free", OWN_MALLOC_EXPORT, OWN_FREE_EXPORT]
        );
        // `malloc` alone is enough; the rest of the family is not looked at, even of a
        // type that is not C's.
        let lone = wat::parse_str(
            r#"(module (memory 1) (func $malloc (param i32) (result i32) (i32.const 0))
                (func $realloc (param i32)))"#,
        )
        .unwrap();
        let r = export_allocator(&lone).unwrap();
        assert_eq!(r.functions.len(), 1);
        let module = wasmtime::Module::new(&engine, &r.wasm).unwrap();
        let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
        assert_eq!(exports, [OWN_MALLOC_EXPORT]);
        // Stripped, with no allocator, a `malloc` not of C's type (a 64-bit memory's is
        // i64), or a module that exports one of the names itself: unchanged.
        for wasm in [
            r#"(module (memory 1) (func (param i32) (result i32) (i32.const 0)))"#,
            r#"(module (memory 1) (func $f))"#,
            r#"(module (memory i64 1) (func $malloc (param i32) (result i32) (i32.const 0)))"#,
            r#"(module (memory 1) (func $malloc (param i32) (result i32) (i32.const 0))
                (export "machvm:heap/free" (func $malloc)))"#,
        ] {
            let wasm = wat::parse_str(wasm).unwrap();
            let r = export_allocator(&wasm).unwrap();
            assert!(r.functions.is_empty());
            assert_eq!(r.wasm, wasm);
        }
    }

    #[test]
    fn a_stripped_module_is_refused_and_one_without_malloc_is_kept() {
        let stripped =
            wat::parse_str(r#"(module (memory 1) (func (param i32) (result i32) (i32.const 0)))"#)
                .unwrap();
        let e = redirect(&stripped).unwrap_err().to_string();
        assert!(
            e.contains("cannot find the module's `malloc` and `free`"),
            "{e}"
        );
        let exported = wat::parse_str(
            r#"(module (memory 1)
                (func (export "malloc") (param i32) (result i32) (i32.const 0))
                (func (export "free") (param i32)))"#,
        )
        .unwrap();
        assert_eq!(redirect(&exported).unwrap().functions.len(), 2);
        let none = wat::parse_str(r#"(module (memory 1) (func $f))"#).unwrap();
        let r = redirect(&none).unwrap();
        assert!(r.functions.is_empty());
        assert_eq!(r.wasm, none);
        let mistyped = wat::parse_str(
            r#"(module (memory 1) (func $malloc (param i64) (result i32) (i32.const 0))
                (func $free (param i32)))"#,
        )
        .unwrap();
        let e = redirect(&mistyped).unwrap_err().to_string();
        assert!(e.contains("its type is not that of C's `malloc`"), "{e}");
    }

    #[test]
    fn reports_say_where_an_address_lies() {
        let mut heap = GuardHeap::default();
        heap.blocks.insert(
            0x20000,
            Block {
                base: 0x20000,
                len: 0x2000,
                ptr: 0x20ff0,
                size: 16,
                by: AllocFn::Calloc,
                freed: false,
            },
        );
        let d = heap.describe(0x21000).unwrap();
        assert!(
            d.contains("0 bytes past the end of the 16-byte block at 0x20ff0"),
            "{d}"
        );
        assert!(heap.describe(0x20ff4).unwrap().contains("4 bytes inside"));
        assert!(heap.describe(0x22000).is_none());
        assert_eq!(
            heap.check_free(0x20ff4, AllocFn::Free),
            Err(HeapError::InvalidFree {
                ptr: 0x20ff4,
                by: AllocFn::Free,
                inside: Some((0x20ff0, 16))
            })
        );
        assert!(heap.check_free(0x20ff0, AllocFn::Free).is_ok());
    }
}
