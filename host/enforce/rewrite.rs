//! Rewrites a module's bulk-memory instructions into checked ones, and serves `vm_copy`
//! in wasm where it can.
//!
//! Wasmtime runs `memory.copy`, `memory.fill` and `memory.init` in host code (libcalls),
//! where a fault on a page that machvm protected with `mprotect` kills the process instead
//! of trapping. So before compiling a module for a task with enforcement, machvm precedes
//! each of them with a call to a checking import of module [`BULK_MODULE`]: it looks at the
//! page table and traps cleanly (with [`crate::enforce::BadAccess`]) when a page the
//! instruction would touch is unallocated or lacks READ (sources) or WRITE (destinations).
//! When the check passes, the original instruction runs at full speed: every page it
//! touches is then accessible in hardware. Out-of-bounds ranges are left to the original
//! instruction, which traps as wasm says. Plain loads and stores stay as they are: the MMU
//! checks those.
//!
//! The operands are saved in five scratch locals added to each function that uses a bulk
//! instruction. A function with no room for them (Wasmtime allows 50,000 locals, parameters
//! included) calls an appended function per instruction instead, which checks its operands
//! the same way and then runs the instruction (`machvm:memory.copy`, `...fill`, `...init`). The new function imports come after the module's own function imports, so
//! every defined function's index moves up by [`added_imports`]; calls, `ref.func`,
//! exports, elements, the start function and the name section are renumbered accordingly.
//!
//! # Copy windows: `vm_copy` and the checks in wasm
//!
//! A host call costs Wasmtime about as much as a guest `memory.copy` of a few KiB, so the
//! rewrite also lets the common case of `vm_copy` and of the checks above run in wasm,
//! against two *copy windows* the host keeps for each task: a *read window* and a *write
//! window*, byte ranges `[lo, hi)` that the host opens only over pages its table has
//! allocated with READ (resp. WRITE), inside the memory, and closes before wasm runs again
//! whenever the table changes under them. They are four mutable globals the module imports
//! from [`WINDOW_MODULE`] (after its own global imports, so each defined global's index
//! moves up by four). The globals are imports, never exports: only the host holds them, so
//! no other module can link to them.
//!
//! - Each `call` (or `return_call`) of an import `mach::vm_copy` or `mach::mach_vm_copy`
//!   goes to a function the rewrite appends. It answers `KERN_SUCCESS` itself, with a
//!   `memory.copy`, when the task port is `mach_task_self()`'s name, the source lies inside
//!   the read window and the destination inside the write window: every check of the spec's
//!   decision table then passes. Otherwise it calls the import, which decides.
//! - Each bulk-memory check goes to an appended function that returns at once when the
//!   instruction's source lies inside the read window and its destination inside the write
//!   window (the check would pass), and calls the checking import otherwise.
//!
//! The appended functions come after every defined function, so no index moves. The host
//! opens windows around the ranges of each `vm_copy` that succeeds and each check that
//! passes; see `PERFORMANCE.md` and [`crate::KernelConfig::copy_in_wasm`].

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{EntityType, Instruction, SectionId, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef};

/// The import module of the checking functions.
pub const BULK_MODULE: &str = "machvm:bulk";
/// Checks a `memory.copy`: (dst, src, len), in the memory's address type.
pub const CHECK_COPY: &str = "check_copy";
/// Checks a `memory.fill`: (dst, len), in the memory's address type.
pub const CHECK_FILL: &str = "check_fill";
/// Checks a `memory.init`: (dst in the address type, len i32).
pub const CHECK_INIT: &str = "check_init";
/// The import module of the copy windows' globals (see the module docs).
pub const WINDOW_MODULE: &str = "machvm:copy";
/// The names of the copy windows' globals, in import order: read window `[lo, hi)`, then
/// write window `[lo, hi)`, each of the memory's address type.
pub const WINDOW_GLOBALS: [&str; 4] = ["read_lo", "read_hi", "write_lo", "write_hi"];
/// The name under which the rewrite exports the module's memory again, so that
/// [`crate::TaskPre`] finds a memory the module itself does not export (it costs nothing per
/// instance). When the module already exports something under this name, a suffix `#N`
/// makes it unique. It proves nothing: only [`crate::compile`]'s [`crate::Compiled`] does.
pub const MEMORY_EXPORT: &str = "machvm:memory";

/// How many function imports the rewrite added to `module` (each defined function's index
/// moved up by that much): the imports of [`BULK_MODULE`].
pub fn added_imports(module: &wasmtime::Module) -> u32 {
    module
        .imports()
        .filter(|i| i.module() == BULK_MODULE)
        .count() as u32
}

/// A function type's parameters and results (`None` for non-function types).
type Sig = Option<(Vec<wasmparser::ValType>, Vec<wasmparser::ValType>)>;

struct Scan {
    func_imports: u32,
    global_imports: u32,
    types: u32,
    /// The signature of each type.
    sigs: Vec<Sig>,
    /// Type index of each defined function.
    func_types: Vec<u32>,
    /// Imports of `mach::vm_copy` / `mach::mach_vm_copy`: (function index, type index, is
    /// `mach_vm_copy`).
    copy_imports: Vec<(u32, u32, bool)>,
    /// The functions that the code calls directly (`call`, `return_call`), among
    /// `copy_imports`.
    called: Vec<u32>,
    /// Whether memory 0, the task's, is a 64-bit memory.
    memory64: bool,
    /// Number of memories (imported or defined).
    memories: u32,
    /// The module has a memory (imported or defined).
    has_memory: bool,
    has_types: bool,
    has_imports: bool,
    has_exports: bool,
    /// The names the module exports.
    export_names: Vec<String>,
    /// Which bulk instructions the code uses: copy, fill, init.
    uses: [bool; 3],
    /// The defined functions (by index among them) that have no room for the scratch
    /// locals: their bulk instructions call out-of-line operations instead.
    full: Vec<u32>,
    /// The out-of-line operations those functions need, in order of first use.
    out_of_line: Vec<Op>,
}

/// The most locals (parameters included) a function may have (Wasmtime's validator's
/// limit).
const MAX_LOCALS: u64 = 50_000;

/// The scratch locals the rewrite adds to a function that uses bulk instructions.
const SCRATCH_LOCALS: u64 = 5;

/// A bulk-memory instruction done out of line, by an appended function that checks, then
/// runs it (for functions with no room for the scratch locals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Copy,
    Fill,
    /// `memory.init` of this data segment.
    Init(u32),
}

impl Scan {
    /// [`MEMORY_EXPORT`], with a suffix when the module already uses the name.
    fn memory_export(&self) -> String {
        unique_export(MEMORY_EXPORT, &self.export_names)
    }
}

/// `base`, or `base#k` with the smallest `k` that no name of `taken` uses (in time linear in
/// the number of names, whatever names a module exports).
pub(crate) fn unique_export(base: &str, taken: &[String]) -> String {
    let taken: std::collections::HashSet<&str> = taken.iter().map(String::as_str).collect();
    let mut name = base.to_string();
    let mut k = 0u64;
    while taken.contains(name.as_str()) {
        k += 1;
        name = format!("{base}#{k}");
    }
    name
}

fn scan(wasm: &[u8]) -> wasmtime::Result<Scan> {
    let mut defined: u32 = 0;
    let mut s = Scan {
        func_imports: 0,
        global_imports: 0,
        types: 0,
        sigs: Vec::new(),
        func_types: Vec::new(),
        copy_imports: Vec::new(),
        called: Vec::new(),
        memory64: false,
        memories: 0,
        has_memory: false,
        has_types: false,
        has_imports: false,
        has_exports: false,
        export_names: Vec::new(),
        full: Vec::new(),
        out_of_line: Vec::new(),
        uses: [false; 3],
    };
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(r) => {
                s.has_types = true;
                for group in r {
                    for sub in group?.types() {
                        s.types += 1;
                        s.sigs.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                Some((f.params().to_vec(), f.results().to_vec()))
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(r) => {
                s.has_imports = true;
                for imp in r.into_imports() {
                    let imp = imp?;
                    match imp.ty {
                        TypeRef::Func(ty) => {
                            let mach_vm = match (imp.module, imp.name) {
                                ("mach", "vm_copy") => Some(false),
                                ("mach", "mach_vm_copy") => Some(true),
                                _ => None,
                            };
                            if let Some(mach_vm) = mach_vm {
                                s.copy_imports.push((s.func_imports, ty, mach_vm));
                            }
                            s.func_imports += 1;
                        }
                        TypeRef::Memory(m) => {
                            s.has_memory = true;
                            if s.memories == 0 {
                                s.memory64 = m.memory64;
                            }
                            s.memories += 1;
                        }
                        TypeRef::Global(_) => s.global_imports += 1,
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    let m = m?;
                    s.has_memory = true;
                    if s.memories == 0 {
                        s.memory64 = m.memory64;
                    }
                    s.memories += 1;
                }
            }
            Payload::ExportSection(r) => {
                s.has_exports = true;
                for e in r {
                    s.export_names.push(e?.name.to_string());
                }
            }
            Payload::CodeSectionEntry(body) => {
                let index = defined;
                defined += 1;
                let params = s
                    .func_types
                    .get(index as usize)
                    .and_then(|&t| s.sigs.get(t as usize))
                    .and_then(|sig| sig.as_ref())
                    .map_or(0, |(params, _)| params.len() as u64);
                let mut locals = params;
                for pair in body.get_locals_reader()? {
                    locals += u64::from(pair?.0);
                }
                let full = locals + SCRATCH_LOCALS > MAX_LOCALS;
                let mut ops = Vec::new();
                let mut reader = body.get_operators_reader()?;
                while !reader.eof() {
                    match reader.read()? {
                        Operator::MemoryCopy { .. } => {
                            s.uses[0] = true;
                            ops.push(Op::Copy);
                        }
                        Operator::MemoryFill { .. } => {
                            s.uses[1] = true;
                            ops.push(Op::Fill);
                        }
                        Operator::MemoryInit { data_index, .. } => {
                            s.uses[2] = true;
                            ops.push(Op::Init(data_index));
                        }
                        Operator::Call { function_index }
                        | Operator::ReturnCall { function_index }
                            if s.copy_imports.iter().any(|c| c.0 == function_index)
                                && !s.called.contains(&function_index) =>
                        {
                            s.called.push(function_index);
                        }
                        _ => {}
                    }
                }
                if full && !ops.is_empty() {
                    s.full.push(index);
                    for op in ops {
                        if !s.out_of_line.contains(&op) {
                            s.out_of_line.push(op);
                        }
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for ty in r {
                    s.func_types.push(ty?);
                }
            }
            Payload::Version {
                encoding: wasmparser::Encoding::Component,
                ..
            } => wasmtime::bail!("machvm: components are not supported, only core modules"),
            _ => {}
        }
    }
    Ok(s)
}

/// A function the rewrite appends.
#[derive(Clone, Copy)]
enum Appended {
    /// Serves a copy import in wasm.
    Copy(Inline),
    /// Tests the windows before the check of bulk-memory instruction `k` (0 copy, 1 fill,
    /// 2 init).
    Check(usize),
    /// Checks, then runs, a bulk-memory instruction of a function with no room for the
    /// scratch locals.
    Op(Op),
}

impl Appended {
    /// Its name in the name section, which backtraces show.
    fn name(self) -> &'static str {
        match self {
            Appended::Copy(Inline { mach_vm: false, .. }) => "machvm:vm_copy",
            Appended::Copy(Inline { mach_vm: true, .. }) => "machvm:mach_vm_copy",
            Appended::Check(0) => "machvm:check_copy",
            Appended::Check(1) => "machvm:check_fill",
            Appended::Check(_) => "machvm:check_init",
            Appended::Op(Op::Copy) => "machvm:memory.copy",
            Appended::Op(Op::Fill) => "machvm:memory.fill",
            Appended::Op(Op::Init(_)) => "machvm:memory.init",
        }
    }
}

/// A copy import served in wasm: its function index, its type index, and whether its
/// addresses are i64.
#[derive(Clone, Copy)]
struct Inline {
    import: u32,
    ty: u32,
    wide: bool,
    /// Whether it is `mach_vm_copy` (else `vm_copy`).
    mach_vm: bool,
}

impl Scan {
    /// The copy imports to serve in wasm: those the code calls directly, with the signature
    /// machvm links for memory 0, the task's (the linker refuses any other). A module has one
    /// memory of its own (machvm refuses more); a second one can only be the edge counters
    /// of [`crate::fuzz::coverage`], which the served copies never touch.
    fn inline(&self) -> Vec<Inline> {
        use wasmparser::ValType::{I32, I64};
        if self.memories == 0 {
            return Vec::new();
        }
        self.copy_imports
            .iter()
            .filter(|(f, _, _)| self.called.contains(f))
            .filter_map(|&(import, ty, mach_vm)| {
                let wide = mach_vm || self.memory64;
                let a = if wide { I64 } else { I32 };
                let want = (vec![I32, a, a, a], vec![I32]);
                (self.sigs.get(ty as usize)?.as_ref()? == &want).then_some(Inline {
                    import,
                    ty,
                    wide,
                    mach_vm,
                })
            })
            .collect()
    }
}

struct Rewriter<'a> {
    scan: &'a Scan,
    /// The copy imports served in wasm, each by a function appended to the module.
    inline: Vec<Inline>,
    types_done: bool,
    imports_done: bool,
    exports_done: bool,
    /// The appended functions are in the function and code sections, and named.
    functions_done: bool,
    code_done: bool,
    names_done: bool,
    /// Index of the next defined function whose body is parsed.
    next_func: usize,
    /// Where each of the module's own instructions went: (body index in the code section,
    /// offset in the rewritten body, offset in the original module), for [`SourceMap`].
    marks: Vec<(u32, u32, u32)>,
}

impl Rewriter<'_> {
    /// Records that the instruction at `original` (an offset in the original module) of
    /// defined function `index` starts where `f` ends now.
    fn mark(&mut self, index: usize, f: &wasm_encoder::Function, original: usize) {
        self.marks
            .push((index as u32, f.byte_len() as u32, original as u32));
    }

    /// The added imports, in order: (name, index among the uses).
    fn added(&self) -> impl Iterator<Item = (usize, &'static str)> + '_ {
        [CHECK_COPY, CHECK_FILL, CHECK_INIT]
            .into_iter()
            .enumerate()
            .filter(|&(k, _)| self.scan.uses[k])
    }

    fn count(&self) -> u32 {
        self.added().count() as u32
    }

    /// How many of the added imports come before use `k`'s (0 copy, 1 fill, 2 init): its
    /// position among the added imports, their types and their window tests alike.
    fn added_before(&self, k: usize) -> u32 {
        self.added().take_while(|&(j, _)| j < k).count() as u32
    }

    /// The number of global imports added: the copy windows, when the module calls a copy
    /// import or uses a bulk-memory instruction.
    fn added_globals(&self) -> u32 {
        if self.appended().next().is_none() {
            0
        } else {
            WINDOW_GLOBALS.len() as u32
        }
    }

    /// The functions appended after the module's own, in order: the copies served in wasm,
    /// then the window tests in front of the bulk-memory checks.
    fn appended(&self) -> impl Iterator<Item = Appended> + '_ {
        let copies = self.inline.iter().map(|&i| Appended::Copy(i));
        let ops = self.scan.out_of_line.iter().map(|&op| Appended::Op(op));
        copies
            .chain(self.added().map(|(k, _)| Appended::Check(k)))
            .chain(ops)
    }

    /// The name section's function names subsection: the module's own `names` (renumbered)
    /// and the appended functions'.
    fn function_names(
        &mut self,
        names: Option<wasmparser::NameMap<'_>>,
    ) -> Result<wasm_encoder::NameMap, reencode::Error<std::convert::Infallible>> {
        let mut map = wasm_encoder::NameMap::new();
        for naming in names.into_iter().flatten() {
            let naming = naming?;
            map.append(self.function_index(naming.index)?, naming.name);
        }
        for (k, a) in self.appended().enumerate() {
            map.append(self.helper(k), a.name());
        }
        self.names_done = true;
        Ok(map)
    }

    /// The index of the `k`-th appended function.
    fn helper(&self, k: usize) -> u32 {
        self.scan.func_imports + self.count() + self.scan.func_types.len() as u32 + k as u32
    }

    /// Where a direct call of function `func` goes: its helper, if it is served in wasm.
    fn call_target(&self, func: u32) -> Option<u32> {
        let k = self.inline.iter().position(|i| i.import == func)?;
        Some(self.helper(k))
    }

    /// The function called before bulk-memory instruction `k` (0 copy, 1 fill, 2 init): the
    /// appended window test, which calls the check import when it cannot decide.
    fn check_helper(&self, k: usize) -> u32 {
        self.helper(self.inline.len() + self.added_before(k) as usize)
    }

    /// The type index of appended function `a`: its import's.
    fn appended_type(&self, a: Appended) -> u32 {
        match a {
            Appended::Copy(inl) => inl.ty,
            Appended::Check(k) => self.scan.types + self.added_before(k),
            // (dst, src, len) in the address type: the copy check's own type.
            Appended::Op(Op::Copy) => self.scan.types + self.added_before(0),
            Appended::Op(Op::Fill) => self.scan.types + self.count(),
            Appended::Op(Op::Init(_)) => self.scan.types + self.count() + u32::from(self.fill_op()),
        }
    }

    /// Emits the test of `[addr, addr + size)` (locals of the address type `wide` says)
    /// against window `w` (0 read, 1 write): `br_if 0` when it is not inside. With
    /// `span` and `off` scratch locals of that type:
    /// `addr - lo < hi - lo` (so `lo <= addr < hi`, in that width), and
    /// `size <= (hi - lo) - (addr - lo)` (so `addr + size <= hi`). A closed window
    /// (`lo == hi`) holds nothing.
    fn window_test(
        &self,
        f: &mut wasm_encoder::Function,
        [addr, size, span, off]: [u32; 4],
        w: u32,
        wide: bool,
    ) {
        use Instruction as I;
        // The globals are of the memory's address type; an i64 range on a 32-bit memory
        // widens them.
        let widen = wide && !self.scan.memory64;
        let (lo, hi) = (
            self.scan.global_imports + 2 * w,
            self.scan.global_imports + 2 * w + 1,
        );
        let global = |f: &mut wasm_encoder::Function, g: u32| {
            f.instruction(&I::GlobalGet(g));
            if widen {
                f.instruction(&I::I64ExtendI32U);
            }
        };
        let (sub, ge_u, gt_u) = if wide {
            (I::I64Sub, I::I64GeU, I::I64GtU)
        } else {
            (I::I32Sub, I::I32GeU, I::I32GtU)
        };
        global(f, hi);
        global(f, lo);
        f.instruction(&sub);
        f.instruction(&I::LocalSet(span));
        f.instruction(&I::LocalGet(addr));
        global(f, lo);
        f.instruction(&sub);
        f.instruction(&I::LocalTee(off));
        f.instruction(&I::LocalGet(span));
        f.instruction(&ge_u);
        f.instruction(&I::BrIf(0));
        f.instruction(&I::LocalGet(size));
        f.instruction(&I::LocalGet(span));
        f.instruction(&I::LocalGet(off));
        f.instruction(&sub);
        f.instruction(&gt_u);
        f.instruction(&I::BrIf(0));
    }

    /// The body of appended function `a` (see the module docs).
    fn helper_body(&self, a: Appended) -> wasm_encoder::Function {
        match a {
            Appended::Copy(inl) => self.copy_body(inl),
            Appended::Check(k) => self.check_body(k),
            Appended::Op(op) => self.op_body(op),
        }
    }

    /// An out-of-line fill is appended (it needs a type of its own).
    fn fill_op(&self) -> bool {
        self.scan.out_of_line.contains(&Op::Fill)
    }

    /// The index of the out-of-line function of `op`.
    fn op_helper(&self, op: Op) -> u32 {
        let k = self.scan.out_of_line.iter().position(|&o| o == op);
        let k = k.expect("the scan lists every out-of-line operation");
        self.helper(self.inline.len() + self.count() as usize + k)
    }

    /// Checks the operands (as the inline check does), then runs the instruction.
    fn op_body(&self, op: Op) -> wasm_encoder::Function {
        use Instruction as I;
        let mut f = wasm_encoder::Function::new([]);
        let (check, check_args, ins): (usize, &[u32], Instruction) = match op {
            Op::Copy => (
                0,
                &[0, 1, 2],
                I::MemoryCopy {
                    src_mem: 0,
                    dst_mem: 0,
                },
            ),
            Op::Fill => (1, &[0, 2], I::MemoryFill(0)),
            Op::Init(seg) => (
                2,
                &[0, 2],
                I::MemoryInit {
                    mem: 0,
                    data_index: seg,
                },
            ),
        };
        for &x in check_args {
            f.instruction(&I::LocalGet(x));
        }
        f.instruction(&I::Call(self.check_helper(check)));
        for x in 0..3 {
            f.instruction(&I::LocalGet(x));
        }
        f.instruction(&ins);
        f.instruction(&I::End);
        f
    }

    /// Serves `inl`: the task is the caller's own and both windows hold their ranges, in
    /// the call's address type; then `memory.copy`, else the import.
    fn copy_body(&self, inl: Inline) -> wasm_encoder::Function {
        use Instruction as I;
        let a = if inl.wide { ValType::I64 } else { ValType::I32 };
        // Locals after the four parameters (task, src, size, dst): span, offset.
        let (task, src, size, dst, span, off) = (0, 1, 2, 3, 4, 5);
        let mut f = wasm_encoder::Function::new([(2, a)]);
        f.instruction(&I::Block(wasm_encoder::BlockType::Empty));
        f.instruction(&I::LocalGet(task));
        f.instruction(&I::I32Const(crate::abi::TASK_SELF_NAME.0 as i32));
        f.instruction(&I::I32Ne);
        f.instruction(&I::BrIf(0));
        self.window_test(&mut f, [src, size, span, off], 0, inl.wide);
        self.window_test(&mut f, [dst, size, span, off], 1, inl.wide);
        // An i64 call on a 32-bit memory narrows its operands: they are below the window's
        // end, which is below 2^32.
        for x in [dst, src, size] {
            f.instruction(&I::LocalGet(x));
            if inl.wide && !self.scan.memory64 {
                f.instruction(&I::I32WrapI64);
            }
        }
        f.instruction(&I::MemoryCopy {
            src_mem: 0,
            dst_mem: 0,
        });
        f.instruction(&I::I32Const(crate::abi::KERN_SUCCESS.0));
        f.instruction(&I::Return);
        f.instruction(&I::End);
        for x in [task, src, size, dst] {
            f.instruction(&I::LocalGet(x));
        }
        f.instruction(&I::Call(inl.import));
        f.instruction(&I::End);
        f
    }

    /// The window test before bulk-memory instruction `k`, with the check import's
    /// parameters (copy: dst, src, len; fill: dst, len; init: dst, len i32): returns when
    /// the windows hold the ranges (every page allowed, in bounds: the check would pass),
    /// else calls the check import.
    fn check_body(&self, k: usize) -> wasm_encoder::Function {
        use Instruction as I;
        let wide = self.scan.memory64;
        let a = self.addr();
        let mut f;
        let params: &[u32] = match k {
            0 => {
                let (dst, src, len, span, off) = (0, 1, 2, 3, 4);
                f = wasm_encoder::Function::new([(2, a)]);
                f.instruction(&I::Block(wasm_encoder::BlockType::Empty));
                self.window_test(&mut f, [src, len, span, off], 0, wide);
                self.window_test(&mut f, [dst, len, span, off], 1, wide);
                &[0, 1, 2]
            }
            1 => {
                let (dst, len, span, off) = (0, 1, 2, 3);
                f = wasm_encoder::Function::new([(2, a)]);
                f.instruction(&I::Block(wasm_encoder::BlockType::Empty));
                self.window_test(&mut f, [dst, len, span, off], 1, wide);
                &[0, 1]
            }
            _ => {
                // The length is an i32: in the address type, in a local of its own.
                let (dst, len, span, off, len_a) = (0, 1, 2, 3, 4);
                f = wasm_encoder::Function::new([(3, a)]);
                f.instruction(&I::Block(wasm_encoder::BlockType::Empty));
                f.instruction(&I::LocalGet(len));
                if wide {
                    f.instruction(&I::I64ExtendI32U);
                }
                f.instruction(&I::LocalSet(len_a));
                self.window_test(&mut f, [dst, len_a, span, off], 1, wide);
                &[0, 1]
            }
        };
        f.instruction(&I::Return);
        f.instruction(&I::End);
        for &x in params {
            f.instruction(&I::LocalGet(x));
        }
        f.instruction(&I::Call(self.check(k)));
        f.instruction(&I::End);
        f
    }

    /// The function index of the check for use `k` (0 copy, 1 fill, 2 init).
    fn check(&self, k: usize) -> u32 {
        self.scan.func_imports + self.added_before(k)
    }

    fn addr(&self) -> ValType {
        if self.scan.memory64 {
            ValType::I64
        } else {
            ValType::I32
        }
    }

    fn add_types(&self, types: &mut wasm_encoder::TypeSection) {
        let (a, i) = (self.addr(), ValType::I32);
        for (k, _) in self.added() {
            match k {
                0 => types.ty().function([a, a, a], []), // check_copy
                1 => types.ty().function([a, a], []),    // check_fill
                _ => types.ty().function([a, i], []),    // check_init
            };
        }
        if self.fill_op() {
            types.ty().function([a, i, a], []); // memory.fill (dst, value, len)
        }
        if self
            .scan
            .out_of_line
            .iter()
            .any(|o| matches!(o, Op::Init(_)))
        {
            types.ty().function([a, i, i], []); // memory.init (dst, offset, len)
        }
    }

    fn add_imports(&self, imports: &mut wasm_encoder::ImportSection) {
        let t = self.scan.types;
        for (n, (_, name)) in self.added().enumerate() {
            imports.import(BULK_MODULE, name, EntityType::Function(t + n as u32));
        }
        if self.added_globals() > 0 {
            let ty = wasm_encoder::GlobalType {
                val_type: self.addr(),
                mutable: true,
                shared: false,
            };
            for name in WINDOW_GLOBALS {
                imports.import(WINDOW_MODULE, name, EntityType::Global(ty));
            }
        }
    }

    fn add_exports(&self, exports: &mut wasm_encoder::ExportSection) {
        if self.scan.has_memory {
            exports.export(
                &self.scan.memory_export(),
                wasm_encoder::ExportKind::Memory,
                0,
            );
        }
    }
}

/// Where an instruction of a rewritten module came from: (function among the defined ones,
/// offset in its new body, offset in the module as written), what [`SourceMap::new`] reads.
pub(crate) type Mark = (u32, u32, u32);

/// The declared locals of `func`, re-encoded by `r`.
pub(crate) fn body_locals<R: Reencode + ?Sized>(
    r: &mut R,
    func: &wasmparser::FunctionBody<'_>,
) -> Result<Vec<(u32, ValType)>, reencode::Error<R::Error>> {
    let mut locals = Vec::new();
    for pair in func.get_locals_reader()? {
        let (n, ty) = pair?;
        locals.push((n, r.val_type(ty)?));
    }
    Ok(locals)
}

/// `func` re-encoded by `r` instruction by instruction (indices move as `r` maps them), with
/// each instruction's mark for a [`SourceMap`]: (`index`, its offset in the new body, its
/// offset in the module as written).
pub(crate) fn reencode_body<R: Reencode + ?Sized>(
    r: &mut R,
    func: &wasmparser::FunctionBody<'_>,
    index: u32,
) -> Result<(wasm_encoder::Function, Vec<Mark>), reencode::Error<R::Error>> {
    let mut f = wasm_encoder::Function::new(body_locals(r, func)?);
    let mut marks = Vec::new();
    let mut reader = func.get_operators_reader()?;
    while !reader.eof() {
        marks.push((
            index,
            f.byte_len() as u32,
            reader.original_position() as u32,
        ));
        let op = reader.read()?;
        f.instruction(&r.instruction(op)?);
    }
    Ok((f, marks))
}

/// Validates `wasm` with every feature wasmparser knows: `what` names the module in the error
/// (`the module`, `the module with edge counters`, ...).
pub(crate) fn validate(wasm: &[u8], what: &str) -> wasmtime::Result<()> {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(wasm)
        .map(|_| ())
        .map_err(|e| wasmtime::format_err!("machvm: {what} is not valid: {e}"))
}

/// Whether a new export section goes right before section `before` (`None`: the end): after
/// the global section, before start, element, data count, code and data.
pub(crate) fn export_section_goes_before(before: Option<SectionId>) -> bool {
    matches!(
        before,
        None | Some(SectionId::Start)
            | Some(SectionId::Element)
            | Some(SectionId::DataCount)
            | Some(SectionId::Code)
            | Some(SectionId::Data)
    )
}

/// Whether section `id` (`None`: the end) comes after the type and import sections, so that
/// a missing import section goes right before it.
pub(crate) fn after_imports(id: Option<SectionId>) -> bool {
    !matches!(id, Some(SectionId::Type) | Some(SectionId::Import))
}

impl Reencode for Rewriter<'_> {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(if func < self.scan.func_imports {
            func
        } else {
            func + self.count()
        })
    }

    fn global_index(&mut self, global: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(if global < self.scan.global_imports {
            global
        } else {
            global + self.added_globals()
        })
    }

    fn custom_name_section(
        &mut self,
        section: wasmparser::NameSectionReader<'_>,
    ) -> Result<wasm_encoder::NameSection, reencode::Error<Self::Error>> {
        // Subsections go in id order: module (0), functions (1), then the rest.
        let mut ret = wasm_encoder::NameSection::new();
        for sub in section {
            match sub? {
                wasmparser::Name::Function(map) => {
                    ret.functions(&self.function_names(Some(map))?);
                }
                other => {
                    let later = !matches!(other, wasmparser::Name::Module { .. });
                    if later && !self.names_done && self.appended().next().is_some() {
                        ret.functions(&self.function_names(None)?);
                    }
                    self.parse_custom_name_subsection(&mut ret, other)?;
                }
            }
        }
        if !self.names_done && self.appended().next().is_some() {
            ret.functions(&self.function_names(None)?);
        }
        Ok(ret)
    }

    /// A name section that does not parse is dropped (names only serve backtraces; Wasmtime
    /// ignores a malformed one too), and the appended functions get a name section of
    /// their own: a module is never refused for its names.
    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        match section.as_known() {
            wasmparser::KnownCustom::Name(name) => {
                let names_done = self.names_done;
                match self.custom_name_section(name) {
                    Ok(names) => {
                        module.section(&names);
                    }
                    Err(_) => self.names_done = names_done,
                }
            }
            _ => {
                module.section(&self.custom_section(section)?);
            }
        }
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_function_section(self, functions, section)?;
        for a in self.appended() {
            functions.function(self.appended_type(a));
        }
        self.functions_done = true;
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_code_section(self, code, section)?;
        for a in self.appended() {
            code.function(&self.helper_body(a));
        }
        self.code_done = true;
        Ok(())
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        self.add_types(types);
        self.types_done = true;
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports);
        self.imports_done = true;
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_export_section(self, exports, section)?;
        self.add_exports(exports);
        self.exports_done = true;
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let adds = self.count() > 0;
        if adds && !self.types_done && !self.scan.has_types && before != Some(SectionId::Type) {
            let mut types = wasm_encoder::TypeSection::new();
            self.add_types(&mut types);
            module.section(&types);
            self.types_done = true;
        }
        if adds && !self.imports_done && !self.scan.has_imports && after_imports(before) {
            let mut imports = wasm_encoder::ImportSection::new();
            self.add_imports(&mut imports);
            module.section(&imports);
            self.imports_done = true;
        }
        if !self.exports_done
            && !self.scan.has_exports
            && self.scan.has_memory
            && export_section_goes_before(before)
        {
            let mut exports = wasm_encoder::ExportSection::new();
            self.add_exports(&mut exports);
            module.section(&exports);
            self.exports_done = true;
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
        let (mut uses_bulk, mut calls_copy) = (false, false);
        let mut reader = func.get_operators_reader()?;
        while !(reader.eof() || (uses_bulk && calls_copy)) {
            match reader.read()? {
                Operator::MemoryCopy { .. }
                | Operator::MemoryFill { .. }
                | Operator::MemoryInit { .. } => uses_bulk = true,
                Operator::Call { function_index } | Operator::ReturnCall { function_index } => {
                    calls_copy |= self.call_target(function_index).is_some();
                }
                _ => {}
            }
        }
        if !uses_bulk && !calls_copy {
            // Re-encoded instruction by instruction (indices move), each one's place kept.
            let (f, marks) = reencode_body(self, &func, index as u32)?;
            self.marks.extend(marks);
            code.function(&f);
            return Ok(());
        }
        // Scratch locals after the parameters and the declared locals (bulk instructions
        // only): three of the address type (a0..a2), two i32 (i0, i1).
        let params = self
            .scan
            .func_types
            .get(index)
            .and_then(|&t| self.scan.sigs.get(t as usize))
            .and_then(|sig| sig.as_ref())
            .map_or(0, |(params, _)| params.len() as u32);
        let mut locals = body_locals(self, &func)?;
        let count = params + locals.iter().map(|&(n, _)| n).sum::<u32>();
        // A function with no room for them does its bulk instructions out of line.
        let full = self.scan.full.contains(&(index as u32));
        if uses_bulk && !full {
            locals.push((3, self.addr()));
            locals.push((2, ValType::I32));
        }
        let (a0, a1, a2, i0, i1) = (count, count + 1, count + 2, count + 3, count + 4);
        let mut f = wasm_encoder::Function::new(locals);
        let (copy, fill, init) = (
            self.check_helper(0),
            self.check_helper(1),
            self.check_helper(2),
        );
        let mut reader = func.get_operators_reader()?;
        use Instruction::{Call, LocalGet as Get, LocalSet as Set};
        while !reader.eof() {
            // The check inserted before an instruction counts as the instruction.
            self.mark(index, &f, reader.original_position());
            let op = reader.read()?;
            let ins = match op {
                Operator::Call { function_index } => match self.call_target(function_index) {
                    Some(helper) => Instruction::Call(helper),
                    None => self.instruction(op.clone())?,
                },
                Operator::ReturnCall { function_index } => match self.call_target(function_index) {
                    Some(helper) => Instruction::ReturnCall(helper),
                    None => self.instruction(op.clone())?,
                },
                _ => self.instruction(op.clone())?,
            };
            if full {
                let out_of_line = match op {
                    Operator::MemoryCopy { .. } => Some(Op::Copy),
                    Operator::MemoryFill { .. } => Some(Op::Fill),
                    Operator::MemoryInit { data_index, .. } => Some(Op::Init(data_index)),
                    _ => None,
                };
                match out_of_line {
                    Some(o) => f.instruction(&Call(self.op_helper(o))),
                    None => f.instruction(&ins),
                };
                continue;
            }
            let seq: &[Instruction] = match op {
                Operator::MemoryCopy { .. } => &[
                    Set(a2),
                    Set(a1),
                    Set(a0),
                    Get(a0),
                    Get(a1),
                    Get(a2),
                    Call(copy),
                    Get(a0),
                    Get(a1),
                    Get(a2),
                ],
                Operator::MemoryFill { .. } => &[
                    Set(a2),
                    Set(i0),
                    Set(a0),
                    Get(a0),
                    Get(a2),
                    Call(fill),
                    Get(a0),
                    Get(i0),
                    Get(a2),
                ],
                Operator::MemoryInit { .. } => &[
                    Set(i1),
                    Set(i0),
                    Set(a0),
                    Get(a0),
                    Get(i1),
                    Call(init),
                    Get(a0),
                    Get(i0),
                    Get(i1),
                ],
                _ => &[],
            };
            for i in seq {
                f.instruction(i);
            }
            f.instruction(&ins);
        }
        code.function(&f);
        Ok(())
    }
}

/// Rewrites `wasm` (a core module binary) so that each bulk-memory instruction is checked
/// against the page table first, and direct calls of `vm_copy` / `mach_vm_copy` are served
/// in wasm inside the copy windows (see the module docs). Modules with more than one memory
/// are refused later, by [`crate::TaskPre::new`].
///
/// # Errors
///
/// When `wasm` is not a valid core module binary.
pub fn rewrite(wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    rewrite_mapped(wasm).map(|(bytes, _)| bytes)
}

/// Where the instructions of a rewritten module came from: offsets in the rewritten module
/// (a trap's `FrameInfo::module_offset`) to offsets in the module as written, where its
/// DWARF line tables point.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    /// (rewritten offset, original offset) at each original instruction, sorted; `None`
    /// where code with no original begins (the end of a body, an appended function).
    points: Vec<(u32, Option<u32>)>,
    /// The rewrite moved nothing: every offset is its own.
    identity: bool,
}

impl SourceMap {
    /// The offset in the original module of the instruction at `offset` of the rewritten
    /// one (an instruction the rewrite added before a bulk-memory instruction maps to that
    /// instruction); `None` outside the module's own functions.
    pub fn original(&self, offset: usize) -> Option<usize> {
        if self.identity {
            return Some(offset);
        }
        let offset = u32::try_from(offset).ok()?;
        let i = self.points.partition_point(|&(at, _)| at <= offset);
        let (_, original) = *self.points.get(i.checked_sub(1)?)?;
        original.map(|o| o as usize)
    }

    /// The map of a rewrite that moved nothing: every offset is its own.
    pub(crate) fn identity() -> SourceMap {
        SourceMap {
            points: Vec::new(),
            identity: true,
        }
    }

    /// Builds the map from `rewritten`'s code section and the rewrite's marks.
    pub(crate) fn new(rewritten: &[u8], marks: &[(u32, u32, u32)]) -> wasmtime::Result<SourceMap> {
        let mut bodies = Vec::new();
        for payload in Parser::new(0).parse_all(rewritten) {
            if let Payload::CodeSectionEntry(body) = payload? {
                let r = body.range();
                bodies.push((r.start as u32, r.end as u32));
            }
        }
        let mut points = Vec::with_capacity(marks.len() + bodies.len());
        for &(func, rel, original) in marks {
            let (start, _) = bodies[func as usize];
            points.push((start + rel, Some(original)));
        }
        points.extend(bodies.iter().map(|&(_, end)| (end, None)));
        // Appended functions come last: their bodies start where the module's end.
        points.sort_by_key(|&(at, original)| (at, original.is_some()));
        Ok(SourceMap {
            points,
            identity: false,
        })
    }
}

/// [`rewrite`], with the [`SourceMap`] from the rewritten module back to `wasm`.
pub(crate) fn rewrite_mapped(wasm: &[u8]) -> wasmtime::Result<(Vec<u8>, SourceMap)> {
    validate(wasm, "the module")?;
    let scan = scan(wasm)?;
    let mut r = Rewriter {
        scan: &scan,
        inline: scan.inline(),
        types_done: false,
        imports_done: false,
        exports_done: false,
        functions_done: false,
        code_done: false,
        names_done: false,
        next_func: 0,
        marks: Vec::new(),
    };
    let mut module = wasm_encoder::Module::new();
    r.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| wasmtime::format_err!("machvm: cannot rewrite the module: {e}"))?;
    if !r.names_done && r.appended().next().is_some() {
        // No name section: one that names the appended functions, for backtraces.
        let mut names = wasm_encoder::NameSection::new();
        let map = r
            .function_names(None)
            .map_err(|e| wasmtime::format_err!("machvm: cannot rewrite the module: {e}"))?;
        names.functions(&map);
        module.section(&names);
    }
    let lost = (r.count() > 0 && !(r.types_done && r.imports_done))
        || (scan.has_memory && !r.exports_done)
        || (r.appended().next().is_some() && !(r.imports_done && r.functions_done && r.code_done));
    if lost {
        wasmtime::bail!("machvm: internal error: the rewrite lost a section");
    }
    let bytes = module.finish();
    let map = SourceMap::new(&bytes, &r.marks)?;
    Ok((bytes, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_are_made_unique() {
        // 200,000 names a module took: a search that rescanned them per candidate would
        // run for minutes here.
        let mut taken: Vec<String> = (1..200_000)
            .map(|k| format!("{MEMORY_EXPORT}#{k}"))
            .collect();
        assert_eq!(unique_export(MEMORY_EXPORT, &taken), MEMORY_EXPORT);
        taken.push(MEMORY_EXPORT.to_string());
        assert_eq!(
            unique_export(MEMORY_EXPORT, &taken),
            format!("{MEMORY_EXPORT}#200000")
        );
    }

    /// Every instruction of the rewritten module maps back to the instruction it came from
    /// (the same opcode at the mapped offset of the original), the checks inserted before a
    /// bulk-memory instruction map to that instruction, and appended code maps to nothing.
    #[test]
    fn the_source_map_points_at_the_original_instructions() {
        let wat = r#"(module
            (import "mach" "vm_copy" (func $copy (param i32 i32 i32 i32) (result i32)))
            (import "env" "f" (func $f))
            (memory 1)
            (data $d "abcd")
            (func $a (param i32) (result i32)
                (call $f)
                (memory.copy (local.get 0) (i32.const 8) (i32.const 4))
                (memory.fill (i32.const 0) (i32.const 1) (i32.const 2))
                (drop (call $copy (i32.const 0x103) (i32.const 0) (i32.const 4) (i32.const 8)))
                (memory.init $d (i32.const 0) (i32.const 0) (i32.const 4))
                (i32.add (local.get 0) (i32.const 1)))
            (func $b (result i32) (i32.const 7)))"#;
        let original = wat::parse_str(wat).unwrap();
        let (rewritten, map) = rewrite_mapped(&original).unwrap();
        let mut mapped = Vec::new();
        let mut appended = 0;
        for payload in Parser::new(0).parse_all(&rewritten) {
            if let Payload::CodeSectionEntry(body) = payload.unwrap() {
                let mut reader = body.get_operators_reader().unwrap();
                while !reader.eof() {
                    let at = reader.original_position();
                    reader.read().unwrap();
                    match map.original(at) {
                        Some(o) => mapped.push((o, rewritten[at])),
                        None => appended += 1,
                    }
                }
            }
        }
        assert!(appended > 0, "the appended functions map to nothing");
        // The last instruction mapped to each original offset is the original one.
        let mut last = std::collections::BTreeMap::new();
        for (o, opcode) in &mapped {
            last.insert(*o, *opcode);
        }
        let mut bulk = 0;
        for (o, opcode) in &last {
            assert_eq!(original[*o], *opcode, "at original offset {o:#x}");
            bulk += usize::from(*opcode == 0xfc);
        }
        assert_eq!(bulk, 3, "copy, fill and init are found again");
        // More rewritten instructions than original ones: the inserted checks.
        assert!(mapped.len() > last.len());
        assert_eq!(map.original(usize::MAX), None);
    }
}
