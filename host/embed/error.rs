//! The errors of the embedding API, typed so that a caller can match them by variant.
//!
//! machvm's functions return `wasmtime::Result`, as Wasmtime's own do; an error machvm
//! raises is one of these types inside it: find it with `error.downcast_ref::<LinkError>()`
//! (or [`ConfigError`], [`TaskError`]). Their messages are what `machvm run` prints.

use std::fmt;

use crate::abi::{MachPort, Width};
use crate::vm::TaskId;

/// Why a module cannot become a task ([`TaskPre::new`](crate::TaskPre::new),
/// [`TaskPre::instantiate`](crate::TaskPre::instantiate), [`new_task`](crate::new_task)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// The module does not have exactly one linear memory.
    Memories {
        /// Memories it imports.
        imported: u32,
        /// Memories it defines.
        defined: u32,
    },
    /// The module defines its memory but does not export it.
    MemoryNotExported,
    /// The memory is shared: it cannot be a task's memory.
    SharedMemory,
    /// The memory has a custom page size (in bytes): only 64 KiB wasm pages are supported.
    CustomPageSize(u64),
    /// The memory is already a task's memory.
    AlreadyATask,
    /// An import of module `"mach"` that machvm does not provide.
    UnknownMachImport {
        /// The import's name.
        name: String,
        /// Every name machvm provides, comma-separated.
        provided: String,
    },
    /// An import of module `"mach"` whose type is not the one the ABI gives it.
    Signature {
        /// The import, as `mach::vm_copy`.
        import: String,
        /// The memory width the ABI was chosen for.
        width: Width,
        /// The signature the ABI gives it, as `(i32, i32, i32, i32) -> i32`.
        expected: String,
        /// What the module declares: `has signature (i32) -> i32`, or `is not a function
        /// but ...`.
        found: String,
    },
    /// An import of the module of the bulk-memory checks machvm's rewrite adds that is not
    /// one of them (or not with their signature).
    NotABulkCheck {
        /// The import, as `module::name`.
        import: String,
        /// The memory width.
        width: Width,
    },
    /// An import of the module of the copy-window globals machvm's rewrite adds that is not
    /// one of them, or a window global imported twice.
    NotFromTheRewrite {
        /// The import, as `module::name`.
        import: String,
        /// The memory width.
        width: Width,
    },
    /// An import that neither machvm nor the linker defines.
    Undefined {
        /// The import, as `module::name`.
        import: String,
    },
    /// Enforcement is on and the module was not compiled with [`crate::compile`].
    NotCompiled,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Memories { imported, defined } => write!(
                f,
                "machvm: a task's module must have exactly one linear memory; this one has {} \
                 ({imported} imported, {defined} defined)",
                imported + defined
            ),
            LinkError::MemoryNotExported => f.write_str(
                "machvm: the module defines its memory but does not export it; machvm needs it \
                 exported (C: link with -Wl,--export-memory)",
            ),
            LinkError::SharedMemory => {
                f.write_str("machvm: a shared memory cannot be a task's memory")
            }
            LinkError::CustomPageSize(size) => write!(
                f,
                "machvm: the task's memory has a custom page size of {size} bytes; only 64 KiB \
                 wasm pages are supported"
            ),
            LinkError::AlreadyATask => {
                f.write_str("machvm: that memory is already a task's memory")
            }
            LinkError::UnknownMachImport { name, provided } => {
                write!(
                    f,
                    "machvm: unknown import `mach::{name}`; machvm provides {provided}"
                )
            }
            LinkError::Signature {
                import,
                width,
                expected,
                found,
            } => write!(
                f,
                "machvm: import `{import}` {found}; for a {}-bit memory machvm expects {expected}",
                width.bits()
            ),
            LinkError::NotABulkCheck { import, width } => write!(
                f,
                "machvm: import `{import}` is not one machvm's bulk-memory rewrite makes (for a \
                 {}-bit memory)",
                width.bits()
            ),
            LinkError::NotFromTheRewrite { import, width } => write!(
                f,
                "machvm: import `{import}` is not one machvm's rewrite makes (for a {}-bit \
                 memory), or is imported twice",
                width.bits()
            ),
            LinkError::Undefined { import } => {
                write!(f, "unknown import: `{import}` has not been defined")
            }
            LinkError::NotCompiled => f.write_str(
                "machvm: page-protection enforcement is on, but the module was not compiled \
                 with `machvm::compile`, which makes its bulk-memory instructions safe to run \
                 on protected memory (or turn enforcement off: `KernelConfig::enforce`)",
            ),
        }
    }
}

impl std::error::Error for LinkError {}

/// Why a configuration cannot be used: a [`KernelConfig`](crate::KernelConfig), or the
/// engine or operation it is used with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The page size is not a power of two from 4096 to 65536.
    PageSize(u64),
    /// Enforcement was asked for where it is not supported (not Linux).
    EnforcementUnsupported,
    /// Enforcement needs the page size to be a multiple of the host's.
    PageSizeBelowHost {
        /// The configured page size.
        page_size: u64,
        /// The host's page size.
        host: u64,
    },
    /// Enforcement is on and the engine's memories may move.
    MemoryMayMove,
    /// Enforcement is on and the engine does not use signal-based traps.
    NoSignalTraps,
    /// [`register_memory`](crate::register_memory) while enforcement is on.
    RegisterWithEnforcement,
    /// The process made 2^32 kernels.
    TooManyKernels,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::PageSize(p) => write!(
                f,
                "machvm: page size {p} is not supported: use a power of two from 4096 to 65536 \
                 (4096 is macOS x86_64's, 16384 Apple silicon's)"
            ),
            ConfigError::EnforcementUnsupported => {
                f.write_str("machvm: page-protection enforcement is only supported on Linux")
            }
            ConfigError::PageSizeBelowHost { page_size, host } => write!(
                f,
                "machvm: enforcement needs the page size ({page_size}) to be a multiple of the \
                 host's page size ({host})"
            ),
            ConfigError::MemoryMayMove => f.write_str(
                "machvm: page-protection enforcement needs an engine whose memories never move; \
                 set it up with `machvm::configure` (it sets `Config::memory_may_move(false)`), \
                 or turn enforcement off (`KernelConfig::enforce`)",
            ),
            ConfigError::NoSignalTraps => f.write_str(
                "machvm: page-protection enforcement needs signal-based traps; set the engine up \
                 with `machvm::configure` (it sets `Config::signals_based_traps(true)`), or turn \
                 enforcement off (`KernelConfig::enforce`)",
            ),
            ConfigError::RegisterWithEnforcement => f.write_str(
                "machvm: `register_memory` is refused while enforcement is on: machvm cannot \
                 know what code uses a memory it did not create (use `new_task` or `TaskPre`)",
            ),
            ConfigError::TooManyKernels => f.write_str("machvm: this process made 2^32 kernels"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why the kernel refused to act on a task.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The id is not a live task of this kernel.
    NoSuchTask(TaskId),
    /// The task is stopped: its hardware protection could not be brought back in line with
    /// its table.
    Stopped(TaskId),
    /// The kernel was moved out of the store data its tasks were made in.
    KernelMoved,
    /// The task's namespace holds no right under that name.
    NoSuchName(TaskId, MachPort),
    /// The task's namespace holds as many names as it may ([`crate::vm::MAX_NAMES`]).
    NamespaceFull(TaskId),
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::NoSuchTask(t) => write!(f, "machvm: {t:?} is not a task of this kernel"),
            TaskError::Stopped(t) => write!(
                f,
                "machvm: {t:?} is stopped: its page protections could not be brought back in \
                 line with its page table"
            ),
            TaskError::KernelMoved => f.write_str(
                "machvm: this kernel was moved out of the store data its tasks were made in \
                 (keep it in place once it has tasks: box it if its container moves)",
            ),
            TaskError::NoSuchName(t, name) => write!(
                f,
                "machvm: the namespace of {t:?} holds no right named {name:#x}"
            ),
            TaskError::NamespaceFull(t) => write!(
                f,
                "machvm: the namespace of {t:?} holds {} names already, the most it may",
                crate::vm::MAX_NAMES
            ),
        }
    }
}

impl std::error::Error for TaskError {}
