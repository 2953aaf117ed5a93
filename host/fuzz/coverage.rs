//! Edge coverage of a guest's own code, for coverage-guided fuzzing: a module rewrite that
//! counts, in 8-bit counters, how often each edge of each function's control flow runs.
//!
//! The counters live in a linear memory the rewrite adds to the module (index 1: the
//! module must have exactly one memory of its own, as every task's module has). Only the
//! rewrite's own instructions name that memory: the module's code was written against its
//! one memory, so no instruction of the guest can read or write a counter, and the module
//! exports the counters' memory for the host to read, under [`COVERAGE_EXPORT`] (or that
//! name with a suffix when the module already uses it: [`Coverage::export`]).
//!
//! A counter is bumped (`i32.load8_u`, `i32.add`, `i32.store8` on the counters' memory,
//! stack-neutral, no locals) at the start of every basic block of wasm's structured control
//! flow and on the edges that have no block of their own:
//!
//! - a function's entry;
//! - the start of a `loop` body, of each arm of an `if` (an `if` without `else` gets an
//!   `else` arm holding only its counter, so that the edge that skips the `then` arm is
//!   counted apart from the one that leaves it), and of each legacy `catch`/`catch_all`;
//! - the fall-through of each conditional branch (`br_if`, `br_on_null`, `br_on_non_null`,
//!   `br_on_cast`, `br_on_cast_fail`);
//! - the join after each `block`, `if`, `try_table` and legacy `try` (its `end` or
//!   `delegate`).
//!
//! As with SanitizerCoverage's inline 8-bit counters, a counter wraps from 255 to 0. The
//! function indices, the module's own memory and everything else stay as they are; the
//! [`SourceMap`] leads each rewritten instruction back to the one it came from, for trap
//! reports.

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{ExportKind, Instruction, MemArg, MemoryType, SectionId};
use wasmparser::{Operator, Parser, Payload, TypeRef};

use crate::enforce::rewrite::{
    body_locals, export_section_goes_before, unique_export, validate, SourceMap,
};

/// The name under which the rewritten module exports its counters' memory (with a suffix
/// `#N` when the module already exports something under this name: see
/// [`Coverage::export`]).
pub const COVERAGE_EXPORT: &str = "machvm:coverage";

/// The index of the counters' memory in the rewritten module.
pub const COVERAGE_MEMORY: u32 = 1;

/// What [`instrument`] added: `edges` counters at bytes `0..edges` of the memory exported
/// as `export`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// The number of counters (of instrumented edges).
    pub edges: u32,
    /// The export name of the counters' memory.
    pub export: String,
    /// Where each counter is, in counter order (`sites.len() == edges`).
    pub sites: Vec<Site>,
}

/// Where a counter counts: what a fuzzer's table of program counters holds for it
/// (SanitizerCoverage's `-fsanitize-coverage=pc-table`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    /// The offset, in the module as written, of the instruction the counted edge leads to
    /// (the one the counter's bump goes before).
    pub offset: u32,
    /// The counter of a function's entry.
    pub entry: bool,
}

/// A module rewritten with edge counters, and what its counters are.
#[derive(Clone, Debug)]
pub struct Instrumented {
    /// The rewritten module's bytes.
    pub wasm: Vec<u8>,
    /// Where its counters are.
    pub coverage: Coverage,
    /// From offsets in `wasm` back to offsets in the module as written.
    pub source_map: SourceMap,
}

/// Rewrites `wasm` so that it counts its edges (see the module documentation).
///
/// # Errors
///
/// When `wasm` is not a valid core module, or does not have exactly one memory (imported or
/// defined).
pub fn instrument(wasm: &[u8]) -> wasmtime::Result<Instrumented> {
    validate(wasm, "the module")?;
    let mut memories = 0u32;
    let (mut has_memory_section, mut has_exports) = (false, false);
    let mut exports = Vec::new();
    let mut edges = 0u32;
    let mut sites = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ImportSection(s) => {
                for imp in s.into_imports() {
                    if matches!(imp?.ty, TypeRef::Memory(_)) {
                        memories += 1;
                    }
                }
            }
            Payload::MemorySection(s) => {
                has_memory_section = true;
                memories += s.count();
            }
            Payload::ExportSection(s) => {
                has_exports = true;
                for e in s {
                    exports.push(e?.name.to_string());
                }
            }
            Payload::CodeSectionEntry(body) => {
                // A counter's site is the offset of the next instruction of the module.
                let (mut entry, mut pending) = (true, 0);
                let end = (body.range().end - 1) as u32;
                walk(&body, |step| {
                    match step {
                        Step::Counter => {
                            edges += 1;
                            sites.push(Site { offset: end, entry });
                            (entry, pending) = (false, pending + 1);
                        }
                        Step::Op(_, at) => {
                            let n = sites.len();
                            for site in &mut sites[n - pending..] {
                                site.offset = at as u32;
                            }
                            pending = 0;
                        }
                        Step::Else => {}
                    }
                    Ok::<(), wasmparser::BinaryReaderError>(())
                })?;
            }
            _ => {}
        }
    }
    if memories != 1 {
        wasmtime::bail!(
            "machvm: edge coverage needs a module with exactly one memory; this one has \
             {memories}"
        );
    }
    let export = unique_export(COVERAGE_EXPORT, &exports);
    let mut r = Rewriter {
        pages: u64::from(edges).div_ceil(65536).max(1),
        export: &export,
        has_memory_section,
        has_exports,
        memory_done: false,
        exports_done: false,
        next_func: 0,
        next_counter: 0,
        marks: Vec::new(),
    };
    let mut module = wasm_encoder::Module::new();
    r.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| wasmtime::format_err!("machvm: cannot instrument the module: {e}"))?;
    if !(r.memory_done && r.exports_done) || r.next_counter != edges {
        wasmtime::bail!("machvm: internal error: the coverage rewrite lost a section");
    }
    let bytes = module.finish();
    // Counters grow each function by about 20 bytes a block: a function near the size
    // limit can pass it.
    validate(&bytes, "the module with edge counters")?;
    let source_map = SourceMap::new(&bytes, &r.marks)?;
    Ok(Instrumented {
        wasm: bytes,
        coverage: Coverage {
            edges,
            export,
            sites,
        },
        source_map,
    })
}

/// What the rewrite emits for one function body, in order.
enum Step<'a> {
    /// An instruction of the module, at this offset in it.
    Op(Operator<'a>, usize),
    /// A counter's bump.
    Counter,
    /// The `else` an `if` without one gets.
    Else,
}

/// What a control frame is, for what its `end` does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    Function,
    Block,
    Loop,
    If { has_else: bool },
    Try,
}

/// Walks one function body and gives the steps of its instrumented form to `emit`.
fn walk<'a, E>(
    body: &wasmparser::FunctionBody<'a>,
    mut emit: impl FnMut(Step<'a>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<wasmparser::BinaryReaderError>,
{
    let mut frames = vec![Frame::Function];
    emit(Step::Counter)?;
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        let at = reader.original_position();
        let op = reader.read()?;
        let (push, after) = match &op {
            Operator::Block { .. } | Operator::TryTable { .. } => (Some(Frame::Block), false),
            Operator::Try { .. } => (Some(Frame::Try), false),
            Operator::Loop { .. } => (Some(Frame::Loop), true),
            Operator::If { .. } => (Some(Frame::If { has_else: false }), true),
            Operator::Else => {
                if let Some(Frame::If { has_else }) = frames.last_mut() {
                    *has_else = true;
                }
                (None, true)
            }
            Operator::Catch { .. } | Operator::CatchAll => (None, true),
            Operator::BrIf { .. }
            | Operator::BrOnNull { .. }
            | Operator::BrOnNonNull { .. }
            | Operator::BrOnCast { .. }
            | Operator::BrOnCastFail { .. } => (None, true),
            Operator::Delegate { .. } => {
                frames.pop();
                (None, true)
            }
            Operator::End => {
                let frame = frames.pop();
                if frame == Some(Frame::If { has_else: false }) {
                    emit(Step::Else)?;
                    emit(Step::Counter)?;
                }
                // The join after a block; a loop's end only falls through, and the
                // function's end ends the body.
                let join = matches!(frame, Some(Frame::Block | Frame::If { .. } | Frame::Try));
                (None, join)
            }
            _ => (None, false),
        };
        emit(Step::Op(op, at))?;
        if let Some(frame) = push {
            frames.push(frame);
        }
        if after {
            emit(Step::Counter)?;
        }
    }
    Ok(())
}

struct Rewriter<'a> {
    /// Size of the counters' memory in wasm pages.
    pages: u64,
    export: &'a str,
    has_memory_section: bool,
    has_exports: bool,
    memory_done: bool,
    exports_done: bool,
    /// Index (among the defined functions) of the next body.
    next_func: u32,
    next_counter: u32,
    /// (function, offset in its new body, offset in the module as written).
    marks: Vec<(u32, u32, u32)>,
}

impl Rewriter<'_> {
    fn counters_memory(&self) -> MemoryType {
        MemoryType {
            minimum: self.pages,
            maximum: Some(self.pages),
            memory64: false,
            shared: false,
            page_size_log2: None,
        }
    }

    fn bump(&mut self, f: &mut wasm_encoder::Function) {
        let k = self.next_counter as i32;
        self.next_counter += 1;
        let arg = MemArg {
            offset: 0,
            align: 0,
            memory_index: COVERAGE_MEMORY,
        };
        f.instruction(&Instruction::I32Const(k));
        f.instruction(&Instruction::I32Const(k));
        f.instruction(&Instruction::I32Load8U(arg));
        f.instruction(&Instruction::I32Const(1));
        f.instruction(&Instruction::I32Add);
        f.instruction(&Instruction::I32Store8(arg));
    }
}

impl Reencode for Rewriter<'_> {
    type Error = std::convert::Infallible;

    fn parse_memory_section(
        &mut self,
        memories: &mut wasm_encoder::MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_memory_section(self, memories, section)?;
        memories.memory(self.counters_memory());
        self.memory_done = true;
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_export_section(self, exports, section)?;
        exports.export(self.export, ExportKind::Memory, COVERAGE_MEMORY);
        self.exports_done = true;
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        // A module whose memory is imported has no memory section: one goes after the
        // table section, before tags and globals.
        let memory_goes_here = !matches!(
            before,
            Some(SectionId::Type | SectionId::Import | SectionId::Function | SectionId::Table)
        );
        if !self.memory_done && !self.has_memory_section && memory_goes_here {
            let mut memories = wasm_encoder::MemorySection::new();
            memories.memory(self.counters_memory());
            module.section(&memories);
            self.memory_done = true;
        }
        if !self.exports_done && !self.has_exports && export_section_goes_before(before) {
            let mut exports = wasm_encoder::ExportSection::new();
            exports.export(self.export, ExportKind::Memory, COVERAGE_MEMORY);
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
        let mut f = wasm_encoder::Function::new(body_locals(self, &func)?);
        walk(&func, |step| {
            match step {
                Step::Op(op, at) => {
                    self.marks.push((index, f.byte_len() as u32, at as u32));
                    f.instruction(&self.instruction(op)?);
                }
                Step::Counter => self.bump(&mut f),
                Step::Else => {
                    f.instruction(&Instruction::Else);
                }
            }
            Ok::<(), reencode::Error<Self::Error>>(())
        })?;
        code.function(&f);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Engine, Instance, Module, Store};

    /// Instantiates `wat` instrumented (no imports) and returns what the caller needs.
    fn instance(wat: &str) -> (Store<()>, Instance, Instrumented) {
        let wasm = wat::parse_str(wat).unwrap();
        let inst = instrument(&wasm).unwrap();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&inst.wasm)
            .expect("the instrumented module is valid");
        let engine = Engine::default();
        let module = Module::new(&engine, &inst.wasm).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        (store, instance, inst)
    }

    fn counters(store: &mut Store<()>, instance: &Instance, inst: &Instrumented) -> Vec<u8> {
        let mem = instance
            .get_memory(&mut *store, &inst.coverage.export)
            .expect("the counters' memory is exported");
        mem.data(&store)[..inst.coverage.edges as usize].to_vec()
    }

    #[test]
    fn each_arm_of_an_if_has_its_own_counter() {
        // Counters: 0 entry, 1 then-arm, 2 the synthetic else, 3 the join after the if.
        let (mut store, instance, inst) = instance(
            r#"(module (memory 1)
                (func (export "f") (param i32) (result i32)
                  (local.get 0)
                  (if (then (local.set 0 (i32.const 7))))
                  (local.get 0)))"#,
        );
        assert_eq!(inst.coverage.edges, 4);
        let f = instance
            .get_typed_func::<i32, i32>(&mut store, "f")
            .unwrap();
        assert_eq!(f.call(&mut store, 1).unwrap(), 7);
        assert_eq!(counters(&mut store, &instance, &inst), [1, 1, 0, 1]);
        assert_eq!(f.call(&mut store, 0).unwrap(), 0);
        assert_eq!(f.call(&mut store, 0).unwrap(), 0);
        assert_eq!(counters(&mut store, &instance, &inst), [3, 1, 2, 3]);
    }

    #[test]
    fn each_counter_names_the_instruction_it_goes_before() {
        let wasm = wat::parse_str(
            r#"(module (memory 1)
                (func (param i32) (result i32)
                  (local.get 0)
                  (if (then (local.set 0 (i32.const 7))))
                  (local.get 0))
                (func))"#,
        )
        .unwrap();
        // The offsets of the instructions as written, in order, per function.
        let mut ops = Vec::new();
        for payload in Parser::new(0).parse_all(&wasm) {
            if let Payload::CodeSectionEntry(body) = payload.unwrap() {
                let mut reader = body.get_operators_reader().unwrap();
                let mut offsets = Vec::new();
                while !reader.eof() {
                    offsets.push(reader.original_position() as u32);
                    reader.read().unwrap();
                }
                ops.push(offsets);
            }
        }
        // f: local.get, if, i32.const, local.set, end (of the if), local.get, end.
        let f = &ops[0];
        let expected = [
            Site {
                offset: f[0],
                entry: true,
            }, // entry
            Site {
                offset: f[2],
                entry: false,
            }, // the then arm
            Site {
                offset: f[4],
                entry: false,
            }, // the synthetic else, before the if's end
            Site {
                offset: f[5],
                entry: false,
            }, // the join after the if
            Site {
                offset: ops[1][0],
                entry: true,
            }, // the second function's entry (its end)
        ];
        let inst = instrument(&wasm).unwrap();
        assert_eq!(inst.coverage.edges, 5);
        assert_eq!(inst.coverage.sites, expected);
    }

    #[test]
    fn loops_and_branches_count_their_edges() {
        // 0 entry, 1 loop body, 2 br_if fall-through, 3 the join after the block.
        let (mut store, instance, inst) = instance(
            r#"(module (memory 1)
                (func (export "f") (param i32) (result i32) (local i32)
                  (block $out
                    (loop $again
                      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
                      (br_if $out (i32.ge_u (local.get 1) (local.get 0)))
                      (br $again)))
                  (local.get 1)))"#,
        );
        assert_eq!(inst.coverage.edges, 4);
        let f = instance
            .get_typed_func::<i32, i32>(&mut store, "f")
            .unwrap();
        assert_eq!(f.call(&mut store, 5).unwrap(), 5);
        assert_eq!(counters(&mut store, &instance, &inst), [1, 5, 4, 1]);
        // 300 iterations: the loop's counter wraps, as an 8-bit counter does.
        assert_eq!(f.call(&mut store, 300).unwrap(), 300);
        assert_eq!(counters(&mut store, &instance, &inst), [2, 49, 47, 2]);
    }

    #[test]
    fn the_guest_keeps_its_own_memory_and_functions() {
        // An if with results and an else, a call, the module's memory written and read:
        // the same answers as without counters, and the module's memory is untouched by them.
        let wat = r#"(module (memory (export "memory") 1)
            (func $sq (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
            (func (export "f") (param i32) (result i32)
              (i32.store (i32.const 16) (call $sq (local.get 0)))
              (if (result i32) (i32.gt_u (local.get 0) (i32.const 3))
                (then (i32.load (i32.const 16)))
                (else (i32.const -1)))))"#;
        let (mut store, instance, inst) = instance(wat);
        let f = instance
            .get_typed_func::<i32, i32>(&mut store, "f")
            .unwrap();
        assert_eq!(f.call(&mut store, 5).unwrap(), 25);
        assert_eq!(f.call(&mut store, 2).unwrap(), -1);
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        let bytes = memory.data(&store);
        assert_eq!(&bytes[16..20], &4u32.to_le_bytes());
        assert!(bytes[..16].iter().chain(&bytes[20..]).all(|&b| b == 0));
        // $sq: entry; f: entry, then, else, join.
        assert_eq!(inst.coverage.edges, 5);
        assert_eq!(counters(&mut store, &instance, &inst), [2, 2, 1, 1, 2]);
    }

    #[test]
    fn an_imported_memory_gets_a_counters_memory_beside_it() {
        let wat = r#"(module (import "env" "memory" (memory 1))
            (func (export "f") (result i32) (i32.load (i32.const 0))))"#;
        let wasm = wat::parse_str(wat).unwrap();
        let inst = instrument(&wasm).unwrap();
        let engine = Engine::default();
        let module = Module::new(&engine, &inst.wasm).unwrap();
        let mut store = Store::new(&engine, ());
        let memory = wasmtime::Memory::new(&mut store, wasmtime::MemoryType::new(1, None)).unwrap();
        memory.write(&mut store, 0, &42u32.to_le_bytes()).unwrap();
        let instance = Instance::new(&mut store, &module, &[memory.into()]).unwrap();
        let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 42);
        assert_eq!(counters(&mut store, &instance, &inst), [1]);
    }

    #[test]
    fn modules_without_exactly_one_memory_are_refused() {
        for wat in [
            "(module (func))",
            "(module (memory 1) (memory 1))",
            r#"(module (import "a" "m" (memory 1)) (memory 1))"#,
        ] {
            let err = instrument(&wat::parse_str(wat).unwrap()).unwrap_err();
            assert!(
                err.to_string().contains("exactly one memory"),
                "{wat}: {err}"
            );
        }
        assert!(instrument(b"\0asm\x01\0\0\0\x01").is_err());
    }

    #[test]
    fn the_export_name_never_clashes() {
        let (_, _, inst) = instance(
            r#"(module (memory (export "machvm:coverage") 1)
                (func (export "machvm:coverage#1")))"#,
        );
        assert_eq!(inst.coverage.export, "machvm:coverage#2");
    }

    #[test]
    fn a_trap_maps_back_to_the_instruction_as_written() {
        let wat = r#"(module (memory 1)
            (func (export "f") (param i32)
              (if (local.get 0) (then (unreachable)))))"#;
        let wasm = wat::parse_str(wat).unwrap();
        // The offset of `unreachable` in the module as written.
        let mut at = None;
        for payload in Parser::new(0).parse_all(&wasm) {
            if let Payload::CodeSectionEntry(body) = payload.unwrap() {
                let mut r = body.get_operators_reader().unwrap();
                while !r.eof() {
                    let pos = r.original_position();
                    if let Operator::Unreachable = r.read().unwrap() {
                        at = Some(pos);
                    }
                }
            }
        }
        let (mut store, instance, inst) = instance(wat);
        let f = instance.get_typed_func::<i32, ()>(&mut store, "f").unwrap();
        let err = f.call(&mut store, 1).unwrap_err();
        let trace = err.downcast_ref::<wasmtime::WasmBacktrace>().unwrap();
        let offset = trace.frames()[0].module_offset().unwrap();
        assert_eq!(inst.source_map.original(offset), at);
    }

    /// Every guest module the project ships (C compiled by clang, a Rust guest) still
    /// validates and compiles once instrumented, with its counters' memory beside its own.
    #[test]
    fn the_shipped_guests_instrument_cleanly() {
        let engine = Engine::default();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/guest/prebuilt");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "wasm") {
                continue;
            }
            let wasm = std::fs::read(&path).unwrap();
            let inst = instrument(&wasm).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let module = Module::new(&engine, &inst.wasm)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let memories = module.resources_required().num_memories;
            assert_eq!(memories, 2, "{}", path.display());
            assert!(inst.coverage.edges > 0);
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} modules in {dir}");
    }
}
