//! Rewrites a module's bulk-memory instructions into calls to checked host functions.
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
//! instruction. The new function imports come after the module's own function imports, so
//! every defined function's index moves up by [`ADDED_IMPORTS`]; calls, `ref.func`,
//! exports, elements, the start function and the name section are renumbered accordingly.

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
/// The marker the rewrite leaves: the module's memory is exported again under this name,
/// which costs nothing per instance and tells [`crate::TaskPre`] that the module's
/// bulk-memory instructions are checked.
pub const MARKER: &str = "machvm:rewritten";

/// How many function imports the rewrite added to `module` (each defined function's index
/// moved up by that much): the imports of [`BULK_MODULE`].
pub fn added_imports(module: &wasmtime::Module) -> u32 {
    module
        .imports()
        .filter(|i| i.module() == BULK_MODULE)
        .count() as u32
}

struct Scan {
    func_imports: u32,
    types: u32,
    /// Number of parameters of each type (0 for non-function types).
    type_params: Vec<u32>,
    /// Type index of each defined function.
    func_types: Vec<u32>,
    memory64: bool,
    /// The module has a memory (imported or defined).
    has_memory: bool,
    has_types: bool,
    has_imports: bool,
    has_exports: bool,
    /// Which bulk instructions the code uses: copy, fill, init.
    uses: [bool; 3],
}

fn scan(wasm: &[u8]) -> wasmtime::Result<Scan> {
    let mut s = Scan {
        func_imports: 0,
        types: 0,
        type_params: Vec::new(),
        func_types: Vec::new(),
        memory64: false,
        has_memory: false,
        has_types: false,
        has_imports: false,
        has_exports: false,
        uses: [false; 3],
    };
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(r) => {
                s.has_types = true;
                for group in r {
                    for sub in group?.types() {
                        s.types += 1;
                        s.type_params.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => f.params().len() as u32,
                            _ => 0,
                        });
                    }
                }
            }
            Payload::ImportSection(r) => {
                s.has_imports = true;
                for imp in r.into_imports() {
                    match imp?.ty {
                        TypeRef::Func(_) => s.func_imports += 1,
                        TypeRef::Memory(m) => {
                            s.has_memory = true;
                            s.memory64 |= m.memory64;
                        }
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    s.has_memory = true;
                    s.memory64 |= m?.memory64;
                }
            }
            Payload::ExportSection(_) => s.has_exports = true,
            Payload::CodeSectionEntry(body) => {
                let mut reader = body.get_operators_reader()?;
                while !reader.eof() {
                    match reader.read()? {
                        Operator::MemoryCopy { .. } => s.uses[0] = true,
                        Operator::MemoryFill { .. } => s.uses[1] = true,
                        Operator::MemoryInit { .. } => s.uses[2] = true,
                        _ => {}
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

struct Rewriter<'a> {
    scan: &'a Scan,
    types_done: bool,
    imports_done: bool,
    exports_done: bool,
    /// Index of the next defined function whose body is parsed.
    next_func: usize,
}

impl Rewriter<'_> {
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

    /// The function index of the check for use `k` (0 copy, 1 fill, 2 init).
    fn check(&self, k: usize) -> u32 {
        self.scan.func_imports + self.added().take_while(|&(j, _)| j < k).count() as u32
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
    }

    fn add_imports(&self, imports: &mut wasm_encoder::ImportSection) {
        let t = self.scan.types;
        for (n, (_, name)) in self.added().enumerate() {
            imports.import(BULK_MODULE, name, EntityType::Function(t + n as u32));
        }
    }

    fn add_exports(&self, exports: &mut wasm_encoder::ExportSection) {
        if self.scan.has_memory {
            exports.export(MARKER, wasm_encoder::ExportKind::Memory, 0);
        }
    }
}

/// Section order rank, for inserting missing sections.
fn after_imports(id: Option<SectionId>) -> bool {
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
        // The export section comes after the global section and before start, element,
        // data count, code and data.
        let export_goes_here = matches!(
            before,
            None | Some(SectionId::Start)
                | Some(SectionId::Element)
                | Some(SectionId::DataCount)
                | Some(SectionId::Code)
                | Some(SectionId::Data)
        );
        if !self.exports_done && !self.scan.has_exports && self.scan.has_memory && export_goes_here
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
        let uses_bulk = {
            let mut reader = func.get_operators_reader()?;
            let mut found = false;
            while !reader.eof() {
                if matches!(
                    reader.read()?,
                    Operator::MemoryCopy { .. }
                        | Operator::MemoryFill { .. }
                        | Operator::MemoryInit { .. }
                ) {
                    found = true;
                    break;
                }
            }
            found
        };
        if !uses_bulk {
            return reencode::utils::parse_function_body(self, code, func);
        }
        // Scratch locals after the parameters and the declared locals: three of the address
        // type (a0..a2), two i32 (i0, i1).
        let params = self
            .scan
            .func_types
            .get(index)
            .and_then(|&t| self.scan.type_params.get(t as usize))
            .copied()
            .unwrap_or(0);
        let mut locals = Vec::new();
        let mut count = params;
        for pair in func.get_locals_reader()? {
            let (n, ty) = pair?;
            count += n;
            locals.push((n, self.val_type(ty)?));
        }
        locals.push((3, self.addr()));
        locals.push((2, ValType::I32));
        let (a0, a1, a2, i0, i1) = (count, count + 1, count + 2, count + 3, count + 4);
        let mut f = wasm_encoder::Function::new(locals);
        let (copy, fill, init) = (self.check(0), self.check(1), self.check(2));
        let mut reader = func.get_operators_reader()?;
        use Instruction::{Call, LocalGet as Get, LocalSet as Set};
        while !reader.eof() {
            let op = reader.read()?;
            let ins = self.instruction(op.clone())?;
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
/// against the page table first (see the module docs). Modules with more than one memory
/// are refused later, by [`crate::TaskPre::new`].
///
/// # Errors
///
/// When `wasm` is not a valid core module binary.
pub fn rewrite(wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(wasm)
        .map_err(|e| wasmtime::format_err!("machvm: the module is not valid: {e}"))?;
    let scan = scan(wasm)?;
    let mut r = Rewriter {
        scan: &scan,
        types_done: false,
        imports_done: false,
        exports_done: false,
        next_func: 0,
    };
    let mut module = wasm_encoder::Module::new();
    r.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| wasmtime::format_err!("machvm: cannot rewrite the module: {e}"))?;
    let lost = (r.count() > 0 && !(r.types_done && r.imports_done))
        || (scan.has_memory && !r.exports_done);
    if lost {
        wasmtime::bail!("machvm: internal error: the bulk-memory rewrite lost a section");
    }
    Ok(module.finish())
}
