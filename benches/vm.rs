//! machvm against its physical limits, side by side in one run (see PERFORMANCE.md):
//! - `copy/*`: `vm_copy` from the guest vs native `copy_within` (on a buffer of its own, and
//!   from the host on the guest's memory) vs the guest's own
//!   `memory.copy` (as plain Wasmtime runs it, and with machvm's enforcement check before
//!   it), 4 KiB to 64 MiB, disjoint and overlapping; `vm_copy` as deployed (served in wasm
//!   inside the copy windows) and, up to 64 KiB, with `copy_in_wasm` off (a host call each);
//! - `call/*`: `mach_task_self`, `host_page_size`, `vm_copy` of size 0 (a host call; and
//!   served in wasm) vs a no-op import (and a no-op import of `vm_copy`'s signature that
//!   takes the `Caller`, as machvm's do);
//! - `protect/*`: `vm_protect` of one page vs 1 GiB, on a table of 1 and of 10,000 runs;
//! - `churn`: `vm_allocate`/`vm_deallocate` pairs;
//! - `instantiate/*`: a small module as a task vs plain Wasmtime, on-demand and pooling;
//! - `live_tasks`: how many tasks one store holds at once (printed, not timed by criterion);
//! - `enforce/*`: a load/store-heavy guest with page-protection enforcement on vs off.
//!
//! Each wasm export repeats its operation `n` times inside wasm, so the host-to-wasm call is
//! amortised; criterion's throughput then reports per-operation figures.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use machvm::abi::{KernReturn, TASK_SELF_NAME, VM_PROT_DEFAULT};
use machvm::{Call, Form, Kernel, KernelConfig, TaskPre};
use wasmtime::{Config, Engine, Func, Instance, Linker, Module, Store};

mod common;
use common::{engine, guest, guest_with, State};

const SIZES: [(usize, &str); 5] = [
    (4 << 10, "4KiB"),
    (64 << 10, "64KiB"),
    (1 << 20, "1MiB"),
    (16 << 20, "16MiB"),
    (64 << 20, "64MiB"),
];

fn copies(c: &mut Criterion) {
    let engine = engine(false);
    let mut g = guest(&engine, true);
    let vm_copy = g.func::<(u32, u32, u32, u32), i32>("vm_copy");
    // The same, with every copy a host call.
    let mut host = guest_with(&engine, KernelConfig::default().copy_in_wasm(false));
    let host_copy = host.func::<(u32, u32, u32, u32), i32>("vm_copy");
    let memory_copy = g.func::<(u32, u32, u32, u32), i32>("memory_copy");
    // The same guest as plain Wasmtime runs it: no bulk-memory check before `memory.copy`.
    let mut plain = guest(&engine, false);
    let plain_copy = plain.func::<(u32, u32, u32, u32), i32>("memory_copy");
    let mut native = vec![1u8; 128 << 20];
    // The guests' memories hold the same bytes, so that no side reads never-written pages
    // (the kernel's zero page) while the other reads real ones.
    for guest in [&mut g, &mut host, &mut plain] {
        let memory = guest
            .instance
            .get_memory(&mut guest.store, "memory")
            .unwrap();
        memory.data_mut(&mut guest.store)[..128 << 20].fill(1);
    }
    for overlap in [false, true] {
        let mut group = c.benchmark_group(if overlap {
            "copy/overlapping"
        } else {
            "copy/disjoint"
        });
        for (len, name) in SIZES {
            // Repeat small copies so each sample is a sizeable amount of work.
            let n = ((64 << 20) / len).clamp(1, 4096) as u32;
            let (src, dst) = if overlap { (0, len / 4) } else { (0, 64 << 20) };
            group.throughput(Throughput::Bytes(len as u64 * u64::from(n)));
            group.bench_function(BenchmarkId::new("memmove", name), |b| {
                b.iter(|| {
                    for _ in 0..n {
                        native.copy_within(src..src + len, dst);
                        black_box(&mut native);
                    }
                })
            });
            // The same memmove, from the host, on the very memory vm_copy works on: the
            // physical limit there, whatever the placement of its pages.
            let memory = g.instance.get_memory(&mut g.store, "memory").unwrap();
            group.bench_function(BenchmarkId::new("memmove-guest-memory", name), |b| {
                b.iter(|| {
                    let bytes = memory.data_mut(&mut g.store);
                    for _ in 0..n {
                        bytes.copy_within(src..src + len, dst);
                        black_box(&mut *bytes);
                    }
                })
            });
            group.bench_function(BenchmarkId::new("memory.copy", name), |b| {
                b.iter(|| {
                    plain_copy
                        .call(&mut plain.store, (src as u32, len as u32, dst as u32, n))
                        .unwrap()
                })
            });
            group.bench_function(BenchmarkId::new("memory.copy+check", name), |b| {
                b.iter(|| {
                    memory_copy
                        .call(&mut g.store, (src as u32, len as u32, dst as u32, n))
                        .unwrap()
                })
            });
            group.bench_function(BenchmarkId::new("vm_copy", name), |b| {
                b.iter(|| {
                    let r = vm_copy
                        .call(&mut g.store, (src as u32, len as u32, dst as u32, n))
                        .unwrap();
                    assert_eq!(r, 0);
                })
            });
            if len <= 64 << 10 {
                group.bench_function(BenchmarkId::new("vm_copy-host", name), |b| {
                    b.iter(|| {
                        let r = host_copy
                            .call(&mut host.store, (src as u32, len as u32, dst as u32, n))
                            .unwrap();
                        assert_eq!(r, 0);
                    })
                });
            }
        }
        group.finish();
    }
}

const N: u32 = 10_000;

fn calls(c: &mut Criterion) {
    let engine = engine(false);
    let mut g = guest(&engine, true);
    let mut group = c.benchmark_group("call");
    group.throughput(Throughput::Elements(u64::from(N)));
    // `g` never copies a byte, so its copy windows stay closed: `vm_copy0` is a host call.
    for name in ["noop", "noop4", "task_self", "host_page_size", "vm_copy0"] {
        let f = g.func::<u32, i32>(name);
        group.bench_function(name, |b| b.iter(|| f.call(&mut g.store, N).unwrap()));
    }
    // Once a copy opened the windows, the same call is served in wasm.
    let mut w = guest(&engine, true);
    let one = w.func::<(u32, u32, u32, u32), i32>("vm_copy");
    assert_eq!(one.call(&mut w.store, (0, 1, 0, 1)).unwrap(), 0);
    let f = w.func::<u32, i32>("vm_copy0");
    let id = BenchmarkId::new("vm_copy0", "in-wasm");
    group.bench_function(id, |b| b.iter(|| f.call(&mut w.store, N).unwrap()));
    // As the runner sets a store up: `install_handlers` (a signal handler, no call hook) and
    // a `ResourceLimiter`. Every host call should cost what it costs in a plain store.
    let mut h = guest(&engine, true);
    machvm::install_handlers(&mut h.store);
    h.store.limiter(|s| &mut s.limits);
    for name in ["noop", "vm_copy0"] {
        let f = h.func::<u32, i32>(name);
        let id = BenchmarkId::new(name, "handlers");
        group.bench_function(id, |b| b.iter(|| f.call(&mut h.store, N).unwrap()));
    }
    group.finish();
}

fn protects(c: &mut Criterion) {
    let engine = engine(false);
    let mut group = c.benchmark_group("protect");
    for runs in [1u64, 10_000] {
        let mut g = guest(&engine, true);
        // Grow to 1 GiB + 64 KiB, then split the table into `runs` runs below 1 GiB: every
        // other page gets a lower maximum, so that changing `cur` over the whole range keeps
        // the runs apart.
        let mem = g.instance.get_memory(&mut g.store, "memory").unwrap();
        let pages = mem.size(&g.store);
        mem.grow(&mut g.store, 16384 + 1 - pages).unwrap();
        for i in 0..runs / 2 {
            let c = Call::Protect {
                form: Form::Vm,
                task: TASK_SELF_NAME,
                addr: 0x100_0000 + i * 0x2000,
                size: 0x1000,
                set_max: 1,
                prot: VM_PROT_DEFAULT,
            };
            assert_eq!(g.call(c), KernReturn::SUCCESS);
        }
        let table = g.store.data().kernel.task(g.task).unwrap().table();
        let (count, bytes) = (table.run_count(), table.heap_bytes());
        eprintln!("protect: table with {count} runs holds about {bytes} bytes");
        let f = g.func::<(u32, u32, u32), i32>("protect");
        for (addr, len, n, name) in [
            (0x1_0000u32, 0x1000u32, 1000u32, "1page"),
            (0, 1 << 30, 10, "1GiB"),
        ] {
            group.throughput(Throughput::Elements(u64::from(n)));
            let id = BenchmarkId::new(name, format!("{runs}runs"));
            group.bench_function(id, |b| {
                b.iter(|| assert_eq!(f.call(&mut g.store, (addr, len, n)).unwrap(), 0))
            });
        }
        let table = g.store.data().kernel.task(g.task).unwrap().table();
        assert!(
            table.run_count() as u64 >= runs,
            "the runs survived the benchmark"
        );
    }
    group.finish();
}

fn churn(c: &mut Criterion) {
    let engine = engine(false);
    let mut g = guest(&engine, true);
    let f = g.func::<(u32, u32), i32>("churn");
    let mut group = c.benchmark_group("churn");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("allocate+deallocate", |b| {
        b.iter(|| assert_eq!(f.call(&mut g.store, (0x3000, 10_000)).unwrap(), 0))
    });
    group.finish();
    let table = g.store.data().kernel.task(g.task).unwrap().table();
    eprintln!(
        "churn: after the run the table has {} runs, {} bytes",
        table.run_count(),
        table.heap_bytes()
    );
}

const SMALL: &str = r#"(module
    (import "mach" "mach_task_self" (func (result i32)))
    (memory (export "memory") 1 16)
    (data (i32.const 16) "hello")
    (func (export "f") (result i32) (i32.const 1)))"#;

/// `SMALL` with a `vm_copy` call, which the rewrite serves in wasm: the task gets its four
/// copy-window globals.
const SMALL_COPY: &str = r#"(module
    (import "mach" "mach_task_self" (func (result i32)))
    (import "mach" "vm_copy" (func $copy (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1 16)
    (data (i32.const 16) "hello")
    (func (export "f") (result i32) (i32.const 1))
    (func (export "copy") (result i32)
      (call $copy (i32.const 0x103) (i32.const 16) (i32.const 5) (i32.const 32))))"#;

fn instantiation(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate");
    for pooling in [false, true] {
        let engine = engine(pooling);
        let alloc = if pooling { "pooling" } else { "on-demand" };
        for (wat, suffix) in [(SMALL, ""), (SMALL_COPY, "+vm_copy")] {
            let module = machvm::compile(&engine, wat.as_bytes()).unwrap();
            let plain = Module::new(&engine, wat).unwrap();
            let pre = TaskPre::new(&module).unwrap();
            let linker = Linker::new(&engine);
            // Plain Wasmtime gets host functions of the same signatures.
            let imports = |store: &mut Store<State>| -> Vec<wasmtime::Extern> {
                let mut v = vec![Func::wrap(&mut *store, || 0x103i32).into()];
                if plain.imports().len() > 1 {
                    let copy = |_: u32, _: u32, _: u32, _: u32| 0i32;
                    v.push(Func::wrap(&mut *store, copy).into());
                }
                v
            };
            let id = |who: &str| BenchmarkId::new(format!("{who}{suffix}"), alloc);
            group.bench_function(id("wasmtime"), |b| {
                b.iter(|| {
                    let mut store = Store::new(&engine, State::new(Kernel::new().unwrap()));
                    let externs = imports(&mut store);
                    black_box(Instance::new(&mut store, &plain, &externs).unwrap());
                })
            });
            group.bench_function(id("machvm"), |b| {
                b.iter(|| {
                    let mut store = Store::new(&engine, State::new(Kernel::new().unwrap()));
                    black_box(pre.instantiate(&mut store, &linker).unwrap());
                })
            });
        }
    }
    group.finish();
}

/// How many tasks live at once in one store (one process): instantiates `SMALL` as tasks,
/// all kept alive, until Wasmtime refuses one or `LIVE_MAX` are live, and reports the
/// count, the reason it stopped and the mean time per task. Not a criterion measurement
/// (it fills the process once); run by `cargo bench` and, once, by criterion's test mode.
fn live_tasks(_: &mut Criterion) {
    const LIVE_MAX: usize = 40_000;
    for pooling in [false, true] {
        let mut config = Config::new();
        machvm::configure(&mut config);
        if pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::new();
            pool.total_memories(LIVE_MAX as u32)
                .total_core_instances(LIVE_MAX as u32)
                .total_tables(LIVE_MAX as u32)
                .max_memory_size(1 << 20);
            // Slots of 1 MiB (the module's maximum) and small guards: the default 4 GiB
            // reservations of 40,000 slots would not fit the 128 TiB address space.
            config
                .allocation_strategy(pool)
                .memory_reservation(1 << 20)
                .memory_guard_size(1 << 16);
        }
        let alloc = if pooling { "pooling" } else { "on-demand" };
        // The pool reserves its slots up front: a machine with less address space than
        // this one refuses it, which is a result to report, not a bench failure.
        let engine = match Engine::new(&config) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("live_tasks/{alloc}: no engine: {e:#}");
                continue;
            }
        };
        let module = machvm::compile(&engine, SMALL.as_bytes()).unwrap();
        let pre = TaskPre::new(&module).unwrap();
        let linker = Linker::new(&engine);
        let mut store = Store::new(&engine, State::new(Kernel::new().unwrap()));
        // A store allows 10,000 instances and memories unless its limiter says otherwise.
        store.data_mut().limits = wasmtime::StoreLimitsBuilder::new()
            .instances(LIVE_MAX)
            .memories(LIVE_MAX)
            .tables(LIVE_MAX)
            .build();
        store.limiter(|s| &mut s.limits);
        let start = std::time::Instant::now();
        let mut stopped = format!("stopped at the bench's own limit of {LIVE_MAX}");
        let mut live = 0usize;
        while live < LIVE_MAX {
            match pre.instantiate(&mut store, &linker) {
                Ok(_) => live += 1,
                Err(e) => {
                    stopped = format!("stopped by: {e:#}");
                    break;
                }
            }
        }
        let per_task = start.elapsed().as_secs_f64() * 1e6 / live.max(1) as f64;
        // Linux allows a process `vm.max_map_count` mappings (65,530 by default).
        let mappings = std::fs::read_to_string("/proc/self/maps")
            .map_or_else(|e| format!("? ({e})"), |m| m.lines().count().to_string());
        eprintln!(
            "live_tasks/{alloc}: {live} live tasks in one store, {per_task:.1} µs per task, \
             {mappings} mappings in the process; {stopped}"
        );
    }
}

fn enforcement(c: &mut Criterion) {
    let engine = engine(false);
    let mut group = c.benchmark_group("enforce");
    let len = 16u32 << 20;
    group.throughput(Throughput::Bytes(u64::from(len)));
    for enforce in [false, true] {
        let mut g = guest(&engine, enforce);
        // Some protected pages in the scanned range: every other 64 KiB read-only.
        for i in (0..u64::from(len)).step_by(0x20000) {
            assert_eq!(
                g.protect(i + 0x10000, 0x10000, machvm::abi::VM_PROT_READ),
                KernReturn::SUCCESS
            );
        }
        let f = g.func::<u32, i32>("checksum");
        let name = if enforce { "on" } else { "off" };
        group.bench_function(BenchmarkId::new("checksum16MiB", name), |b| {
            b.iter(|| black_box(f.call(&mut g.store, len).unwrap()))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = copies, calls, protects, churn, instantiation, live_tasks, enforcement
}
criterion_main!(benches);
