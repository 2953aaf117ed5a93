//! Embedders get the call trace through their own `tracing` subscriber.

use std::sync::{Arc, Mutex};

use machvm::{instantiate, Kernel};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use wasmtime::{Engine, Linker, Store};

/// One event: level, target, message and the other fields as `name=value`.
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    target: String,
    message: String,
    fields: Vec<String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Seen>>>);

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push(format!("{}={value:?}", field.name()));
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        self.0.lock().unwrap().push(Seen {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            message: f.message,
            fields: f.fields,
        });
    }
}

const GUEST: &str = r#"(module
  (import "mach" "mach_task_self" (func $self (result i32)))
  (import "mach" "vm_allocate" (func $alloc (param i32 i32 i32 i32) (result i32)))
  (import "mach" "vm_deallocate" (func $dealloc (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (drop (call $alloc (call $self) (i32.const 0) (i32.const 0x2000) (i32.const 1)))
    ;; from 0x8000 to the end of the allocation and past it: holes
    (call $dealloc (call $self) (i32.const 0x8000) (i32.const 0x20000))))"#;

/// Runs the guest under a subscriber that keeps events up to `level`.
fn run_traced(level: LevelFilter) -> Vec<Seen> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone().with_filter(level));
    tracing::subscriber::with_default(subscriber, || {
        let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new())).unwrap();
        let module = machvm::compile(&engine, GUEST.as_bytes()).unwrap();
        let mut store = Store::new(&engine, Kernel::new().unwrap());
        let linker = Linker::new(&engine);
        let (instance, _) = instantiate(&mut store, &linker, &module).unwrap();
        let run = instance
            .get_typed_func::<(), i32>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call(&mut store, ()).unwrap(), 0);
    });
    let seen = capture.0.lock().unwrap().clone();
    seen
}

// One test, so that the two subscribers never run at once: `tracing` caches which
// callsites a subscriber wants, and concurrent scoped subscribers disturb that cache.
#[test]
fn a_subscriber_gets_one_event_per_call_and_the_guard_exception() {
    let seen = run_traced(LevelFilter::DEBUG);
    let lines: Vec<(Level, &str, &str)> = seen
        .iter()
        .map(|s| (s.level, s.target.as_str(), s.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (Level::DEBUG, "machvm::call", "mach_task_self() = 0x103"),
            (
                Level::DEBUG,
                "machvm::call",
                "vm_allocate(task=0x103, *addr=0x0 -> 0x10000, size=0x2000, ANYWHERE) = KERN_SUCCESS"
            ),
            (Level::DEBUG, "machvm::call", "mach_task_self() = 0x103"),
            (
                Level::WARN,
                "machvm::guard",
                "guard exception: deallocation range holds unallocated pages"
            ),
            (
                Level::DEBUG,
                "machvm::call",
                "vm_deallocate(task=0x103, addr=0x8000, size=0x20000) = KERN_SUCCESS"
            ),
        ]
    );
    // Structured fields for programs.
    assert_eq!(
        seen[1].fields,
        ["call=\"vm_allocate\"", "caller=0", "result=0"]
    );
    assert_eq!(
        seen[3].fields,
        ["call=\"vm_deallocate\"", "address=0x8000", "size=0x20000"]
    );

    // Calls are not reported below DEBUG; guard exceptions are.
    let seen = run_traced(LevelFilter::INFO);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].target, "machvm::guard");
}
