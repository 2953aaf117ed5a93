;; Benchmark guest: each export repeats one operation `n` times inside wasm, so that the
;; host-to-wasm call is amortised and what is measured is the operation itself.
(module
  (import "mach" "mach_task_self" (func $self (result i32)))
  (import "mach" "host_page_size" (func $hps (param i32 i32) (result i32)))
  (import "mach" "vm_copy" (func $copy (param i32 i32 i32 i32) (result i32)))
  (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
  (import "mach" "vm_allocate" (func $alloc (param i32 i32 i32 i32) (result i32)))
  (import "mach" "vm_deallocate" (func $dealloc (param i32 i32 i32) (result i32)))
  (import "bench" "noop" (func $noop (result i32)))
  (import "bench" "noop4" (func $noop4 (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2049)

  (func (export "vm_copy") (param $src i32) (param $len i32) (param $dst i32) (param $n i32) (result i32)
    (local $r i32)
    (loop $l
      (local.set $r (i32.or (local.get $r) (call $copy (i32.const 0x103) (local.get $src) (local.get $len) (local.get $dst))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $r))
  (func (export "memory_copy") (param $src i32) (param $len i32) (param $dst i32) (param $n i32) (result i32)
    (loop $l
      (memory.copy (local.get $dst) (local.get $src) (local.get $len))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (i32.const 0))
  (func (export "vm_copy0") (param $n i32) (result i32)
    (local $r i32)
    (loop $l
      (local.set $r (i32.or (local.get $r) (call $copy (i32.const 0x103) (i32.const 0) (i32.const 0) (i32.const 0))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $r))
  (func (export "task_self") (param $n i32) (result i32)
    (local $r i32)
    (loop $l
      (local.set $r (i32.xor (local.get $r) (call $self)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $r))
  (func (export "host_page_size") (param $n i32) (result i32)
    (local $r i32)
    (loop $l
      (local.set $r (i32.or (local.get $r) (call $hps (i32.const 0x203) (i32.const 0))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $r))
  ;; A no-op import of vm_copy's signature, given the caller like machvm's imports.
  (func (export "noop4") (param $n i32) (result i32)
    (local $r i32)
    (loop $l
      (local.set $r (i32.or (local.get $r) (call $noop4 (i32.const 0x103) (i32.const 0) (i32.const 0) (i32.const 0))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $r))
  (func (export "noop") (param $n i32) (result i32)
    (local $r i32)
    (loop $l
      (local.set $r (i32.xor (local.get $r) (call $noop)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $r))
  ;; vm_protect of [addr, addr+len) alternately read-only and read-write.
  (func (export "protect") (param $addr i32) (param $len i32) (param $n i32) (result i32)
    (local $r i32)
    (loop $l
      (local.set $r (i32.or (local.get $r)
        (call $protect (i32.const 0x103) (local.get $addr) (local.get $len) (i32.const 0)
              (i32.add (i32.const 1) (i32.and (local.get $n) (i32.const 2))))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $r))
  ;; vm_allocate(ANYWHERE) of `len` bytes then vm_deallocate, n times.
  (func (export "churn") (param $len i32) (param $n i32) (result i32)
    (local $r i32)
    (loop $l
      (local.set $r (i32.or (local.get $r) (call $alloc (i32.const 0x103) (i32.const 0) (local.get $len) (i32.const 1))))
      (local.set $r (i32.or (local.get $r) (call $dealloc (i32.const 0x103) (i32.load (i32.const 0)) (local.get $len))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $r))
  ;; A load/store-heavy workload: byte-wise checksum of [0, len), then a store per 64 bytes.
  (func (export "checksum") (param $len i32) (result i32)
    (local $i i32) (local $h i32)
    (local.set $h (i32.const 17))
    (loop $l
      (local.set $h (i32.add (i32.mul (local.get $h) (i32.const 31)) (i32.load8_u (local.get $i))))
      (if (i32.eqz (i32.and (local.get $i) (i32.const 63)))
        (then (i32.store8 offset=0x1000000 (local.get $i) (local.get $h))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $len))))
    (local.get $h))
)
