//! The embedding examples (`examples/two_tasks.rs`, `examples/shared_pages.rs`,
//! `examples/memory_entry.rs`), run as tests.

#[allow(dead_code)] // its `main` is the example's, not the test's
#[path = "../examples/two_tasks.rs"]
mod two_tasks;

#[allow(dead_code)]
#[path = "../examples/shared_pages.rs"]
mod shared_pages;

#[allow(dead_code)]
#[path = "../examples/memory_entry.rs"]
mod memory_entry;

use machvm::abi::*;

#[test]
fn one_task_copies_memory_out_of_the_other() {
    let r = two_tasks::run().expect("the example runs");
    // The first right inserted into a namespace is named 0x303 (docs/semantics.md).
    assert_eq!(r.port, MachPort(0x303));
    assert_eq!(r.copy, KERN_SUCCESS);
    assert_eq!(r.copied, two_tasks::MESSAGE);
    assert_eq!(r.guarded_copy, KERN_PROTECTION_FAILURE);
    let regions: Vec<String> = r.source_regions.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        regions,
        [
            "0x0-0x2000 rw-/rwx",
            "0x2000-0x3000 r--/rwx",
            "0x3000-0x4000 ---/rwx",
            "0x4000-0x10000 rw-/rwx"
        ]
    );
}

#[test]
fn two_guests_write_and_read_each_others_bytes() {
    let r = shared_pages::run().expect("the example runs");
    assert_eq!((r.port, r.remap), (MachPort(0x303), KERN_SUCCESS));
    // The page went where the subscriber's memory had room: past its first wasm page.
    assert_eq!(r.mapped, 0x10000);
    assert_eq!(r.greeting, shared_pages::GREETING);
    assert_eq!(r.reply, shared_pages::REPLY);
    assert_eq!(r.answer, shared_pages::ANSWER);
    assert_eq!(r.shared, [true, true]);
}

#[test]
fn two_guests_share_a_page_through_a_memory_entry_the_host_moves() {
    let r = memory_entry::run().expect("the example runs");
    // The maker's first name of its own, then the mapper's.
    assert_eq!(r.make, (KERN_SUCCESS, MachPort(0x303)));
    assert_eq!(r.moved, MachPort(0x303));
    assert!(!r.maker_keeps_it, "a move leaves no name behind");
    assert_eq!(r.map, (KERN_SUCCESS, 0x10000));
    assert_eq!(r.message, memory_entry::MESSAGE);
    assert_eq!(r.reply, memory_entry::REPLY);
    // The reply went to 0x100 of the page; its first bytes are the maker's still.
    assert_eq!(r.after_free, memory_entry::MESSAGE);
}
