//! WASI preview 1 and the page table (the contract's "other host functions" rule): every
//! function that takes a pointer, called through a real guest with each of its pointers (and
//! each buffer an iovec names) moved into a page the table refuses, answers errno `FAULT`
//! (21) and has no effect; the same call with every pointer in a read-write page does not
//! answer `FAULT` (so each case can fail).

mod common;

use common::child;

use machvm::abi::{VM_PROT_NONE, VM_PROT_READ};
use machvm::wasi::ERRNO_FAULT;
use machvm::{host, Kernel, TaskId};
use wasmtime::{Config, Engine, Instance, Linker, Store, Val};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

struct State {
    kernel: Kernel,
    wasi: WasiP1Ctx,
}

impl machvm::KernelView for State {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

/// One parameter of a WASI function, as the test builds it.
#[derive(Clone, Copy, Debug)]
enum Arg {
    /// A plain i32 (fd, flags, count).
    I32(i32),
    /// A plain i64 (offset, rights, timestamp).
    I64(i64),
    /// An out-pointer of that many bytes (written).
    Out(u32),
    /// An in-pointer of that many bytes (read), without a length parameter.
    In(u32),
    /// A buffer written, then its length: two parameters.
    WBuf(u32),
    /// A string read, then its length: two parameters.
    Str(&'static [u8]),
    /// An iovec array of one entry, then its count: two parameters; the buffer it names
    /// (16 bytes) is written (`true`) or read.
    Iov(bool),
}

const FD_DIR: i32 = 3;
const STDIN: i32 = 0;
const STDOUT: i32 = 1;

/// Every preview 1 function that takes a pointer, with arguments that make sense.
fn functions() -> Vec<(&'static str, Vec<Arg>)> {
    use Arg::*;
    vec![
        ("args_get", vec![Out(8), Out(7)]),
        ("args_sizes_get", vec![Out(4), Out(4)]),
        ("environ_get", vec![Out(4), Out(6)]),
        ("environ_sizes_get", vec![Out(4), Out(4)]),
        ("clock_res_get", vec![I32(1), Out(8)]),
        ("clock_time_get", vec![I32(1), I64(1), Out(8)]),
        ("fd_fdstat_get", vec![I32(STDOUT), Out(24)]),
        ("fd_filestat_get", vec![I32(FD_DIR), Out(64)]),
        ("fd_pread", vec![I32(FD_DIR), Iov(true), I64(0), Out(4)]),
        ("fd_prestat_get", vec![I32(FD_DIR), Out(8)]),
        ("fd_prestat_dir_name", vec![I32(FD_DIR), WBuf(16)]),
        ("fd_pwrite", vec![I32(FD_DIR), Iov(false), I64(0), Out(4)]),
        ("fd_read", vec![I32(STDIN), Iov(true), Out(4)]),
        ("fd_readdir", vec![I32(FD_DIR), WBuf(64), I64(0), Out(4)]),
        ("fd_seek", vec![I32(STDIN), I64(0), I32(1), Out(8)]),
        ("fd_tell", vec![I32(STDIN), Out(8)]),
        ("fd_write", vec![I32(STDOUT), Iov(false), Out(4)]),
        ("path_create_directory", vec![I32(FD_DIR), Str(b"made")]),
        (
            "path_filestat_get",
            vec![I32(FD_DIR), I32(0), Str(b"."), Out(64)],
        ),
        (
            "path_filestat_set_times",
            vec![I32(FD_DIR), I32(0), Str(b"."), I64(0), I64(0), I32(0)],
        ),
        (
            "path_link",
            vec![I32(FD_DIR), I32(0), Str(b"a"), I32(FD_DIR), Str(b"b")],
        ),
        (
            "path_open",
            vec![
                I32(FD_DIR),
                I32(0),
                Str(b"file"),
                I32(1),           // O_CREAT
                I64(0x1fff_ffff), // every right
                I64(0x1fff_ffff),
                I32(0),
                Out(4),
            ],
        ),
        (
            "path_readlink",
            vec![I32(FD_DIR), Str(b"file"), WBuf(16), Out(4)],
        ),
        ("path_remove_directory", vec![I32(FD_DIR), Str(b"gone")]),
        (
            "path_rename",
            vec![I32(FD_DIR), Str(b"a"), I32(FD_DIR), Str(b"b")],
        ),
        ("path_symlink", vec![Str(b"a"), I32(FD_DIR), Str(b"link")]),
        ("path_unlink_file", vec![I32(FD_DIR), Str(b"gone")]),
        ("poll_oneoff", vec![In(48), Out(32), I32(1), Out(4)]),
        ("random_get", vec![WBuf(16)]),
        ("sock_accept", vec![I32(FD_DIR), I32(0), Out(4)]),
        (
            "sock_recv",
            vec![I32(FD_DIR), Iov(true), I32(0), Out(4), Out(2)],
        ),
        ("sock_send", vec![I32(FD_DIR), Iov(false), I32(0), Out(4)]),
    ]
}

/// The wasm types of an argument.
fn types(a: Arg) -> &'static [&'static str] {
    match a {
        Arg::I64(_) => &["i64"],
        Arg::I32(_) | Arg::Out(_) | Arg::In(_) => &["i32"],
        Arg::WBuf(_) | Arg::Str(_) | Arg::Iov(_) => &["i32", "i32"],
    }
}

/// A guest that imports every function of `functions()` and exports a trampoline `t_NAME`
/// for each (WASI finds its memory through the calling instance, so the host must call
/// through wasm).
fn guest() -> String {
    let mut wat = String::from("(module\n");
    let mut tramps = String::new();
    for (name, args) in functions() {
        let params: Vec<&str> = args
            .iter()
            .flat_map(|&a| types(a).iter().copied())
            .collect();
        let p = params.join(" ");
        wat.push_str(&format!(
            "  (import \"wasi_snapshot_preview1\" \"{name}\" (func ${name} (param {p}) (result i32)))\n"
        ));
        let gets: String = (0..params.len())
            .map(|i| format!(" (local.get {i})"))
            .collect();
        tramps.push_str(&format!(
            "  (func (export \"t_{name}\") (param {p}) (result i32) (call ${name}{gets}))\n"
        ));
    }
    wat.push_str("  (memory (export \"memory\") 1)\n");
    wat.push_str(&tramps);
    wat.push(')');
    wat
}

const RW: u64 = 0x1000; // pointers and strings
const IOV: u64 = 0x1800; // the iovec array
const IOV_BUF: u64 = 0x1900; // the buffer it names
const RO: u64 = 0x3000; // read-only: out-pointers and written buffers fault here
const NONE: u64 = 0x4000; // inaccessible: read pointers fault here

struct Guest {
    store: Store<State>,
    instance: Instance,
    task: TaskId,
    stdout: MemoryOutputPipe,
    dir: std::path::PathBuf,
}

fn new_guest(wat: &str) -> Guest {
    let engine = Engine::new(machvm::configure(&mut Config::new())).unwrap();
    let module = machvm::compile(&engine, wat.as_bytes()).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "machvm-wasi-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let stdout = MemoryOutputPipe::new(1 << 16);
    let wasi = WasiCtxBuilder::new()
        .args(&["prog", "a"])
        .env("K", "V")
        .stdin(MemoryInputPipe::new("hello"))
        .stdout(stdout.clone())
        .preopened_dir(&dir, "/", FsPerms::ReadWrite)
        .unwrap()
        .build_p1();
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
            wasi,
        },
    );
    machvm::install_handlers(&mut store);
    let mut linker = Linker::new(&engine);
    machvm::wasi::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi).unwrap();
    let (instance, task) = machvm::instantiate(&mut store, &linker, &module).unwrap();
    // Recognisable bytes in the pages that get protected, and an iovec naming IOV_BUF.
    host::write_bytes(&mut store, task, RO, &[0xab; 0x1000]).unwrap();
    host::write_bytes(&mut store, task, NONE, &[0xcd; 0x1000]).unwrap();
    host::protect(&mut store, task, RO, 0x1000, false, VM_PROT_READ).unwrap();
    host::protect(&mut store, task, NONE, 0x1000, false, VM_PROT_NONE).unwrap();
    Guest {
        store,
        instance,
        task,
        stdout,
        dir,
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where one pointer of a call goes.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Place {
    /// Every pointer in read-write memory.
    Allowed,
    /// Pointer `k` (by argument) in the refused page.
    Refused(usize),
    /// Argument `k` is an iovec array in read-write memory naming a refused buffer.
    RefusedBuffer(usize),
}

impl Guest {
    fn write(&mut self, addr: u64, bytes: &[u8]) {
        host::write_bytes(&mut self.store, self.task, addr, bytes).unwrap();
    }

    /// The bytes of every page the host can read (all but the `NONE` page).
    fn readable(&mut self) -> Vec<u8> {
        let mut out = host::read_bytes(&mut self.store, self.task, 0, NONE as usize).unwrap();
        out.extend(host::read_bytes(&mut self.store, self.task, NONE + 0x1000, 0xb000).unwrap());
        out
    }

    /// Calls `name` with `args`, its pointers placed as `place` says.
    fn call(&mut self, name: &str, args: &[Arg], place: Place) -> i32 {
        let vals = self.prepare(args, place);
        self.invoke(name, &vals, place)
    }

    /// Writes what the pointers of `args` point at, and gives the wasm arguments.
    fn prepare(&mut self, args: &[Arg], place: Place) -> Vec<Val> {
        let mut vals = Vec::new();
        for (k, &a) in args.iter().enumerate() {
            let slot = RW + 0x40 * k as u64;
            let refused = |write: bool| if write { RO } else { NONE } + 0x40 * k as u64;
            let at = |write: bool| match place {
                Place::Refused(r) if r == k => refused(write),
                _ => slot,
            };
            match a {
                Arg::I32(v) => vals.push(Val::I32(v)),
                Arg::I64(v) => vals.push(Val::I64(v)),
                Arg::Out(n) => {
                    assert!(n <= 0x40, "slots are 0x40 bytes apart");
                    vals.push(Val::I32(at(true) as i32))
                }
                Arg::In(n) => {
                    // A zeroed subscription: a relative clock timeout of 0.
                    self.write(slot, &vec![0; n as usize]);
                    vals.push(Val::I32(at(false) as i32));
                }
                Arg::WBuf(n) => {
                    vals.push(Val::I32(at(true) as i32));
                    vals.push(Val::I32(n as i32));
                }
                Arg::Str(s) => {
                    self.write(slot, s);
                    vals.push(Val::I32(at(false) as i32));
                    vals.push(Val::I32(s.len() as i32));
                }
                Arg::Iov(write) => {
                    let iov = IOV + 0x20 * k as u64;
                    let buf = match place {
                        Place::RefusedBuffer(r) if r == k => refused(write),
                        _ => IOV_BUF,
                    };
                    if !write {
                        self.write(IOV_BUF, b"0123456789abcdef");
                    }
                    let mut entry = (buf as u32).to_le_bytes().to_vec();
                    entry.extend(16u32.to_le_bytes());
                    self.write(iov, &entry);
                    let array = match place {
                        Place::Refused(r) if r == k => NONE + 0x40 * k as u64,
                        _ => iov,
                    };
                    vals.push(Val::I32(array as i32));
                    vals.push(Val::I32(1));
                }
            }
        }
        vals
    }

    /// Calls `name`'s trampoline with `vals`; it must not trap.
    fn invoke(&mut self, name: &str, vals: &[Val], place: Place) -> i32 {
        let f = self
            .instance
            .get_func(&mut self.store, &format!("t_{name}"))
            .unwrap();
        let mut ret = [Val::I32(0)];
        f.call(&mut self.store, vals, &mut ret)
            .unwrap_or_else(|e| panic!("{name} {place:?}: {e:?}"));
        ret[0].unwrap_i32()
    }
}

/// The places that must fault for a function: each pointer, and each iovec's buffer.
fn refused_places(args: &[Arg]) -> Vec<Place> {
    let mut out = Vec::new();
    for (k, a) in args.iter().enumerate() {
        match a {
            Arg::I32(_) | Arg::I64(_) => {}
            Arg::Iov(_) => {
                out.push(Place::Refused(k));
                out.push(Place::RefusedBuffer(k));
            }
            _ => out.push(Place::Refused(k)),
        }
    }
    out
}

// Every test that hands WASI a refused page runs in a child process (`child::in_child`): a
// boundary check that failed would let WASI touch a protected page, which kills the process.

#[test]
fn every_pointer_of_every_function_is_checked_against_the_table() {
    child::in_child(
        "every_pointer_of_every_function_is_checked_against_the_table",
        every_pointer,
    );
}

fn every_pointer() {
    let mut g = new_guest(&guest());
    let mut checked = 0;
    for (name, args) in functions() {
        for place in refused_places(&args) {
            let vals = g.prepare(&args, place);
            let before = g.readable();
            let out_before = g.stdout.contents().len();
            let r = g.invoke(name, &vals, place);
            assert_eq!(r, ERRNO_FAULT, "{name} with {place:?}");
            assert!(
                g.readable() == before,
                "{name} with {place:?} changed guest memory"
            );
            assert_eq!(
                g.stdout.contents().len(),
                out_before,
                "{name} with {place:?} produced output"
            );
            checked += 1;
        }
        // The same call with every pointer allowed is not refused: each case above can fail.
        let r = g.call(name, &args, Place::Allowed);
        assert_ne!(r, ERRNO_FAULT, "{name} with every pointer allowed");
    }
    assert!(checked >= 50, "{checked} cases");
}

#[test]
fn a_refused_read_consumes_no_input() {
    child::in_child("a_refused_read_consumes_no_input", || {
        let mut g = new_guest(&guest());
        let args = [Arg::I32(STDIN), Arg::Iov(true), Arg::Out(4)];
        assert_eq!(
            g.call("fd_read", &args, Place::RefusedBuffer(1)),
            ERRNO_FAULT
        );
        assert_eq!(g.call("fd_read", &args, Place::Refused(2)), ERRNO_FAULT);
        // Then a read into allowed memory gets the whole input.
        assert_eq!(g.call("fd_read", &args, Place::Allowed), 0);
        let n = host::read_bytes(&mut g.store, g.task, RW + 0x40 * 2, 4).unwrap();
        assert_eq!(u32::from_le_bytes(n.try_into().unwrap()), 5);
        let buf = host::read_bytes(&mut g.store, g.task, IOV_BUF, 5).unwrap();
        assert_eq!(buf, b"hello");
    });
}

#[test]
fn a_refused_write_prints_nothing_and_an_allowed_one_prints() {
    child::in_child(
        "a_refused_write_prints_nothing_and_an_allowed_one_prints",
        || {
            let mut g = new_guest(&guest());
            let args = [Arg::I32(STDOUT), Arg::Iov(false), Arg::Out(4)];
            assert_eq!(
                g.call("fd_write", &args, Place::RefusedBuffer(1)),
                ERRNO_FAULT
            );
            assert!(g.stdout.contents().is_empty());
            assert_eq!(g.call("fd_write", &args, Place::Allowed), 0);
            assert_eq!(&g.stdout.contents()[..], b"0123456789abcdef");
        },
    );
}

#[test]
fn a_refused_path_changes_no_file() {
    child::in_child("a_refused_path_changes_no_file", || {
        let mut g = new_guest(&guest());
        let args = [Arg::I32(FD_DIR), Arg::Str(b"made")];
        assert_eq!(
            g.call("path_create_directory", &args, Place::Refused(1)),
            ERRNO_FAULT
        );
        assert!(!g.dir.join("made").exists());
        assert_eq!(g.call("path_create_directory", &args, Place::Allowed), 0);
        assert!(g.dir.join("made").is_dir());
    });
}

/// A page the guest made write-only is refused to WASI's reads, even after the guest's own
/// store (the table has no READ).
#[test]
fn write_only_pages_are_not_readable_by_wasi() {
    child::in_child("write_only_pages_are_not_readable_by_wasi", || {
        let mut g = new_guest(&guest());
        let page = 0x5000;
        host::protect(
            &mut g.store,
            g.task,
            page,
            0x1000,
            false,
            machvm::abi::VM_PROT_WRITE,
        )
        .unwrap();
        let mut entry = (page as u32).to_le_bytes().to_vec();
        entry.extend(16u32.to_le_bytes());
        g.write(IOV, &entry);
        let f = g.instance.get_func(&mut g.store, "t_fd_write").unwrap();
        let mut ret = [Val::I32(0)];
        let args = [
            Val::I32(STDOUT),
            Val::I32(IOV as i32),
            Val::I32(1),
            Val::I32(RW as i32),
        ];
        f.call(&mut g.store, &args, &mut ret).unwrap();
        assert_eq!(ret[0].unwrap_i32(), ERRNO_FAULT);
        assert!(g.stdout.contents().is_empty());
    });
}

/// WASI writes into a write-only page that waits for its first store (x86-64 Linux keeps
/// it inaccessible until then): machvm maps it before WASI's host code writes, and when the
/// process's mapping budget cannot afford that, the function answers `FAULT` with nothing
/// written and the process unharmed (host code never relies on the fault handler).
#[test]
fn wasi_writes_map_write_only_pages_first() {
    child::in_child("wasi_writes_map_write_only_pages_first", || {
        let mut g = new_guest(&guest());
        let page = 0x5000;
        host::write_bytes(&mut g.store, g.task, page, &[0xee; 16]).unwrap();
        let write_only = machvm::abi::VM_PROT_WRITE;
        host::protect(&mut g.store, g.task, page, 0x1000, false, write_only).unwrap();
        let random = |g: &mut Guest, len: i32| {
            let f = g.instance.get_func(&mut g.store, "t_random_get").unwrap();
            let mut ret = [Val::I32(-1)];
            f.call(
                &mut g.store,
                &[Val::I32(page as i32), Val::I32(len)],
                &mut ret,
            )
            .unwrap();
            ret[0].unwrap_i32()
        };
        let budget = machvm::enforce::mapping_budget();
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            // No mapping to spare: refused, with nothing written.
            machvm::enforce::set_mapping_budget(machvm::enforce::mappings_in_use());
            assert_eq!(random(&mut g, 16), ERRNO_FAULT);
            machvm::enforce::set_mapping_budget(budget);
            let rw = machvm::abi::VM_PROT_DEFAULT;
            host::protect(&mut g.store, g.task, page, 0x1000, false, rw).unwrap();
            let bytes = host::read_bytes(&mut g.store, g.task, page, 16).unwrap();
            assert_eq!(bytes, [0xee; 16], "nothing written");
            host::protect(&mut g.store, g.task, page, 0x1000, false, write_only).unwrap();
        }
        machvm::enforce::set_mapping_budget(budget);
        assert_eq!(random(&mut g, 16), 0);
        // Written, and still not readable by WASI: the table has no READ.
        host::protect(&mut g.store, g.task, page, 0x1000, false, VM_PROT_READ).unwrap();
        let bytes = host::read_bytes(&mut g.store, g.task, page, 16).unwrap();
        assert_ne!(bytes, [0xee; 16], "random bytes arrived");
    });
}

/// A pointer outside the linear memory keeps WASI's own rule: a trap, not `FAULT`.
#[test]
fn out_of_bounds_pointers_still_trap() {
    let mut g = new_guest(&guest());
    let f = g.instance.get_func(&mut g.store, "t_random_get").unwrap();
    let mut ret = [Val::I32(0)];
    let err = f
        .call(&mut g.store, &[Val::I32(0xfff0), Val::I32(0x100)], &mut ret)
        .unwrap_err();
    assert!(format!("{err:?}").contains("out of bounds"), "{err:?}");
}
